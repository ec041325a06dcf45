//! What a service brings to the process, as one value: the binary holds the one list of
//! them, and the shared machinery (the indexed store, the row cache) takes what it needs
//! from that list instead of naming any service itself.

use crate::index::Indexer;

/// One service's contribution to the shared machinery.
#[derive(Debug, Clone, Copy)]
pub struct ServiceModule {
    /// The service's name, as logs and metrics show it.
    pub name: &'static str,
    /// How its indexed row kinds are indexed ([`crate::index::IndexedStore`]).
    pub indexers: &'static [Indexer],
    /// Its row kinds that only the running server writes (no `carapace` command touches
    /// them), so the server's store may serve them from memory.
    pub server_owned_kinds: &'static [&'static str],
}

/// Every indexer of `modules`.
pub fn indexers(modules: &[ServiceModule]) -> Vec<Indexer> {
    modules.iter().flat_map(|m| m.indexers.iter().copied()).collect()
}

/// Every server-owned row kind of `modules`.
pub fn server_owned_kinds(modules: &[ServiceModule]) -> impl Iterator<Item = &'static str> + '_ {
    modules.iter().flat_map(|m| m.server_owned_kinds.iter().copied())
}
