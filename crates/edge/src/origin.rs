//! The origin side: what of a viewer request is forwarded (and so keyed), how the origin
//! request is built from it, and the pooled client that fetches.
//!
//! **A viewer's bytes never become the origin's framing.** The origin request is built from
//! an allowlist: the method, the normalised path under the origin's prefix, the forwarded
//! query, headers and cookies the distribution names, `Host`, `X-Forwarded-For` and `Via`.
//! `Content-Length` and `Transfer-Encoding` are never copied: hyper frames the body it sends
//! (a length when the body's size is known, chunked otherwise), and a request without a body
//! carries neither. `Content-Type` and `Content-Encoding` travel only with a body. A viewer
//! that sends a body with a GET or HEAD is refused before anything reaches the origin.
//!
//! **Origin sockets are bounded**: per origin and in total, with a reserve of descriptors
//! kept for the listeners, so an origin that never answers cannot exhaust the process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::body::{BoxError, UploadBody};
use crate::path::ViewerPath;
use crate::snapshot::{CacheSettings, Distribution, Forwarded, ProtocolPolicy};
use crate::{EdgeConfig, EdgeError};

/// Descriptors kept free for the listeners and the rest of the process (store, logs, DNS)
/// when the origin connection bound is derived from the process's descriptor limit.
const FD_RESERVE: u64 = 256;

/// Why an origin fetch produced no response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OriginError {
    /// No response head within `responseTimeout` (viewers get 504).
    #[error("origin did not answer within {0:?}")]
    Timeout(Duration),
    /// Connection, TLS or protocol failure (viewers get 502).
    #[error("origin request failed: {0}")]
    Failed(String),
}

impl OriginError {
    pub(crate) fn status(&self) -> http::StatusCode {
        match self {
            Self::Timeout(_) => http::StatusCode::GATEWAY_TIMEOUT,
            Self::Failed(_) => http::StatusCode::BAD_GATEWAY,
        }
    }
}

/// A pooled HTTP/1.1 client for origins, verifying HTTPS origins against the system roots and
/// the configured extra CAs, with its connections bounded per origin and in total.
pub(crate) struct OriginClient {
    client: Client<Bounded<HttpsConnector<HttpConnector>>, UploadBody>,
    limits: Arc<ConnectionLimits>,
}

impl OriginClient {
    pub(crate) fn new(config: &EdgeConfig) -> Result<Self, EdgeError> {
        let mut roots = rustls::RootCertStore::empty();
        if config.system_roots {
            // Unreadable system certificates are skipped: one bad file must not stop the edge.
            let found = rustls_native_certs::load_native_certs();
            let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        }
        for cert in &config.origin_roots {
            roots.add(cert.clone()).map_err(|e| EdgeError::OriginRoots(e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.origin_connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let total = total_origin_connections(config);
        let limits = Arc::new(ConnectionLimits {
            total: Arc::new(Semaphore::new(total)),
            per_origin_max: config.origin_max_connections_per_origin.max(1),
            per_origin: Mutex::new(HashMap::new()),
            open: AtomicU64::new(0),
        });
        tracing::debug!(total, per_origin = limits.per_origin_max, "edge origin connection bounds");
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(limits.per_origin_max)
            .build(Bounded { inner: https, limits: limits.clone() });
        Ok(Self { client, limits })
    }

    /// Origin connections open now.
    pub(crate) fn open_connections(&self) -> u64 {
        self.limits.open.load(Ordering::Relaxed)
    }

    /// Sends `req`, waiting at most `timeout` for the response head.
    pub(crate) async fn send(
        &self,
        req: Request<UploadBody>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, OriginError> {
        match tokio::time::timeout(timeout, self.client.request(req)).await {
            Err(_) => Err(OriginError::Timeout(timeout)),
            Ok(Err(e)) => Err(OriginError::Failed(error_chain(&e))),
            Ok(Ok(res)) => Ok(res),
        }
    }
}

/// The total bound: `origin_max_connections`, lowered when the process's descriptor limit
/// could not hold that many beside every viewer connection and [`FD_RESERVE`].
fn total_origin_connections(config: &EdgeConfig) -> usize {
    let wanted = config.origin_max_connections.max(1);
    let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile).current else {
        return wanted;
    };
    // The HTTPS and the HTTP listener each count their own `max_connections`.
    let viewers = (config.limits.max_connections as u64).saturating_mul(2);
    let room = limit.saturating_sub(viewers + FD_RESERVE).max(16);
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
}

/// The bounds every origin connection is opened under.
struct ConnectionLimits {
    total: Arc<Semaphore>,
    per_origin_max: usize,
    /// `scheme://authority` → that origin's bound. Origins are declared by the operator, so
    /// the map stays small.
    per_origin: Mutex<HashMap<String, Arc<Semaphore>>>,
    open: AtomicU64,
}

impl ConnectionLimits {
    fn for_origin(&self, uri: &Uri) -> Arc<Semaphore> {
        let origin = format!("{}://{}", uri.scheme_str().unwrap_or(""), uri.authority().map_or("", |a| a.as_str()));
        let mut map = self.per_origin.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(origin).or_insert_with(|| Arc::new(Semaphore::new(self.per_origin_max))).clone()
    }
}

/// A connector that opens a connection only with a permit of its origin and one of the
/// total; the connection holds both until it closes. A request that finds no permit waits
/// (for a pooled connection to come free, or for a permit) within its response timeout.
#[derive(Clone)]
struct Bounded<C> {
    inner: C,
    limits: Arc<ConnectionLimits>,
}

type Connecting = Pin<Box<dyn std::future::Future<Output = Result<Held, BoxError>> + Send>>;

impl tower_service::Service<Uri> for Bounded<HttpsConnector<HttpConnector>> {
    type Response = Held;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, uri: Uri) -> Connecting {
        let mut inner = self.inner.clone();
        let limits = self.limits.clone();
        Box::pin(async move {
            let origin = limits.for_origin(&uri).acquire_owned().await?;
            let total = limits.total.clone().acquire_owned().await?;
            let io = tower_service::Service::call(&mut inner, uri).await?;
            limits.open.fetch_add(1, Ordering::Relaxed);
            Ok(Held { io, limits, _permits: (origin, total) })
        })
    }
}

/// An origin connection and the permits it was opened with.
struct Held {
    io: MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>,
    limits: Arc<ConnectionLimits>,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl Drop for Held {
    fn drop(&mut self) {
        self.limits.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connection for Held {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl hyper::rt::Read for Held {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Held {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Headers never forwarded as "the viewer's headers": hop-by-hop ones (RFC 9110 §7.6.1),
/// body framing and representation metadata (sent only with a body, by the edge), those the
/// edge sets itself, and validators (the cache makes its own conditional requests).
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "content-length",
    "content-type",
    "content-encoding",
    "expect",
    "forwarded",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "cookie",
    "x-forwarded-for",
    "via",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
    "range",
];

/// Validators and ranges: forwarded only when the response is not cached, so the origin can
/// answer the viewer's own conditional request.
const PASS_THROUGH_ONLY: &[HeaderName] = &[
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
    header::RANGE,
];

/// The parts of a viewer request the distribution forwards: exactly what goes to the origin
/// and what the cache key holds.
#[derive(Debug, Default)]
pub(crate) struct Forwarding {
    /// The query string sent to the origin, if any.
    pub(crate) query: Option<String>,
    /// Viewer headers sent to the origin (lower-case names, in request order).
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// The `Cookie` header sent to the origin.
    pub(crate) cookie: Option<String>,
}

impl Forwarding {
    /// Applies `forwardedQueryStrings`, `forwardedHeaders` and `forwardedCookies`. `authority`
    /// is the viewer's host (HTTP/2 carries it outside the header map).
    pub(crate) fn new(settings: &CacheSettings, uri: &Uri, headers: &HeaderMap, authority: &str) -> Self {
        let query = match (&settings.forwarded_query_strings, uri.query()) {
            (q, Some(query)) if q.forward => {
                if q.allow_list.is_empty() {
                    Some(query.to_owned())
                } else {
                    let kept: Vec<&str> = query
                        .split('&')
                        .filter(|pair| {
                            let name = pair.split_once('=').map_or(*pair, |(n, _)| n);
                            q.allow_list.iter().any(|a| a == name)
                        })
                        .collect();
                    (!kept.is_empty()).then(|| kept.join("&"))
                }
            }
            _ => None,
        };
        // Headers the viewer named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1).
        let nominated: Vec<String> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        let hop =
            |name: &HeaderName| NOT_FORWARDED.contains(&name.as_str()) || nominated.iter().any(|n| n == name.as_str());
        let mut forwarded = Vec::new();
        let mut push_host = false;
        match &settings.forwarded_headers {
            Forwarded::None => {}
            Forwarded::All => {
                push_host = true;
                for (name, value) in headers {
                    if name != header::HOST && !hop(name) {
                        forwarded.push((name.clone(), value.clone()));
                    }
                }
            }
            Forwarded::AllowList(names) => {
                for name in names {
                    let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else { continue };
                    if name == header::HOST {
                        push_host = true;
                    } else if !hop(&name) {
                        for value in headers.get_all(&name) {
                            forwarded.push((name.clone(), value.clone()));
                        }
                    }
                }
            }
        }
        if push_host && let Ok(host) = HeaderValue::from_str(authority) {
            forwarded.insert(0, (header::HOST, host));
        }
        let cookie = match &settings.forwarded_cookies {
            Forwarded::None => None,
            Forwarded::All => joined_cookies(headers, |_| true),
            Forwarded::AllowList(names) => joined_cookies(headers, |name| names.iter().any(|n| n == name)),
        };
        Self { query, headers: forwarded, cookie }
    }

    /// Appends the forwarded parts to a cache key, as bytes (unambiguous: header values
    /// cannot hold `\n` or `\0`, and a query or cookie cannot hold `\0`).
    pub(crate) fn extend_key(&self, key: &mut Vec<u8>) {
        key.extend_from_slice(self.query.as_deref().unwrap_or("").as_bytes());
        key.push(0);
        for (name, value) in &self.headers {
            key.extend_from_slice(name.as_str().as_bytes());
            key.push(b':');
            key.extend_from_slice(value.as_bytes());
            key.push(b'\n');
        }
        key.push(0);
        key.extend_from_slice(self.cookie.as_deref().unwrap_or("").as_bytes());
    }
}

fn joined_cookies(headers: &HeaderMap, keep: impl Fn(&str) -> bool) -> Option<String> {
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && keep(pair.split_once('=').map_or(*pair, |(n, _)| n).trim()))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Everything needed to build requests to the origin for one viewer request.
pub(crate) struct OriginTarget<'a> {
    pub(crate) dist: &'a Distribution,
    pub(crate) forwarding: &'a Forwarding,
    pub(crate) viewer_headers: &'a HeaderMap,
    pub(crate) peer: IpAddr,
    pub(crate) via: &'a HeaderValue,
}

impl OriginTarget<'_> {
    /// A request for `path` (the viewer's normalised path, after `defaultRootObject`) under
    /// the origin's prefix. `pass_through` adds the viewer's validators and range, for
    /// responses that are not cached. `body` is the viewer's upload, for methods that carry
    /// one; without it the request has no body and no body headers.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &ViewerPath,
        pass_through: bool,
        body: Option<UploadBody>,
    ) -> Result<Request<UploadBody>, http::Error> {
        let origin = &self.dist.origin;
        let scheme = match origin.protocol_policy {
            ProtocolPolicy::HttpOnly => "http",
            ProtocolPolicy::HttpsOnly => "https",
        };
        let authority = origin.url.authority().map_or("", |a| a.as_str());
        // `path` starts with `/` and holds no dot segment, so the result stays under `prefix`.
        let prefix = origin.url.path().trim_end_matches('/');
        let mut target = format!("{scheme}://{authority}{prefix}{}", path.encoded());
        if let Some(query) = &self.forwarding.query {
            target.push('?');
            target.push_str(query);
        }
        let mut builder = Request::builder().method(method).uri(target);
        let sends_body = body.is_some();
        let body = body.unwrap_or_else(UploadBody::empty);
        let Some(headers) = builder.headers_mut() else {
            // The URI did not parse: `body` hands back the builder's error (a 502, not a panic).
            return builder.body(body);
        };
        if !self.forwarding.headers.iter().any(|(n, _)| n == header::HOST) {
            headers.insert(header::HOST, HeaderValue::from_str(authority)?);
        }
        for (name, value) in &self.forwarding.headers {
            headers.append(name.clone(), value.clone());
        }
        if let Some(cookie) = &self.forwarding.cookie {
            headers.insert(header::COOKIE, HeaderValue::from_str(cookie)?);
        }
        if pass_through {
            for name in PASS_THROUGH_ONLY {
                for value in self.viewer_headers.get_all(name) {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        // The body's type and coding travel with it, and only with it; its framing is hyper's,
        // from the body itself.
        if sends_body {
            for name in [header::CONTENT_TYPE, header::CONTENT_ENCODING] {
                for value in self.viewer_headers.get_all(&name) {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        let peer = self.peer.to_string();
        let xff = match self.viewer_headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {peer}"),
            None => peer,
        };
        headers.insert("x-forwarded-for", HeaderValue::from_str(&xff)?);
        headers.insert(header::VIA, self.via.clone());
        builder.body(body)
    }
}
