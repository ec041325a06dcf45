//! Carapace's CDN edge: the part of Lightsail distributions that really serves traffic.
//!
//! What it is: HTTPS and HTTP listeners, an SNI certificate resolver, per-distribution TLS
//! floors, Lightsail's cache behaviours over a byte-bounded memory cache, and a pooled origin
//! client. What it is not: it knows no Lightsail DTO and no store. Its owner (the `carapace`
//! binary) maps distributions and certificates into a [`Snapshot`] and hands it over with
//! [`Edge::swap`] whenever the change feed reports a write; requests never wait on a database.
//!
//! ```no_run
//! # async fn run(snapshot: carapace_edge::Snapshot) -> Result<(), Box<dyn std::error::Error>> {
//! use carapace_edge::{Edge, EdgeConfig, Listeners};
//! let edge = Edge::new(EdgeConfig::default())?;
//! edge.swap(snapshot);
//! let listeners = Listeners {
//!     https: tokio::net::TcpListener::bind("127.0.0.1:4443").await?,
//!     http: Some(tokio::net::TcpListener::bind("127.0.0.1:4480").await?),
//! };
//! edge.serve(listeners, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! Every observable difference from CloudFront/Lightsail is listed in `docs/edge.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod body;
mod cache;
pub mod clock;
mod counters;
mod disk;
mod listener;
mod origin;
mod proxy;
mod snapshot;
mod tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::CertificateDer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use counters::Counters;
pub use listener::Listeners;
pub use snapshot::{
    Behavior, CacheSettings, CustomErrorResponse, Distribution, Forwarded, Methods, Origin, PathBehavior,
    ProtocolPolicy, QueryStrings, Rejected, ServedCertificate, Snapshot, SnapshotChange, SnapshotError,
    certified_key_from_der, certified_key_from_pem,
};
pub use tls::TlsPolicy;

use counters::DistState;

/// Errors from building or running an edge.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// A TLS configuration could not be built.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// No trust anchor at all for HTTPS origins (no system roots and no extra CA).
    #[error("no trust anchors for HTTPS origins: {0}")]
    OriginRoots(String),
    /// A listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Bounds on what one client may cost the edge. Kept together so the listener can move to the
/// shared `crates/net` listener without touching request handling.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time allowed for a TLS handshake before the connection is closed.
    pub tls_handshake_timeout: Duration,
    /// Time allowed for a client to send a request's headers (slowloris bound, HTTP/1.1).
    pub header_read_timeout: Duration,
    /// Largest request head (request line and headers), HTTP/1.1: larger gets 431.
    pub max_header_bytes: usize,
    /// Most request headers, HTTP/1.1: more gets 431.
    pub max_headers: usize,
    /// Largest decoded header list, HTTP/2.
    pub h2_max_header_list_size: u32,
    /// Concurrent streams per HTTP/2 connection.
    pub h2_max_concurrent_streams: u32,
    /// Streams reset by the client before the edge accepted them (HTTP/2 rapid reset,
    /// CVE-2023-44487): beyond this the connection is closed with GOAWAY.
    pub h2_max_pending_accept_reset_streams: usize,
    /// Streams the edge reset because of client protocol errors before it closes the connection.
    pub h2_max_local_error_reset_streams: usize,
    /// Open viewer connections across both listeners; further clients wait in the accept queue.
    pub max_connections: usize,
    /// On shutdown, how long open connections may take to finish their requests.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            // CloudFront's limit on the total size of request headers is 20,480 bytes.
            max_header_bytes: 20 * 1024,
            max_headers: 100,
            h2_max_header_list_size: 20 * 1024,
            h2_max_concurrent_streams: 128,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 1024,
            max_connections: 10_000,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// How an edge runs. Every field has a default ([`EdgeConfig::default`]).
#[derive(Clone)]
pub struct EdgeConfig {
    /// Memory budget of the cache, in bytes (bodies, headers and keys).
    pub cache_bytes: u64,
    /// Largest body the cache stores; larger responses are streamed to the viewer uncached.
    pub max_object_bytes: usize,
    /// How long past its TTL a cached object is kept, to revalidate it with the origin and to
    /// serve it when the origin fails (connection error, timeout or 5xx).
    pub stale_if_error: Duration,
    /// Trust the operating system's roots for HTTPS origins.
    pub system_roots: bool,
    /// Extra CA certificates trusted for HTTPS origins (Carapace's root, `edge.origin_ca_file`).
    pub origin_roots: Vec<CertificateDer<'static>>,
    /// Added to `Via` on origin requests and viewer responses (`1.1 <via>`).
    pub via: String,
    /// Bounds on hostile or slow clients.
    pub limits: Limits,
    /// The time source for freshness (injected so TTL rules are tested without waiting).
    pub clock: Arc<dyn Clock>,
    /// A directory for the disk tier: cached objects are also written there and survive a
    /// restart (see `disk.rs`). `None`: memory only.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Disk budget of the disk tier, bytes (oldest objects are removed first).
    pub cache_dir_bytes: u64,
}

impl std::fmt::Debug for EdgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeConfig")
            .field("cache_bytes", &self.cache_bytes)
            .field("max_object_bytes", &self.max_object_bytes)
            .field("stale_if_error", &self.stale_if_error)
            .field("system_roots", &self.system_roots)
            .field("origin_roots", &self.origin_roots.len())
            .field("via", &self.via)
            .field("limits", &self.limits)
            .field("cache_dir", &self.cache_dir)
            .field("cache_dir_bytes", &self.cache_dir_bytes)
            .finish_non_exhaustive()
    }
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            cache_bytes: 256 * 1024 * 1024,
            max_object_bytes: 16 * 1024 * 1024,
            stale_if_error: Duration::from_secs(24 * 3600),
            system_roots: true,
            origin_roots: Vec::new(),
            via: "carapace".to_owned(),
            limits: Limits::default(),
            clock: Arc::new(SystemClock),
            cache_dir: None,
            cache_dir_bytes: 1 << 30,
        }
    }
}

/// What requests see: the owner's snapshot plus the edge's per-distribution state (counters,
/// purge generation), index-aligned with `snapshot.distributions()`.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) states: Vec<Arc<DistState>>,
}

/// Shared by every connection.
pub(crate) struct Inner {
    pub(crate) config: EdgeConfig,
    pub(crate) live: Arc<ArcSwap<Live>>,
    pub(crate) cache: cache::Store,
    pub(crate) origin: origin::OriginClient,
    pub(crate) tls: tls::TlsConfigs,
    pub(crate) via: http::HeaderValue,
    /// Serialises swaps so per-distribution state is carried over exactly once.
    swap_lock: Mutex<()>,
}

/// A running edge: cheap to clone, all clones share one cache and one snapshot.
#[derive(Clone)]
pub struct Edge {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Edge {
    /// Builds an edge with an empty snapshot (every name gets a TLS alert until [`Edge::swap`]).
    pub fn new(config: EdgeConfig) -> Result<Self, EdgeError> {
        let live = Arc::new(ArcSwap::from_pointee(Live { snapshot: Arc::new(Snapshot::empty()), states: Vec::new() }));
        let tls = tls::TlsConfigs::new(live.clone())?;
        let origin = origin::OriginClient::new(&config)?;
        let cache = cache::Store::new(&config)?;
        let via = http::HeaderValue::from_str(&format!("1.1 {}", config.via))
            .unwrap_or_else(|_| http::HeaderValue::from_static("1.1 carapace"));
        Ok(Self { inner: Arc::new(Inner { config, live, cache, origin, tls, via, swap_lock: Mutex::new(()) }) })
    }

    /// Replaces the distributions being served. Takes effect for the next request and the next
    /// TLS handshake; requests in flight finish with the snapshot they started with. Counters
    /// and cached objects of distributions that stay (same [`Distribution::id`]) are kept.
    /// When this returns, the snapshot is applied (what Lightsail's `Deployed` waits for).
    pub fn swap(&self, snapshot: Snapshot) {
        let _guard = self.inner.swap_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.inner.live.load_full();
        self.install(&old, snapshot);
    }

    /// Applies per-distribution changes to the snapshot being served ([`Snapshot::updated`]):
    /// unchanged distributions are shared, not rebuilt, and counters and cached objects carry
    /// over as with [`Edge::swap`]. Returns the upserts refused (each keeps its previous
    /// version served, if it had one); every other change is applied when this returns.
    pub fn update(&self, changes: impl IntoIterator<Item = SnapshotChange>) -> Vec<Rejected> {
        let _guard = self.inner.swap_lock.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.inner.live.load_full();
        let (snapshot, rejected) = old.snapshot.updated(changes);
        self.install(&old, snapshot);
        rejected
    }

    /// Serves `snapshot` next, carrying each staying distribution's state over from `old`
    /// (the caller holds `swap_lock`).
    fn install(&self, old: &Live, snapshot: Snapshot) {
        let states = snapshot
            .distributions()
            .iter()
            .map(|d| old.state(&d.id).unwrap_or_else(|| Arc::new(DistState::default())))
            .collect();
        self.inner.live.store(Arc::new(Live { snapshot: Arc::new(snapshot), states }));
    }

    /// The snapshot being served.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.live.load().snapshot.clone()
    }

    /// The certificate a TLS handshake with this SNI name gets now (what the resolver
    /// answers; `None`: a TLS alert).
    pub fn certificate_for(&self, sni: &str) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.inner.live.load().snapshot.certificate_for(sni).cloned()
    }

    /// Purges every cached object of one distribution (ResetDistributionCache). Requests after
    /// this returns go to the origin. Returns `false` if no such distribution is served.
    pub fn purge(&self, distribution_id: &str) -> bool {
        let live = self.inner.live.load();
        let Some(state) = live.state(distribution_id) else { return false };
        state.bump_generation();
        self.inner.cache.purge(distribution_id);
        true
    }

    /// Cumulative counters per distribution id since the distribution was first served (for
    /// `/metrics`); per-minute figures for GetDistributionMetricData are
    /// [`Counters::since`] the previous reading.
    pub fn counters(&self) -> Vec<(String, Counters)> {
        let live = self.inner.live.load();
        live.snapshot.distributions().iter().zip(&live.states).map(|(d, s)| (d.id.clone(), s.read())).collect()
    }

    /// Bytes the disk tier holds now (0 without one).
    pub fn cache_disk_bytes(&self) -> u64 {
        self.inner.cache.disk_bytes()
    }

    /// Bytes the cache holds now (approximate: moka applies writes in batches).
    pub fn cache_bytes_used(&self) -> u64 {
        self.inner.cache.weighted_size()
    }

    /// Serves both listeners until `shutdown` completes, then stops accepting and gives open
    /// connections [`Limits::drain_timeout`] to finish.
    pub async fn serve(
        &self,
        listeners: Listeners,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), EdgeError> {
        listener::serve(self.clone(), listeners, shutdown).await
    }
}

impl Live {
    pub(crate) fn state(&self, id: &str) -> Option<Arc<DistState>> {
        self.snapshot.index_of(id).map(|i| self.states[i].clone())
    }
}
