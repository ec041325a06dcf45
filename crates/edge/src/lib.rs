//! Carapace's CDN edge: the part of Lightsail distributions that really serves traffic.
//!
//! What it is: HTTPS and HTTP listeners, an SNI certificate resolver, per-distribution TLS
//! floors, Lightsail's cache behaviours over a byte-bounded memory cache, and a pooled origin
//! client. Both listeners are `carapace_net::Server`s, so every viewer connection is held to
//! the shared listener's [`carapace_net::Limits`] (per-client and total connection counts,
//! header, body, idle and send timeouts, HTTP/2 stream and reset bounds, panic to 500).
//! What it is not: it knows no Lightsail DTO and no store. Its owner (the `carapace`
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
mod handshake;
mod origin;
mod path;
mod proxy;
mod snapshot;
mod tls;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;

pub use clock::{Clock, ManualClock, SystemClock};
pub use counters::Counters;
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
    /// The disk tier's directory cannot be used (unreadable, or holding other data).
    #[error("edge cache directory: {0}")]
    CacheDir(std::io::Error),
    /// A connection bound in [`EdgeConfig::limits`] is switched off or out of range.
    #[error("edge limits: {0}")]
    Limits(#[from] carapace_net::InvalidLimit),
}

/// The sockets an edge serves, bound by the owner (port 0 picks a free port; read the bound
/// address from the listener before handing it over).
#[derive(Debug)]
pub struct Listeners {
    /// Viewer HTTPS.
    pub https: TcpListener,
    /// Viewer HTTP, answered with a 301 to HTTPS. `None` serves no HTTP.
    pub http: Option<TcpListener>,
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
    /// Bounds on every viewer connection, the same for the HTTPS and the HTTP listener (each
    /// counts its own connections). Defaults: [`EdgeConfig::default_limits`].
    pub limits: carapace_net::Limits,
    /// On shutdown, how long open connections may take to finish their requests.
    pub drain_timeout: Duration,
    /// The time source for freshness (injected so TTL rules are tested without waiting).
    pub clock: Arc<dyn Clock>,
    /// A directory for the disk tier: cached objects are also written there and survive a
    /// restart (see `disk.rs`). `None`: memory only.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Disk budget of the disk tier, bytes (oldest objects are removed first).
    pub cache_dir_bytes: u64,
    /// Bytes of responses being copied into the cache at once, across the edge. A miss
    /// streams to its viewer while a copy fills the cache; a copy that would exceed this
    /// stops and the response streams on uncached.
    pub fill_bytes: u64,
    /// How long a request waits for another request's fetch of the same object before it
    /// fetches on its own (uncached).
    pub cache_lock_timeout: Duration,
    /// Time to open a connection to an origin (CloudFront's origin connection timeout,
    /// 10 s by default).
    pub origin_connect_timeout: Duration,
    /// Origin connections open at once, across every origin. Lowered at start when the
    /// process's descriptor limit could not hold it beside every viewer connection and a
    /// reserve.
    pub origin_max_connections: usize,
    /// Origin connections open at once to one origin (`scheme://host:port`): one slow origin
    /// cannot take the connections every other distribution needs.
    pub origin_max_connections_per_origin: usize,
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
            .field("drain_timeout", &self.drain_timeout)
            .field("cache_dir", &self.cache_dir)
            .field("cache_dir_bytes", &self.cache_dir_bytes)
            .field("fill_bytes", &self.fill_bytes)
            .field("cache_lock_timeout", &self.cache_lock_timeout)
            .field("origin_connect_timeout", &self.origin_connect_timeout)
            .field("origin_max_connections", &self.origin_max_connections)
            .field("origin_max_connections_per_origin", &self.origin_max_connections_per_origin)
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
            limits: Self::default_limits(),
            drain_timeout: Duration::from_secs(10),
            clock: Arc::new(SystemClock),
            cache_dir: None,
            cache_dir_bytes: 1 << 30,
            fill_bytes: 64 << 20,
            cache_lock_timeout: Duration::from_secs(3),
            origin_connect_timeout: Duration::from_secs(10),
            origin_max_connections: 4096,
            origin_max_connections_per_origin: 256,
        }
    }
}

impl EdgeConfig {
    /// The edge's connection bounds: the shared listener's defaults, with CloudFront's sizes
    /// and a viewer-facing port's counts where they differ.
    pub fn default_limits() -> carapace_net::Limits {
        carapace_net::Limits {
            // A keep-alive viewer connection with nothing in flight is closed after 10 s
            // (HTTP/2: GOAWAY first, RFC 9113 §6.8).
            idle_timeout_ms: 10_000,
            // A public port: many more viewers than API clients.
            max_connections: 10_000,
            // CloudFront's limit on the total size of request headers is 20,480 bytes; the
            // HTTP/2 header list is held to the same.
            max_header_bytes: 20 * 1024,
            max_headers: 100,
            // The SETTINGS_MAX_CONCURRENT_STREAMS CloudFront advertises.
            h2_max_concurrent_streams: 128,
            ..carapace_net::Limits::default()
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
    pub(crate) cache: Arc<cache::Store>,
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
        config.limits.validate()?;
        let live = Arc::new(ArcSwap::from_pointee(Live { snapshot: Arc::new(Snapshot::empty()), states: Vec::new() }));
        let tls = tls::TlsConfigs::new(live.clone())?;
        let origin = origin::OriginClient::new(&config)?;
        let cache = Arc::new(cache::Store::new(&config).map_err(EdgeError::CacheDir)?);
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

    /// Bytes of misses being copied into the cache now (bounded by
    /// [`EdgeConfig::fill_bytes`]).
    pub fn cache_fill_bytes(&self) -> u64 {
        self.inner.cache.budget().used()
    }

    /// Origin connections open now (bounded by [`EdgeConfig::origin_max_connections`] and
    /// per origin by [`EdgeConfig::origin_max_connections_per_origin`]).
    pub fn origin_connections(&self) -> u64 {
        self.inner.origin.open_connections()
    }

    /// Serves both listeners until `shutdown` completes, then stops accepting and gives open
    /// connections [`EdgeConfig::drain_timeout`] to finish.
    pub async fn serve(
        &self,
        listeners: Listeners,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<(), EdgeError> {
        let limits = &self.inner.config.limits;
        let grace = self.inner.config.drain_timeout;
        let https_port = listeners.https.local_addr()?.port();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let signal = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let https = {
            let edge = self.clone();
            carapace_net::Server::new("edge-https", limits.clone())
                .with_handshake(handshake::ViewerTls::new(self.clone()))
                .run(listeners.https, move |req| proxy::handle(edge.clone(), req), signal(stopped.clone()), grace)
        };
        let http = async {
            if let Some(http) = listeners.http {
                let edge = self.clone();
                let handler = move |req| proxy::redirect(edge.clone(), https_port, req);
                carapace_net::Server::new("edge-http", limits.clone()).run(http, handler, signal(stopped), grace).await;
            }
        };
        let trigger = async {
            shutdown.await;
            let _ = stop.send(true);
        };
        tokio::join!(https, http, trigger);
        Ok(())
    }
}

impl Live {
    pub(crate) fn state(&self, id: &str) -> Option<Arc<DistState>> {
        self.snapshot.index_of(id).map(|i| self.states[i].clone())
    }
}
