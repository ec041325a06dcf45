//! The immutable view of distributions the edge serves from, shaped after Lightsail's
//! `LightsailDistribution` (field names follow the API's, in snake case) plus the TLS material
//! the owner resolved for each one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode, Uri};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::tls::TlsPolicy;

/// Why a [`Snapshot`] or a certificate was refused.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Two distributions share an id.
    #[error("distribution id {0:?} appears twice")]
    DuplicateId(String),
    /// A host name is claimed by two distributions.
    #[error("domain name {name:?} is claimed by distributions {first:?} and {second:?}")]
    DuplicateDomain {
        /// The name.
        name: String,
        /// The distribution listed first.
        first: String,
        /// The distribution listed second.
        second: String,
    },
    /// A domain name is empty or not ASCII.
    #[error("distribution {id:?}: invalid domain name {name:?}")]
    InvalidDomain {
        /// The distribution.
        id: String,
        /// The name.
        name: String,
    },
    /// The origin URL is not `http(s)://host[:port][/path]`.
    #[error("distribution {id:?}: origin URL {url:?} must be http(s)://host[:port][/path] without a query")]
    InvalidOrigin {
        /// The distribution.
        id: String,
        /// The URL.
        url: String,
    },
    /// TTLs out of order (`minimumTTL` ≤ `maximumTTL` is required).
    #[error("distribution {0:?}: minimumTTL is greater than maximumTTL")]
    TtlOrder(String),
    /// The certificate or key PEM could not be used.
    #[error("certificate: {0}")]
    Certificate(String),
}

/// The distributions an edge serves, with their certificates. Built by the owner from the
/// store, replaced whole by [`Edge::swap`](crate::Edge::swap).
#[derive(Debug, Default)]
pub struct Snapshot {
    distributions: Vec<Arc<Distribution>>,
    /// Lower-case host name → index.
    by_name: HashMap<String, usize>,
    /// `*.example.com` alternative names, stored as `example.com` → index.
    by_wildcard_parent: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

impl Snapshot {
    /// A snapshot with no distribution.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Checks and indexes `distributions`: ids and host names must be unique, origins valid.
    pub fn new(distributions: impl IntoIterator<Item = Distribution>) -> Result<Self, SnapshotError> {
        let mut snapshot = Self::default();
        for dist in distributions {
            let index = snapshot.distributions.len();
            if snapshot.by_id.insert(dist.id.clone(), index).is_some() {
                return Err(SnapshotError::DuplicateId(dist.id));
            }
            dist.origin.check(&dist.id)?;
            let s = &dist.cache_behavior_settings;
            if s.minimum_ttl > s.maximum_ttl {
                return Err(SnapshotError::TtlOrder(dist.id));
            }
            for name in dist.names() {
                let name = normalize_host(name);
                if name.is_empty() || !name.is_ascii() || name.contains(['/', ' ', ':']) {
                    return Err(SnapshotError::InvalidDomain { id: dist.id.clone(), name });
                }
                let (map, key) = match name.strip_prefix("*.") {
                    Some(parent) => (&mut snapshot.by_wildcard_parent, parent.to_owned()),
                    None => (&mut snapshot.by_name, name.clone()),
                };
                if let Some(first) = map.insert(key, index)
                    && first != index
                {
                    return Err(SnapshotError::DuplicateDomain {
                        name,
                        first: snapshot.distributions[first].id.clone(),
                        second: dist.id.clone(),
                    });
                }
            }
            snapshot.distributions.push(Arc::new(dist));
        }
        Ok(snapshot)
    }

    /// Every distribution, in the order given to [`Snapshot::new`].
    pub fn distributions(&self) -> &[Arc<Distribution>] {
        &self.distributions
    }

    /// The distribution serving `host` (an SNI name or a `Host` header without its port):
    /// an exact name first, then a wildcard alternative name one label up.
    pub fn find(&self, host: &str) -> Option<&Arc<Distribution>> {
        self.find_index(host).map(|i| &self.distributions[i])
    }

    /// The distribution with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Distribution>> {
        self.index_of(id).map(|i| &self.distributions[i])
    }

    pub(crate) fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn find_index(&self, host: &str) -> Option<usize> {
        let host = normalize_host(host);
        if let Some(i) = self.by_name.get(&host) {
            return Some(*i);
        }
        let (_, parent) = host.split_once('.')?;
        self.by_wildcard_parent.get(parent).copied()
    }
}

/// Lower case, without a trailing dot.
pub(crate) fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// One distribution as the edge serves it.
#[derive(Debug, Clone)]
pub struct Distribution {
    /// Stable identity: keys counters, purges and cache entries (the owner uses the ARN or name).
    pub id: String,
    /// The distribution's default domain (`domainName`, e.g. `d1234567890abc.cdn.carapace.internal`).
    pub domain_name: String,
    /// `alternativeDomainNames` (and the Lightsail subdomain, if any). `*.example.com` serves
    /// every name one label below `example.com`.
    pub alternative_domain_names: Vec<String>,
    /// `isEnabled`: a disabled distribution answers 403.
    pub is_enabled: bool,
    /// Where content comes from.
    pub origin: Origin,
    /// `defaultCacheBehavior`: for paths no [`Distribution::cache_behaviors`] entry matches.
    pub default_cache_behavior: Behavior,
    /// `cacheBehaviorSettings`.
    pub cache_behavior_settings: CacheSettings,
    /// `cacheBehaviors`: per-path overrides, first match wins.
    pub cache_behaviors: Vec<PathBehavior>,
    /// `viewerMinimumTlsProtocolVersion`.
    pub viewer_minimum_tls_protocol_version: TlsPolicy,
    /// `defaultRootObject` (e.g. `index.html`): what `/` serves.
    pub default_root_object: Option<String>,
    /// `customErrorResponses`.
    pub custom_error_responses: Vec<CustomErrorResponse>,
    /// The certificate served for every name of the distribution: the attached Lightsail
    /// certificate, or the edge's wildcard for the default domain.
    pub certificate: Arc<CertifiedKey>,
}

impl Distribution {
    /// A distribution with Lightsail's defaults for everything but its identity, name, origin
    /// and certificate: enabled, caching everything, [`CacheSettings::default`], TLSv1.2_2021.
    pub fn new(
        id: impl Into<String>,
        domain_name: impl Into<String>,
        origin: Origin,
        certificate: Arc<CertifiedKey>,
    ) -> Self {
        Self {
            id: id.into(),
            domain_name: domain_name.into(),
            alternative_domain_names: Vec::new(),
            is_enabled: true,
            origin,
            default_cache_behavior: Behavior::Cache,
            cache_behavior_settings: CacheSettings::default(),
            cache_behaviors: Vec::new(),
            viewer_minimum_tls_protocol_version: TlsPolicy::Tls12_2021,
            default_root_object: None,
            custom_error_responses: Vec::new(),
            certificate,
        }
    }

    /// The default domain then the alternative names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.domain_name.as_str()).chain(self.alternative_domain_names.iter().map(String::as_str))
    }

    /// The behaviour for a request path, as Lightsail documents per-path behaviours: patterns
    /// are relative to the root (a leading `/` is ignored on both sides), case-sensitive, `*`
    /// matches any run of characters (`/` included), a pattern ending in `/` covers that
    /// directory; the first matching entry wins, then the default.
    pub fn behavior_for(&self, path: &str) -> Behavior {
        let path = path.trim_start_matches('/');
        self.cache_behaviors
            .iter()
            .find(|b| path_matches(&b.path, path))
            .map_or(self.default_cache_behavior, |b| b.behavior)
    }

    /// The custom error response configured for an origin status, if any.
    pub fn custom_error(&self, status: StatusCode) -> Option<&CustomErrorResponse> {
        self.custom_error_responses.iter().find(|c| c.error_code == status.as_u16())
    }
}

/// `*`-glob match of a Lightsail path pattern against a path (both without leading `/`).
fn path_matches(pattern: &str, path: &str) -> bool {
    let pattern = pattern.trim_start_matches('/');
    match pattern.strip_suffix('/') {
        Some(dir) => glob(dir.as_bytes(), path.as_bytes()) || glob(format!("{pattern}*").as_bytes(), path.as_bytes()),
        None => glob(pattern.as_bytes(), path.as_bytes()),
    }
}

/// Whole-text wildcard match, `*` matching any run of bytes; backtracks only to the last `*`,
/// so it is linear-ish and cannot blow up on hostile paths.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p + 1, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((after_star, from)) = star {
            p = after_star;
            t = from + 1;
            star = Some((after_star, from + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// `origin`: where the distribution pulls from (the operator-declared origin's URL).
#[derive(Debug, Clone)]
pub struct Origin {
    /// `http(s)://host[:port][/path]`; the path, if any, prefixes every request path. The
    /// scheme is replaced by the one [`Origin::protocol_policy`] names.
    pub url: Uri,
    /// `protocolPolicy`.
    pub protocol_policy: ProtocolPolicy,
    /// `responseTimeout`: how long to wait for the origin's response head (then 504).
    pub response_timeout: Duration,
}

impl Origin {
    /// An origin with Lightsail's default timeout (30 s).
    pub fn new(url: Uri, protocol_policy: ProtocolPolicy) -> Self {
        Self { url, protocol_policy, response_timeout: Duration::from_secs(30) }
    }

    fn check(&self, id: &str) -> Result<(), SnapshotError> {
        let ok = self.url.authority().is_some()
            && matches!(self.url.scheme_str(), Some("http" | "https"))
            && self.url.query().is_none();
        if ok { Ok(()) } else { Err(SnapshotError::InvalidOrigin { id: id.to_owned(), url: self.url.to_string() }) }
    }
}

/// `protocolPolicy`: the scheme used to reach the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolPolicy {
    /// `http-only`.
    HttpOnly,
    /// `https-only`: the origin's certificate is verified.
    HttpsOnly,
}

/// `behavior`: cache or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// `cache`.
    Cache,
    /// `dont-cache`: every request goes to the origin.
    DontCache,
}

/// One entry of `cacheBehaviors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathBehavior {
    /// `path`: e.g. `images/*.jpg`, `*.html`, `assets/`.
    pub path: String,
    /// `behavior`.
    pub behavior: Behavior,
}

/// `cacheBehaviorSettings`.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `defaultTTL`: freshness when the origin sends neither `Cache-Control` nor `Expires`.
    pub default_ttl: Duration,
    /// `minimumTTL`: the least freshness, even against `no-cache`/`no-store`/`private`.
    pub minimum_ttl: Duration,
    /// `maximumTTL`: the most freshness, whatever the origin says.
    pub maximum_ttl: Duration,
    /// `allowedHTTPMethods`: others get 403.
    pub allowed_http_methods: Methods,
    /// `cachedHTTPMethods`.
    pub cached_http_methods: Methods,
    /// `forwardedCookies`.
    pub forwarded_cookies: Forwarded,
    /// `forwardedHeaders`.
    pub forwarded_headers: Forwarded,
    /// `forwardedQueryStrings`.
    pub forwarded_query_strings: QueryStrings,
}

impl Default for CacheSettings {
    /// Lightsail's defaults: TTLs 86400 / 0 / 31536000 s, all methods allowed, GET and HEAD
    /// cached, nothing forwarded.
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(86_400),
            minimum_ttl: Duration::ZERO,
            maximum_ttl: Duration::from_secs(31_536_000),
            allowed_http_methods: Methods::ALL,
            cached_http_methods: Methods::GET_HEAD,
            forwarded_cookies: Forwarded::None,
            forwarded_headers: Forwarded::None,
            forwarded_query_strings: QueryStrings::default(),
        }
    }
}

/// `option` with its allow list, for cookies and headers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Forwarded {
    /// `none`: stripped before the origin request, not part of the cache key.
    #[default]
    None,
    /// `allow-list`: only these names (headers case-insensitive, cookies case-sensitive) are
    /// forwarded, and they are part of the cache key.
    AllowList(Vec<String>),
    /// `all`: everything is forwarded and keyed. For headers this disables caching, as in
    /// CloudFront (which is why Lightsail requires `minimumTTL` 0 then).
    All,
}

/// `forwardedQueryStrings`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryStrings {
    /// `option`: forward (and key on) query strings at all.
    pub forward: bool,
    /// `queryStringsAllowList`: if not empty, only these parameters are forwarded and keyed.
    pub allow_list: Vec<String>,
}

/// A set of the HTTP methods Lightsail names (`GET,HEAD,OPTIONS,PUT,PATCH,POST,DELETE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods(u8);

impl Methods {
    /// `GET,HEAD`.
    pub const GET_HEAD: Methods = Methods(0b0000_0011);
    /// `GET,HEAD,OPTIONS`.
    pub const GET_HEAD_OPTIONS: Methods = Methods(0b0000_0111);
    /// `GET,HEAD,OPTIONS,PUT,PATCH,POST,DELETE`.
    pub const ALL: Methods = Methods(0b0111_1111);

    const NAMES: [&'static str; 7] = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"];

    /// Parses Lightsail's comma-separated form; `None` names an unknown method.
    pub fn parse(list: &str) -> Option<Methods> {
        let mut bits = 0u8;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let i = Self::NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))?;
            bits |= 1 << i;
        }
        Some(Methods(bits))
    }

    /// Whether `method` is in the set.
    pub fn contains(&self, method: &Method) -> bool {
        Self::NAMES.iter().position(|n| *n == method.as_str()).is_some_and(|i| self.0 & (1 << i) != 0)
    }
}

impl std::fmt::Display for Methods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> =
            Self::NAMES.iter().enumerate().filter(|(i, _)| self.0 & (1 << i) != 0).map(|(_, n)| *n).collect();
        f.write_str(&names.join(","))
    }
}

/// One of `customErrorResponses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomErrorResponse {
    /// `errorCode`: the origin status this applies to.
    pub error_code: u16,
    /// `responseCode`: the status the viewer gets (the origin's when `None`).
    pub response_code: Option<StatusCode>,
    /// `responsePagePath`: fetched from the origin and served as the body.
    pub response_page_path: Option<String>,
    /// `errorCachingMinTTL`: how long the error response is cached.
    pub error_caching_min_ttl: Duration,
}

/// Loads a certificate chain (leaf first) and its private key (PKCS#8, SEC1 or PKCS#1 PEM)
/// into what the SNI resolver serves, checking that the key matches the leaf.
pub fn certified_key_from_pem(chain_pem: &str, key_pem: &str) -> Result<Arc<CertifiedKey>, SnapshotError> {
    let err = |e: &dyn std::fmt::Display| SnapshotError::Certificate(e.to_string());
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<_, _>>().map_err(|e| err(&e))?;
    if chain.is_empty() {
        return Err(SnapshotError::Certificate("no certificate in the chain PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| err(&e))?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| err(&e))?;
    Ok(Arc::new(key))
}

/// Loads a certificate chain (DER, leaf first) and its PKCS#8 private key into what the SNI
/// resolver serves, checking that the key matches the leaf.
pub fn certified_key_from_der(chain: Vec<Vec<u8>>, key_pkcs8: &[u8]) -> Result<Arc<CertifiedKey>, SnapshotError> {
    if chain.is_empty() {
        return Err(SnapshotError::Certificate("no certificate in the chain".into()));
    }
    let chain: Vec<CertificateDer<'static>> = chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(key_pkcs8.to_vec()));
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| SnapshotError::Certificate(e.to_string()))?;
    Ok(Arc::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_as_lightsail_documents() {
        let cases = [
            ("images/*.jpg", "/images/a.jpg", true),
            ("images/*.jpg", "/images/sub/a.jpg", true),
            ("images/*.jpg", "/images/a.png", false),
            ("images/*.jpg", "/Images/a.jpg", false),
            ("*.html", "/a/b/index.html", true),
            ("*.html", "/index.htm", false),
            ("*jpg", "/x.jpg", true),
            ("var/www/html/", "/var/www/html/index.html", true),
            ("var/www/html/", "/var/www/html", true),
            ("var/www/html/", "/var/www/htmlx", false),
            ("/assets/*", "/assets/app.js", true),
            ("assets/*", "/other/app.js", false),
            ("index.html", "/index.html", true),
            ("index.html", "/index.html.bak", false),
            ("a*b*c", "/axxbyyc", true),
            ("a*b*c", "/axxbyy", false),
        ];
        for (pattern, path, expected) in cases {
            assert_eq!(path_matches(pattern, path.trim_start_matches('/')), expected, "{pattern} vs {path}");
        }
    }

    #[test]
    fn methods_parse_and_contain() {
        let m = Methods::parse("GET,HEAD,OPTIONS").unwrap();
        assert_eq!(m, Methods::GET_HEAD_OPTIONS);
        assert!(m.contains(&Method::OPTIONS));
        assert!(!m.contains(&Method::POST));
        assert!(!Methods::ALL.contains(&Method::TRACE));
        assert_eq!(Methods::ALL.to_string(), "GET,HEAD,OPTIONS,PUT,PATCH,POST,DELETE");
        assert!(Methods::parse("GET,TRACE").is_none());
    }
}
