//! One viewer request: distribution lookup, CloudFront's checks, the behaviour for the path,
//! then the cache or a straight origin fetch.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use carapace_net::ConnInfo;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Body as _;
use http_body_util::BodyExt;
use http_cache_semantics::{AfterResponse, CachePolicy};
use hyper::body::Incoming;

use crate::body::{EdgeBody, OriginBody, UploadBody};
use crate::cache::{self, CacheKey, Entry, Fill, Lock, Outcome, Reservation, XCache};
use crate::counters::DistState;
use crate::origin::{Forwarding, OriginTarget};
use crate::path::ViewerPath;
use crate::snapshot::{Behavior, CustomErrorResponse, Distribution, Forwarded};
use crate::{Edge, Inner};

// CloudFront's wording for the errors the edge itself produces.
const MSG_NO_DISTRIBUTION: &str = "Bad request. We can't connect to the server for this app or website at this time. There might be too much traffic or a configuration error. Try again later, or contact the app or website owner.";
const MSG_DISABLED: &str = "The distribution for this request is disabled.";
const MSG_METHOD: &str = "This distribution is not configured to allow the HTTP request method that was used for this request. The distribution supports only cachable requests.";
const MSG_MISDIRECTED: &str = "The request's host name is not served on this connection.";
const MSG_BODY_NOT_ALLOWED: &str = "Bad request. A GET or HEAD request cannot have a body.";
const MSG_BAD_PATH: &str = "Bad request. The request path is not a valid URL path.";
const MSG_ORIGIN_FAILED: &str = "We can't connect to the server for this app or website at this time. There might be too much traffic or a configuration error. Try again later, or contact the app or website owner.";

/// The HTTPS listener's handler. The listener puts its [`ConnInfo`] (peer address, SNI
/// name) in every request's extensions.
pub(crate) async fn handle(edge: Edge, req: Request<carapace_net::Body>) -> Response<EdgeBody> {
    let inner = &*edge.inner;
    let live = inner.live.load_full();
    let Some(conn) = req.extensions().get::<ConnInfo>() else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, MSG_ORIGIN_FAILED, &inner.via);
    };
    let peer = conn.peer.ip();
    let Some(host) = request_host(&req) else {
        return error_page(StatusCode::FORBIDDEN, MSG_NO_DISTRIBUTION, &inner.via);
    };
    let Some(index) = live.snapshot.find_index(&host) else {
        return error_page(StatusCode::FORBIDDEN, MSG_NO_DISTRIBUTION, &inner.via);
    };
    // A connection whose certificate was chosen for one distribution cannot reach another one
    // (HTTP/2 connection reuse across names, RFC 9113 §9.1.1: 421 Misdirected Request).
    if let Some(sni) = conn.tls.as_ref().and_then(|tls| tls.server_name.as_deref())
        && live.snapshot.find_index(sni) != Some(index)
    {
        return error_page(StatusCode::MISDIRECTED_REQUEST, MSG_MISDIRECTED, &inner.via);
    }
    let dist = live.snapshot.distributions()[index].clone();
    let state = live.states[index].clone();
    state.request();
    let response = serve(inner, &dist, &state, &host, peer, req).await;
    state.status(response.status());
    response.map(|body| body.counted(state))
}

/// The HTTP listener's handler: Lightsail distributions redirect HTTP to HTTPS.
pub(crate) async fn redirect(edge: Edge, https_port: u16, req: Request<carapace_net::Body>) -> Response<EdgeBody> {
    let inner = &*edge.inner;
    let live = inner.live.load_full();
    let found = request_host(&req).and_then(|host| live.snapshot.find_index(&host).map(|i| (host, i)));
    let Some((host, index)) = found else {
        return error_page(StatusCode::FORBIDDEN, MSG_NO_DISTRIBUTION, &inner.via);
    };
    live.states[index].request();
    let port = if https_port == 443 { String::new() } else { format!(":{https_port}") };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let location = format!("https://{host}{port}{path}");
    let mut response = Response::new(EdgeBody::empty());
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response.headers_mut().insert("x-cache", HeaderValue::from_static("Redirect from carapace"));
    response.headers_mut().insert(header::VIA, inner.via.clone());
    response
}

/// The viewer's host without port: `:authority` (HTTP/2) or `Host` (HTTP/1.1).
fn request_host<B>(req: &Request<B>) -> Option<String> {
    if let Some(authority) = req.uri().authority() {
        return Some(authority.host().to_ascii_lowercase());
    }
    let value = req.headers().get(header::HOST)?.to_str().ok()?;
    let authority: http::uri::Authority = value.parse().ok()?;
    Some(authority.host().to_ascii_lowercase())
}

async fn serve(
    inner: &Inner,
    dist: &Distribution,
    state: &Arc<DistState>,
    host: &str,
    peer: IpAddr,
    req: Request<carapace_net::Body>,
) -> Response<EdgeBody> {
    if !dist.is_enabled {
        return error_page(StatusCode::FORBIDDEN, MSG_DISABLED, &inner.via);
    }
    let settings = &dist.cache_behavior_settings;
    let method = req.method().clone();
    if !settings.allowed_http_methods.contains(&method) {
        return error_page(StatusCode::FORBIDDEN, MSG_METHOD, &inner.via);
    }
    let has_body = declares_body(&req);
    // "If a viewer GET request includes a body, CloudFront returns an HTTP status code 403
    // (Forbidden) to the viewer" (CloudFront Developer Guide, "Request and response behavior
    // for custom origins"). Nothing of such a request reaches the origin, so its declared
    // bytes can never be read there as another request.
    if has_body && matches!(method, Method::GET | Method::HEAD) {
        return error_page(StatusCode::FORBIDDEN, MSG_BODY_NOT_ALLOWED, &inner.via);
    }
    let Ok(mut path) = ViewerPath::parse(req.uri().path()) else {
        return error_page(StatusCode::BAD_REQUEST, MSG_BAD_PATH, &inner.via);
    };
    if path.is_root()
        && let Some(object) = &dist.default_root_object
        && let Ok(object) = ViewerPath::configured(object)
    {
        path = object;
    }
    let (parts, body) = req.into_parts();
    let forwarding = Forwarding::new(settings, &parts.uri, &parts.headers, host);
    let target = OriginTarget { dist, forwarding: &forwarding, viewer_headers: &parts.headers, peer, via: &inner.via };
    let cacheable = !has_body
        && dist.behavior_for(&path.for_matching()) == Behavior::Cache
        && settings.cached_http_methods.contains(&method)
        && settings.forwarded_headers != Forwarded::All
        && matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !cacheable {
        let upload = has_body.then(|| UploadBody::viewer(body, state.clone()));
        return pass_through(inner, &target, method, &path, upload).await;
    }
    let key = cache_key(dist, state, &method, &path, &forwarding);
    let now = inner.config.clock.now();
    let cached = inner.cache.get(&key, now).await;
    if let Some(entry) = &cached
        && now < entry.fresh_until
    {
        return from_entry(inner, entry, XCache::Hit, &method, &parts.headers, now);
    }
    if method == Method::HEAD {
        // A HEAD response cannot fill the cache for GET: forward it as it is.
        return pass_through(inner, &target, method, &path, None).await;
    }
    match inner.cache.lock(&key) {
        Lock::Leader(leader) => {
            fetch_into_cache(inner, &target, &method, &path, &parts.headers, key, cached, leader).await
        }
        Lock::Follower(follower) => match follower.wait(inner.cache.lock_timeout).await {
            Outcome::Entry(entry, x_cache) => {
                from_entry(inner, &entry, x_cache, &method, &parts.headers, inner.config.clock.now())
            }
            Outcome::Failed(status) => error_page(status, MSG_ORIGIN_FAILED, &inner.via),
            Outcome::NotShared => pass_through(inner, &target, method, &path, None).await,
        },
    }
}

/// Whether the viewer sent, or announced, a request body: any `Transfer-Encoding`, a
/// `Content-Length` other than 0, or (HTTP/2) a stream that did not end with its headers.
fn declares_body<B: http_body::Body>(req: &Request<B>) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get_all(header::CONTENT_LENGTH).iter().any(|v| v.as_bytes() != b"0")
        || !req.body().is_end_stream()
}

/// The key of a cacheable request: purge generation, method class (GET and HEAD share
/// entries, OPTIONS has its own), the normalised path (length-prefixed: its bytes may be
/// anything), then the forwarded parts.
fn cache_key(
    dist: &Distribution,
    state: &DistState,
    method: &Method,
    path: &ViewerPath,
    forwarding: &Forwarding,
) -> CacheKey {
    let class = if *method == Method::OPTIONS { b'O' } else { b'G' };
    let path = path.as_bytes();
    let mut rest = Vec::with_capacity(path.len() + 32);
    rest.extend_from_slice(format!("{}\n", state.generation()).as_bytes());
    rest.push(class);
    rest.extend_from_slice(format!("\n{}:", path.len()).as_bytes());
    rest.extend_from_slice(path);
    rest.push(b'\n');
    forwarding.extend_key(&mut rest);
    CacheKey { dist: Arc::from(dist.id.as_str()), rest: rest.into_boxed_slice() }
}

/// A request that is not cached: the origin's response streams through.
async fn pass_through(
    inner: &Inner,
    target: &OriginTarget<'_>,
    method: Method,
    path: &ViewerPath,
    body: Option<UploadBody>,
) -> Response<EdgeBody> {
    let req = match target.request(method, path, true, body) {
        Ok(req) => req,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build origin request");
            return error_page(StatusCode::BAD_GATEWAY, MSG_ORIGIN_FAILED, &inner.via);
        }
    };
    let dist = target.dist;
    let res = match inner.origin.send(req, dist.origin.response_timeout).await {
        Ok(res) => res,
        Err(e) => {
            tracing::debug!(distribution = %dist.id, error = %e, "origin fetch failed");
            return error_page(e.status(), MSG_ORIGIN_FAILED, &inner.via);
        }
    };
    let (parts, body) = res.into_parts();
    let headers = clean_headers(parts.headers, &dist.cache_behavior_settings.forwarded_cookies);
    if let Some(custom) = dist.custom_error(parts.status) {
        let (status, headers, bytes) = custom_error(inner, target, custom, parts.status, headers, body).await;
        return finish(inner, status, headers, EdgeBody::full(bytes), XCache::Miss);
    }
    let body = OriginBody::new(body, dist.origin.response_timeout);
    finish(inner, parts.status, headers, EdgeBody::stream(body), XCache::Miss)
}

/// The one origin fetch of a coalesced miss or revalidation. What it learns is published to
/// the requests waiting on the lock: at once for a revalidation, an error or an uncacheable
/// response, and at the end of the body for a response that streams into the cache.
#[allow(clippy::too_many_arguments)]
async fn fetch_into_cache(
    inner: &Inner,
    target: &OriginTarget<'_>,
    method: &Method,
    path: &ViewerPath,
    viewer: &HeaderMap,
    key: CacheKey,
    cached: Option<Arc<Entry>>,
    leader: cache::Leader,
) -> Response<EdgeBody> {
    let dist = target.dist;
    let settings = &dist.cache_behavior_settings;
    let timeout = dist.origin.response_timeout;
    let mut req = match target.request(method.clone(), path, false, None) {
        Ok(req) => req,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build origin request");
            leader.publish(Outcome::Failed(StatusCode::BAD_GATEWAY));
            return error_page(StatusCode::BAD_GATEWAY, MSG_ORIGIN_FAILED, &inner.via);
        }
    };
    // The request the policy is computed for. http-cache-semantics stores GET and HEAD only;
    // an OPTIONS response that cachedHTTPMethods says to cache is judged as a GET's would be.
    // Only the request headers the crate's storability rules read are kept.
    let mut policy_req = Request::new(());
    *policy_req.method_mut() = Method::GET;
    *policy_req.uri_mut() = req.uri().clone();
    for name in [header::AUTHORIZATION, header::CACHE_CONTROL, header::PRAGMA] {
        if let Some(value) = req.headers().get(&name) {
            policy_req.headers_mut().insert(name, value.clone());
        }
    }
    if let Some(entry) = &cached {
        for (validator, condition) in
            [(header::ETAG, header::IF_NONE_MATCH), (header::LAST_MODIFIED, header::IF_MODIFIED_SINCE)]
        {
            if let Some(value) = entry.headers.get(&validator) {
                req.headers_mut().insert(condition, value.clone());
            }
        }
    }
    let answer = |outcome: Outcome| -> Response<EdgeBody> {
        match &outcome {
            Outcome::Entry(entry, x_cache) => {
                from_entry(inner, entry, *x_cache, method, viewer, inner.config.clock.now())
            }
            Outcome::Failed(status) => error_page(*status, MSG_ORIGIN_FAILED, &inner.via),
            Outcome::NotShared => error_page(StatusCode::BAD_GATEWAY, MSG_ORIGIN_FAILED, &inner.via),
        }
    };
    let stale = |status: StatusCode| {
        let now = inner.config.clock.now();
        match &cached {
            Some(entry) if now < entry.keep_until => Outcome::Entry(entry.clone(), XCache::Hit),
            _ => Outcome::Failed(status),
        }
    };
    let res = match inner.origin.send(req, timeout).await {
        Ok(res) => res,
        Err(e) => {
            tracing::debug!(distribution = %dist.id, error = %e, "origin fetch failed");
            let outcome = stale(e.status());
            leader.publish(outcome.clone());
            return answer(outcome);
        }
    };
    let now = inner.config.clock.now();
    let status = res.status();
    let stale_if_error = inner.cache.stale_if_error;

    if let (StatusCode::NOT_MODIFIED, Some(entry)) = (status, &cached) {
        let (parts, _) = res.into_parts();
        let stored = policy_for(&policy_req, entry.status, &entry.headers, entry.stored_at);
        let (policy, merged) = match stored.after_response(&policy_req, &parts, now) {
            AfterResponse::NotModified(policy, merged) | AfterResponse::Modified(policy, merged) => (policy, merged),
        };
        // The crate's merged view carries its own `Age`, `Date` (not in HTTP-date form) and
        // warnings; keep the origin's `Date` and the stored `Set-Cookie` instead.
        let mut headers = clean_headers(merged.headers, &settings.forwarded_cookies);
        headers.remove(header::AGE);
        headers.remove(header::WARNING);
        headers.remove(header::DATE);
        if let Some(date) = parts.headers.get(header::DATE).or_else(|| entry.headers.get(header::DATE)) {
            headers.insert(header::DATE, date.clone());
        }
        headers.remove(header::SET_COOKIE);
        for cookie in entry.headers.get_all(header::SET_COOKIE) {
            headers.append(header::SET_COOKIE, cookie.clone());
        }
        let error_ttl = dist.custom_error(entry.status).map(|c| c.error_caching_min_ttl);
        let ttl = cache::freshness(&policy, entry.status, &headers, settings, error_ttl, now).unwrap_or_default();
        let age = policy.age(now);
        let refreshed = Arc::new(Entry::new(entry.status, headers, entry.body.clone(), age, ttl, now, stale_if_error));
        inner.cache.insert(key, refreshed.clone());
        let outcome = Outcome::Entry(refreshed, XCache::RefreshHit);
        leader.publish(outcome.clone());
        return answer(outcome);
    }
    if status.is_server_error()
        && let Some(entry) = &cached
        && now < entry.keep_until
    {
        let outcome = Outcome::Entry(entry.clone(), XCache::Hit);
        leader.publish(outcome.clone());
        return answer(outcome);
    }

    let (parts, body) = res.into_parts();
    let headers = clean_headers(parts.headers, &settings.forwarded_cookies);
    if let Some(custom) = dist.custom_error(status) {
        let (status, headers, bytes) = custom_error(inner, target, custom, status, headers, body).await;
        let age = policy_for(&policy_req, status, &headers, now).age(now);
        let entry =
            Arc::new(Entry::new(status, headers, bytes, age, custom.error_caching_min_ttl, now, Duration::ZERO));
        if custom.error_caching_min_ttl > Duration::ZERO {
            inner.cache.insert(key, entry.clone());
        }
        let outcome = Outcome::Entry(entry, XCache::Miss);
        leader.publish(outcome.clone());
        return answer(outcome);
    }
    let policy = policy_for(&policy_req, status, &headers, now);
    let body = OriginBody::new(body, timeout);
    let too_large = || {
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
        declared.and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| n > inner.cache.max_object_bytes as u64)
    };
    let Some(ttl) = cache::freshness(&policy, status, &headers, settings, None, now).filter(|_| !too_large()) else {
        leader.publish(Outcome::NotShared);
        return finish(inner, status, headers, EdgeBody::stream(body), XCache::Miss);
    };
    let age = policy.age(now);
    if body.is_end_stream() {
        let entry = Arc::new(Entry::new(status, headers, Bytes::new(), age, ttl, now, stale_if_error));
        if entry.worth_storing() {
            inner.cache.insert(key, entry.clone());
        }
        let outcome = Outcome::Entry(entry, XCache::Miss);
        leader.publish(outcome.clone());
        return answer(outcome);
    }
    let pending =
        cache::Pending { store: inner.cache.clone(), key, leader, status, headers: headers.clone(), age, ttl, now };
    let fill = Fill::new(body, pending);
    if status == StatusCode::OK && not_modified(viewer, &headers) {
        // The viewer already holds this version: it gets its 304 now, and the body is read
        // into the cache without it (bounded like any fill, and by the origin's read timeout).
        tokio::spawn(async move {
            let mut fill = std::pin::pin!(fill);
            while let Some(Ok(_)) = fill.frame().await {}
        });
        let mut headers = headers;
        headers.remove(header::CONTENT_LENGTH);
        return finish(inner, StatusCode::NOT_MODIFIED, headers, EdgeBody::empty(), XCache::Miss);
    }
    finish(inner, status, headers, EdgeBody::fill(fill), XCache::Miss)
}

/// The crate's policy for a response. `Set-Cookie` is left out of its view: the crate refuses
/// to cache such responses by its own choice, while CloudFront caches them (with the cookies
/// the distribution forwards in the key, and the others' `Set-Cookie` already stripped).
fn policy_for(req: &Request<()>, status: StatusCode, headers: &HeaderMap, at: std::time::SystemTime) -> CachePolicy {
    let mut res = Response::new(());
    *res.status_mut() = status;
    *res.headers_mut() = headers.clone();
    res.headers_mut().remove(header::SET_COOKIE);
    CachePolicy::new_options(req, &res, at, cache::policy_options())
}

/// Reads a body up to `max` bytes within the edge's fill budget, waiting at most `timeout`
/// for each frame. `None`: too large, over budget, or failed.
async fn collect_limited(
    mut body: Incoming,
    max: usize,
    timeout: Duration,
    reservation: &mut Reservation,
) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > max || !reservation.grow(data.len()) {
                        return None;
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Ok(None) => return Some(Bytes::copy_from_slice(&buf)),
            Ok(Some(Err(_))) | Err(_) => return None,
        }
    }
}

/// Builds a custom error response: `responseCode` (or the origin's status) with the page at
/// `responsePagePath` fetched from the origin, or the origin's own body when no page is named
/// or the page cannot be fetched.
async fn custom_error(
    inner: &Inner,
    target: &OriginTarget<'_>,
    custom: &CustomErrorResponse,
    origin_status: StatusCode,
    origin_headers: HeaderMap,
    origin_body: Incoming,
) -> (StatusCode, HeaderMap, Bytes) {
    let status = custom.response_code.unwrap_or(origin_status);
    let max = inner.cache.max_object_bytes;
    let timeout = target.dist.origin.response_timeout;
    let mut reservation = Reservation::new(inner.cache.budget().clone());
    if let Some(page) = &custom.response_page_path
        && let Ok(page) = ViewerPath::configured(page)
        && let Ok(req) = target.request(Method::GET, &page, false, None)
        && let Ok(res) = inner.origin.send(req, timeout).await
        && res.status().is_success()
    {
        let (parts, body) = res.into_parts();
        if let Some(bytes) = collect_limited(body, max, timeout, &mut reservation).await {
            let mut headers = clean_headers(parts.headers, &target.dist.cache_behavior_settings.forwarded_cookies);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            return (status, headers, bytes);
        }
    }
    let bytes = collect_limited(origin_body, max, timeout, &mut reservation).await.unwrap_or_default();
    let mut headers = origin_headers;
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    (status, headers, bytes)
}

/// Response headers never passed on or stored: hop-by-hop ones, and `Set-Cookie` for cookies
/// the distribution does not forward (CloudFront strips those).
fn clean_headers(mut headers: HeaderMap, cookies: &Forwarded) -> HeaderMap {
    // Names, not strings: a string would be parsed into a name on every response.
    const HOP_BY_HOP: [HeaderName; 7] = [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::TRANSFER_ENCODING,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
    ];
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    match cookies {
        Forwarded::All => {}
        Forwarded::None => {
            headers.remove(header::SET_COOKIE);
        }
        Forwarded::AllowList(names) => {
            let kept: Vec<HeaderValue> = headers
                .get_all(header::SET_COOKIE)
                .iter()
                .filter(|v| {
                    let text = v.to_str().unwrap_or("");
                    let name = text.split(['=', ';']).next().unwrap_or("").trim();
                    names.iter().any(|n| n == name)
                })
                .cloned()
                .collect();
            headers.remove(header::SET_COOKIE);
            for value in kept {
                headers.append(header::SET_COOKIE, value);
            }
        }
    }
    headers
}

/// A response from a stored entry, with `Age`, and 304 for a matching viewer validator.
fn from_entry(
    inner: &Inner,
    entry: &Entry,
    x_cache: XCache,
    method: &Method,
    viewer: &HeaderMap,
    now: std::time::SystemTime,
) -> Response<EdgeBody> {
    let mut headers = entry.headers.clone();
    if x_cache != XCache::Miss {
        headers.insert(header::AGE, HeaderValue::from(entry.age(now).as_secs()));
    }
    if entry.status == StatusCode::OK && not_modified(viewer, &entry.headers) {
        headers.remove(header::CONTENT_LENGTH);
        return finish(inner, StatusCode::NOT_MODIFIED, headers, EdgeBody::empty(), x_cache);
    }
    let body = if *method == Method::HEAD { EdgeBody::empty() } else { EdgeBody::full(entry.body.clone()) };
    finish(inner, entry.status, headers, body, x_cache)
}

/// RFC 9110 §13.1.2 / §13.1.3: `If-None-Match` (weak comparison) decides when present,
/// otherwise an `If-Modified-Since` equal to `Last-Modified`.
fn not_modified(viewer: &HeaderMap, stored: &HeaderMap) -> bool {
    if let Some(inm) = viewer.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        let Some(etag) = stored.get(header::ETAG).and_then(|v| v.to_str().ok()) else { return false };
        let weak = |t: &str| t.trim().trim_start_matches("W/").to_owned();
        return inm.split(',').any(|t| t.trim() == "*" || weak(t) == weak(etag));
    }
    match (viewer.get(header::IF_MODIFIED_SINCE), stored.get(header::LAST_MODIFIED)) {
        (Some(since), Some(modified)) => since == modified,
        _ => false,
    }
}

/// Adds `X-Cache` and `Via` to a response for the viewer.
fn finish(
    inner: &Inner,
    status: StatusCode,
    mut headers: HeaderMap,
    body: EdgeBody,
    x_cache: XCache,
) -> Response<EdgeBody> {
    let value = HeaderValue::from_static(match x_cache {
        XCache::Hit => "Hit from carapace",
        XCache::RefreshHit => "RefreshHit from carapace",
        XCache::Miss => "Miss from carapace",
    });
    headers.insert("x-cache", value);
    let via = match headers.get(header::VIA).and_then(|v| v.to_str().ok()) {
        Some(earlier) => HeaderValue::from_str(&format!("{earlier}, {}", inner.via.to_str().unwrap_or("1.1 carapace")))
            .unwrap_or_else(|_| inner.via.clone()),
        None => inner.via.clone(),
    };
    headers.insert(header::VIA, via);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// An error the edge answers itself, in the shape of CloudFront's error page.
fn error_page(status: StatusCode, message: &str, via: &HeaderValue) -> Response<EdgeBody> {
    let code = status.as_u16();
    let body = format!(
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01 Transitional//EN\" \"http://www.w3.org/TR/html4/loose.dtd\">\n\
         <HTML><HEAD><META HTTP-EQUIV=\"Content-Type\" CONTENT=\"text/html; charset=iso-8859-1\">\n\
         <TITLE>ERROR: The request could not be satisfied</TITLE>\n</HEAD><BODY>\n\
         <H1>{code} ERROR</H1>\n<H2>The request could not be satisfied.</H2>\n<HR noshade size=\"1px\">\n\
         {message}\n<BR clear=\"all\">\n<HR noshade size=\"1px\">\n<PRE>\nGenerated by carapace\n</PRE>\n</BODY></HTML>\n"
    );
    let mut response = Response::new(EdgeBody::full(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    headers.insert("x-cache", HeaderValue::from_static("Error from carapace"));
    headers.insert(header::VIA, via.clone());
    response
}
