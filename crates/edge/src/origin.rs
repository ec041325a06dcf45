//! The origin side: what of a viewer request is forwarded (and so keyed), and the pooled
//! client that fetches.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, Uri};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::body::UploadBody;
use crate::snapshot::{CacheSettings, Distribution, Forwarded, ProtocolPolicy};
use crate::{EdgeConfig, EdgeError};

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
/// the configured extra CAs.
pub(crate) struct OriginClient {
    client: Client<HttpsConnector<HttpConnector>, UploadBody>,
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
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(https);
        Ok(Self { client })
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

/// Headers never forwarded as "the viewer's headers": hop-by-hop ones (RFC 9110 §7.6.1), those
/// the edge sets itself, and validators (the cache makes its own conditional requests).
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "cookie",
    "content-length",
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
        let mut forwarded = Vec::new();
        let mut push_host = false;
        match &settings.forwarded_headers {
            Forwarded::None => {}
            Forwarded::All => {
                push_host = true;
                for (name, value) in headers {
                    if name != header::HOST && !NOT_FORWARDED.contains(&name.as_str()) {
                        forwarded.push((name.clone(), value.clone()));
                    }
                }
            }
            Forwarded::AllowList(names) => {
                for name in names {
                    let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else { continue };
                    if name == header::HOST {
                        push_host = true;
                    } else if !NOT_FORWARDED.contains(&name.as_str()) {
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

    /// The forwarded parts as one string for the cache key (unambiguous: values cannot hold
    /// `\n` or `\0`).
    pub(crate) fn key(&self) -> String {
        let mut key = String::new();
        key.push_str(self.query.as_deref().unwrap_or(""));
        key.push('\0');
        for (name, value) in &self.headers {
            key.push_str(name.as_str());
            key.push(':');
            key.push_str(&String::from_utf8_lossy(value.as_bytes()));
            key.push('\n');
        }
        key.push('\0');
        key.push_str(self.cookie.as_deref().unwrap_or(""));
        key
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
    /// A request for `path` (the viewer's path, after `defaultRootObject`). `pass_through`
    /// adds the viewer's validators and range, for responses that are not cached.
    pub(crate) fn request(
        &self,
        method: Method,
        path: &str,
        pass_through: bool,
        body: UploadBody,
    ) -> Result<Request<UploadBody>, http::Error> {
        let origin = &self.dist.origin;
        let scheme = match origin.protocol_policy {
            ProtocolPolicy::HttpOnly => "http",
            ProtocolPolicy::HttpsOnly => "https",
        };
        let authority = origin.url.authority().map_or("", |a| a.as_str());
        let prefix = origin.url.path().trim_end_matches('/');
        let mut target = format!("{scheme}://{authority}{prefix}{path}");
        if let Some(query) = &self.forwarding.query {
            target.push('?');
            target.push_str(query);
        }
        let mut builder = Request::builder().method(method).uri(target);
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
        // The body's framing and type always travel with it.
        for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_ENCODING] {
            if let Some(value) = self.viewer_headers.get(&name) {
                headers.insert(name, value.clone());
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
