//! Who owns a resource: an account in a region, stored as the scope `<account>/<region>`.

/// An account in a region: the owner of a service's resources and the scope of its rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// The 12-digit account id.
    pub account: String,
    /// The region.
    pub region: String,
}

impl Owner {
    /// An owner.
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Self { account: account.into(), region: region.into() }
    }

    /// The store scope, `<account>/<region>`.
    pub fn scope(&self) -> String {
        format!("{}/{}", self.account, self.region)
    }

    /// The owner of a store scope.
    pub fn from_scope(scope: &str) -> Option<Self> {
        let (account, region) = scope.split_once('/')?;
        Some(Self::new(account, region))
    }
}
