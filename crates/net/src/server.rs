//! The accept loop and the life of one connection.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::activity::{Activity, TrackedIo, Verdict};
use crate::body::{Body, BoxError, Tracked};
use crate::per_ip::PerIp;
use crate::{Limits, panic};

/// How often the "connection limit reached" warning may repeat.
const LIMIT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// What a request knows of its connection: in the request's extensions.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// What the TLS handshake settled, for a TLS listener.
    pub tls: Option<Arc<TlsInfo>>,
}

/// The outcome of a TLS handshake a handler may need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// The SNI name the client asked for.
    pub server_name: Option<String>,
    /// The ALPN protocol agreed (`h2`, `http/1.1`).
    pub alpn: Option<Vec<u8>>,
}

/// What turns an accepted TCP stream into the stream HTTP is spoken on.
pub trait Handshake: Send + Sync + 'static {
    /// The stream after the handshake.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Runs the handshake. The listener bounds its time by `header_timeout_ms`.
    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<(Self::Io, Option<TlsInfo>)>> + Send;
}

/// Cleartext HTTP: no handshake.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plain;

impl Handshake for Plain {
    type Io = TcpStream;

    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<(TcpStream, Option<TlsInfo>)>> + Send {
        std::future::ready(Ok((tcp, None)))
    }
}

/// HTTPS with rustls. ALPN in the configuration decides which HTTP versions are offered;
/// the listener serves whichever the client speaks.
#[derive(Clone)]
pub struct Tls(tokio_rustls::TlsAcceptor);

impl Tls {
    /// A TLS handshake with this configuration (certificates, resolver, ALPN).
    pub fn new(config: Arc<rustls::ServerConfig>) -> Self {
        Self(tokio_rustls::TlsAcceptor::from(config))
    }
}

impl Handshake for Tls {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;

    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<(Self::Io, Option<TlsInfo>)>> + Send {
        let acceptor = self.0.clone();
        async move {
            let stream = acceptor.accept(tcp).await?;
            let (_, session) = stream.get_ref();
            let info = TlsInfo {
                server_name: session.server_name().map(str::to_owned),
                alpn: session.alpn_protocol().map(<[u8]>::to_vec),
            };
            Ok((stream, Some(info)))
        }
    }
}

/// Answers requests. Closures `Fn(Request<Body>) -> impl Future<Output = Response<B>>`
/// are handlers.
pub trait Handler: Send + Sync + 'static {
    /// The body of the answers.
    type ResponseBody: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static;

    /// Answers one request. A panic in here becomes a plain `500` for this request only.
    fn call(&self, request: Request<Body>) -> impl Future<Output = Response<Self::ResponseBody>> + Send;
}

impl<F, Fut, B> Handler for F
where
    F: Fn(Request<Body>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send,
    B: http_body::Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static,
{
    type ResponseBody = B;

    fn call(&self, request: Request<Body>) -> impl Future<Output = Response<B>> + Send {
        self(request)
    }
}

/// Counters of one listener, for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted and served (not those refused for `max_connections_per_ip`).
    pub accepted: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
    /// Times a connection had to wait because `max_connections` were open.
    pub limit_reached: AtomicU64,
    /// Connections closed as soon as they were accepted because their client already had
    /// `max_connections_per_ip` open.
    pub refused_per_ip: AtomicU64,
    /// Connections closed for a timeout (header, body, idle, send) or a limit.
    pub closed_by_limit: AtomicU64,
    /// Requests whose handler panicked.
    pub panics: AtomicU64,
}

/// Where the listener is in its life; connections watch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish in-flight requests, take no new ones.
    Draining,
    /// The grace period is over: drop what is left.
    Closing,
}

/// One listener: accepts connections and serves them under its [`Limits`].
pub struct Server<S = Plain> {
    name: &'static str,
    limits: Limits,
    handshake: S,
    stats: Arc<Stats>,
}

impl Server<Plain> {
    /// A cleartext listener named `name` in logs.
    pub fn new(name: &'static str, limits: Limits) -> Self {
        Self { name, limits, handshake: Plain, stats: Arc::default() }
    }
}

struct Shared<S, H> {
    name: &'static str,
    limits: Limits,
    handshake: S,
    handler: H,
    stats: Arc<Stats>,
    per_ip: Arc<PerIp>,
}

impl<S: Handshake> Server<S> {
    /// The same listener with another handshake (e.g. [`Tls`]).
    pub fn with_handshake<T: Handshake>(self, handshake: T) -> Server<T> {
        Server { name: self.name, limits: self.limits, handshake, stats: self.stats }
    }

    /// The listener's counters (live while it runs).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Accepts connections on `listener` until `shutdown` resolves; then stops accepting,
    /// lets in-flight requests finish for up to `grace` (idle keep-alive connections close
    /// at once, HTTP/2 clients get GOAWAY) and drops whatever is left.
    pub async fn run<H: Handler>(
        self,
        listener: TcpListener,
        handler: H,
        shutdown: impl Future<Output = ()>,
        grace: Duration,
    ) {
        let max = self.limits.max_connections;
        let per_ip = PerIp::new(self.limits.max_connections_per_ip);
        let shared = Arc::new(Shared {
            name: self.name,
            limits: self.limits,
            handshake: self.handshake,
            handler,
            stats: self.stats,
            per_ip,
        });
        let name = shared.name;
        let slots = Arc::new(Semaphore::new(max));
        let (phase, phase_rx) = watch::channel(Phase::Serving);
        let mut warned: Option<Instant> = None;
        let mut warned_per_ip: Option<Instant> = None;
        tokio::pin!(shutdown);
        loop {
            let slot = match slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    shared.stats.limit_reached.fetch_add(1, Ordering::Relaxed);
                    if warned.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_EVERY) {
                        tracing::warn!(
                            listener = name,
                            max_connections = max,
                            "connection limit reached: new connections wait in the listen backlog until one closes"
                        );
                        warned = Some(Instant::now());
                    }
                    tokio::select! {
                        slot = slots.clone().acquire_owned() => match slot {
                            Ok(slot) => slot,
                            Err(_) => break,
                        },
                        () = &mut shutdown => break,
                    }
                }
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let Some(client) = shared.per_ip.try_open(peer.ip()) else {
                // Closed before any handshake: the client learns nothing and costs no task.
                drop(tcp);
                shared.stats.refused_per_ip.fetch_add(1, Ordering::Relaxed);
                if warned_per_ip.is_none_or(|at| at.elapsed() >= LIMIT_WARNING_EVERY) {
                    tracing::warn!(
                        listener = name,
                        %peer,
                        max_connections_per_ip = shared.limits.max_connections_per_ip,
                        "per-client connection limit reached: new connections from this client are closed"
                    );
                    warned_per_ip = Some(Instant::now());
                }
                continue;
            };
            shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
            let shared = shared.clone();
            let phase = phase_rx.clone();
            tokio::spawn(async move {
                shared.stats.open.fetch_add(1, Ordering::Relaxed);
                connection(&shared, tcp, peer, phase).await;
                shared.stats.open.fetch_sub(1, Ordering::Relaxed);
                drop(client);
                drop(slot);
            });
        }
        drop(listener);
        tracing::info!(listener = name, "no longer accepting; waiting for in-flight requests");
        let _ = phase.send(Phase::Draining);
        let all = u32::try_from(max).unwrap_or(u32::MAX);
        tokio::select! {
            _ = slots.acquire_many(all) => tracing::info!(listener = name, "all connections closed"),
            () = tokio::time::sleep(grace) => {
                tracing::warn!(listener = name, grace_secs = grace.as_secs(), "grace period over; closing remaining connections");
                let _ = phase.send(Phase::Closing);
                let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(all)).await;
            }
        }
    }
}

/// A plain `500` for a request whose handler panicked.
fn internal_error() -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(b"Internal Server Error\n")));
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The header timeout is enforced by the connection task (it also covers protocol
    // detection and keep-alive, which hyper's own does not separate).
    builder
        .http1()
        .keep_alive(true)
        .header_read_timeout(None)
        .max_buf_size(usize::try_from(limits.max_header_bytes).unwrap_or(usize::MAX).max(8 * 1024))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.h2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(limits.h2_max_local_error_reset_streams)
        .max_header_list_size(limits.max_header_bytes)
        .keep_alive_interval(None);
    builder
}

async fn connection<S: Handshake, H: Handler>(
    shared: &Arc<Shared<S, H>>,
    tcp: TcpStream,
    peer: SocketAddr,
    mut phase: watch::Receiver<Phase>,
) {
    let limits = &shared.limits;
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().unwrap_or(peer);
    let activity = Activity::new();
    let handshake = tokio::time::timeout(limits.header_timeout(), shared.handshake.handshake(tcp));
    let (io, tls) = tokio::select! {
        done = handshake => match done {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                tracing::debug!(listener = shared.name, %peer, error = %e, "handshake failed");
                return;
            }
            Err(_) => {
                shared.stats.closed_by_limit.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(listener = shared.name, %peer, "handshake not done within header_timeout_ms");
                return;
            }
        },
        _ = phase.wait_for(|p| *p != Phase::Serving) => return,
    };
    let info = ConnInfo { peer, local, tls: tls.map(Arc::new) };
    let service = {
        let shared = shared.clone();
        let activity = activity.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let shared = shared.clone();
            let activity = activity.clone();
            let info = info.clone();
            async move {
                let mut guard = activity.begin(request.version() == http::Version::HTTP_2, &shared.limits);
                let (mut parts, incoming) = request.into_parts();
                parts.extensions.insert(info);
                let deadline = Instant::now() + shared.limits.body_timeout();
                let request = Request::from_parts(parts, Body::new(incoming, deadline, activity));
                let response = match panic::catch(shared.handler.call(request)).await {
                    Ok(response) => response.map(Either::Left),
                    Err(panic) => {
                        shared.stats.panics.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(listener = shared.name, panic = %panic, "request handler panicked");
                        internal_error().map(Either::Right)
                    }
                };
                guard.complete();
                Ok::<_, Infallible>(response.map(|body| Tracked::new(body, guard)))
            }
        })
    };
    let builder = builder(limits);
    let conn = builder.serve_connection(TokioIo::new(TrackedIo::new(io, activity.clone())), service);
    tokio::pin!(conn);
    let recheck = limits.header_timeout().min(limits.idle_timeout()).min(limits.send_timeout());
    let mut drain_until: Option<Instant> = None;
    // One timer for the connection's life, moved rather than re-created.
    let sleep = tokio::time::sleep_until(Instant::now() + recheck);
    tokio::pin!(sleep);
    loop {
        let now = Instant::now();
        let mut next = match activity.verdict(limits, now) {
            Verdict::Close(reason) => {
                shared.stats.closed_by_limit.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(listener = shared.name, %peer, reason, "closing connection");
                return;
            }
            Verdict::Drain(reason) => {
                if drain_until.is_none() {
                    tracing::debug!(listener = shared.name, %peer, reason, "draining connection");
                    conn.as_mut().graceful_shutdown();
                    drain_until = Some(now + limits.idle_timeout());
                }
                now + recheck
            }
            Verdict::Wait(at) => at,
        };
        if let Some(until) = drain_until {
            if now >= until {
                tracing::debug!(listener = shared.name, %peer, "connection did not drain; closing");
                return;
            }
            next = next.min(until);
        }
        if sleep.deadline() != next {
            sleep.as_mut().reset(next);
        }
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(listener = shared.name, %peer, error = %e, "connection closed with error");
                }
                return;
            }
            () = &mut sleep => {}
            () = activity.wake.notified() => {}
            changed = phase.changed() => {
                let now_phase = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Closing };
                match now_phase {
                    Phase::Serving => {}
                    Phase::Draining => activity.request_close(),
                    Phase::Closing => return,
                }
            }
        }
    }
}
