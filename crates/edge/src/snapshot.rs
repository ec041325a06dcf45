//! The immutable view of distributions the edge serves from, shaped after Lightsail's
//! `LightsailDistribution` (field names follow the API's, in snake case) plus the TLS material
//! the owner resolved for each one.
//!
//! A [`Snapshot`] is never changed in place: [`Snapshot::updated`] makes the next one from
//! the current one and a few [`SnapshotChange`]s, sharing every unchanged
//! [`Distribution`] (`Arc`) and host-name key (`Arc<str>`), so a change costs the copy of the
//! indexes, not a rebuild of every distribution.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode, Uri};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::tls::TlsPolicy;

/// Why a [`Snapshot`], a distribution in it, or a certificate was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SnapshotError {
    /// Two distributions share an id.
    #[error("distribution id {0:?} appears twice")]
    DuplicateId(String),
    /// A host name is claimed by two distributions.
    #[error("domain name {name:?} is claimed by distributions {first:?} and {second:?}")]
    DuplicateDomain {
        /// The name.
        name: String,
        /// The distribution that holds it.
        first: String,
        /// The distribution refused for claiming it too.
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

impl SnapshotChange {
    /// [`SnapshotChange::Upsert`] of a new distribution value.
    pub fn upsert(distribution: Distribution) -> Self {
        Self::Upsert(Arc::new(distribution))
    }
}

impl SnapshotError {
    /// The distribution the error is about (`None` for a certificate error).
    pub fn distribution(&self) -> Option<&str> {
        match self {
            Self::DuplicateId(id) | Self::TtlOrder(id) => Some(id),
            Self::DuplicateDomain { second: id, .. }
            | Self::InvalidDomain { id, .. }
            | Self::InvalidOrigin { id, .. } => Some(id),
            Self::Certificate(_) => None,
        }
    }
}

/// A distribution left out of a snapshot, and why. The snapshot keeps serving the version it
/// had before, if any.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// [`Distribution::id`].
    pub id: String,
    /// What is wrong with it.
    pub error: SnapshotError,
}

/// One change to apply with [`Snapshot::updated`].
#[derive(Debug, Clone)]
pub enum SnapshotChange {
    /// Adds the distribution, or replaces the one with its [`Distribution::id`] (an `Arc`, so
    /// a version already served can be given again without a copy).
    Upsert(Arc<Distribution>),
    /// Stops serving the distribution with this id (nothing when it is not served).
    Remove(String),
}

/// Which certificate a host name of a distribution is served with. CloudFront serves its own
/// `*.cloudfront.net` certificate on a distribution's default domain whatever certificate is
/// attached, and the attached one on the alternate domain names (CloudFront Developer Guide,
/// "Using alternate domain names and HTTPS"); Lightsail distributions do the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServedCertificate {
    /// The default domain and the Lightsail subdomain: [`Distribution::default_certificate`].
    Default,
    /// An alternative domain name: [`Distribution::certificate`] when one is attached.
    Attached,
}

/// Where a host name leads: the distribution's position and the certificate for that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    index: usize,
    certificate: ServedCertificate,
}

/// The distributions an edge serves, with their certificates. Built by the owner from the
/// store, replaced whole by [`Edge::swap`](crate::Edge::swap) or changed per distribution by
/// [`Edge::update`](crate::Edge::update).
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    distributions: Vec<Arc<Distribution>>,
    /// Lower-case host name → slot.
    by_name: HashMap<Arc<str>, Slot>,
    /// `*.example.com` alternative names, stored as `example.com` → slot.
    by_wildcard_parent: HashMap<Arc<str>, Slot>,
    by_id: HashMap<Arc<str>, usize>,
}

impl Snapshot {
    /// A snapshot with no distribution.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Checks and indexes `distributions`: ids and host names must be unique, origins valid.
    /// The first problem refuses the whole snapshot; [`Snapshot::build`] leaves out only the
    /// distributions at fault.
    pub fn new(distributions: impl IntoIterator<Item = Distribution>) -> Result<Self, SnapshotError> {
        let (snapshot, rejected) = Self::build(distributions);
        match rejected.into_iter().next() {
            Some(r) => Err(r.error),
            None => Ok(snapshot),
        }
    }

    /// Checks and indexes `distributions`, leaving out (and returning) each one that cannot be
    /// served: a duplicate id, a host name an earlier distribution holds, an invalid origin,
    /// name or TTL order. One bad distribution never keeps the others from being served.
    pub fn build(distributions: impl IntoIterator<Item = Distribution>) -> (Self, Vec<Rejected>) {
        let mut snapshot = Self::empty();
        let mut rejected = Vec::new();
        for dist in distributions {
            let outcome = if snapshot.by_id.contains_key(dist.id.as_str()) {
                Err(SnapshotError::DuplicateId(dist.id.clone()))
            } else {
                snapshot.upsert(Arc::new(dist))
            };
            if let Err(error) = outcome {
                let id = error.distribution().unwrap_or_default().to_owned();
                rejected.push(Rejected { id, error });
            }
        }
        (snapshot, rejected)
    }

    /// The snapshot after `changes`, applied in order, and the upserts it refused. A refused
    /// upsert leaves the distribution's previous version (if any) served, as CloudFront keeps
    /// the last deployed configuration when an update fails. Unchanged distributions are
    /// shared with `self`, not copied.
    pub fn updated(&self, changes: impl IntoIterator<Item = SnapshotChange>) -> (Self, Vec<Rejected>) {
        let mut next = self.clone();
        let mut rejected = Vec::new();
        for change in changes {
            match change {
                SnapshotChange::Remove(id) => {
                    if let Some(index) = next.index_of(&id) {
                        next.remove_at(index);
                    }
                }
                SnapshotChange::Upsert(dist) => {
                    if let Err(error) = next.upsert(dist) {
                        let id = error.distribution().unwrap_or_default().to_owned();
                        rejected.push(Rejected { id, error });
                    }
                }
            }
        }
        (next, rejected)
    }

    fn upsert(&mut self, dist: Arc<Distribution>) -> Result<(), SnapshotError> {
        dist.check()?;
        let keys = dist.keys()?;
        let previous = self.index_of(&dist.id);
        if let Some(index) = previous {
            self.unindex(index);
        }
        let index = previous.unwrap_or(self.distributions.len());
        if let Err(e) = self.check_free(&keys, index, &dist.id) {
            if let Some(index) = previous {
                // Its previous version's names were free a moment ago: nothing has taken them.
                let old = self.distributions[index].clone();
                if let Ok(old_keys) = old.keys() {
                    self.index(&old_keys, index);
                }
            }
            return Err(e);
        }
        self.index(&keys, index);
        match previous {
            Some(index) => self.distributions[index] = dist,
            None => {
                self.by_id.insert(Arc::from(dist.id.as_str()), index);
                self.distributions.push(dist);
            }
        }
        Ok(())
    }

    /// Removes the distribution at `index`; the last one takes its place.
    fn remove_at(&mut self, index: usize) {
        self.unindex(index);
        let removed = self.distributions.swap_remove(index);
        self.by_id.remove(removed.id.as_str());
        let moved_from = self.distributions.len();
        if let Some(moved) = self.distributions.get(index).cloned() {
            if let Some(i) = self.by_id.get_mut(moved.id.as_str()) {
                *i = index;
            }
            if let Ok(keys) = moved.keys() {
                for key in &keys {
                    if let Some(slot) = self.map_mut(key.wildcard).get_mut(key.name.as_ref())
                        && slot.index == moved_from
                    {
                        slot.index = index;
                    }
                }
            }
        }
    }

    /// Drops the names that lead to `index`.
    fn unindex(&mut self, index: usize) {
        let dist = self.distributions[index].clone();
        if let Ok(keys) = dist.keys() {
            for key in &keys {
                let map = self.map_mut(key.wildcard);
                if map.get(key.name.as_ref()).is_some_and(|s| s.index == index) {
                    map.remove(key.name.as_ref());
                }
            }
        }
    }

    fn check_free(&self, keys: &[NameKey], index: usize, id: &str) -> Result<(), SnapshotError> {
        for key in keys {
            let map = if key.wildcard { &self.by_wildcard_parent } else { &self.by_name };
            if let Some(slot) = map.get(key.name.as_ref())
                && slot.index != index
            {
                return Err(SnapshotError::DuplicateDomain {
                    name: key.display(),
                    first: self.distributions[slot.index].id.clone(),
                    second: id.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn index(&mut self, keys: &[NameKey], index: usize) {
        for key in keys {
            let slot = Slot { index, certificate: key.certificate };
            // A name given twice keeps its first role: the default domain wins over an
            // alternative name equal to it.
            self.map_mut(key.wildcard).entry(key.name.clone()).or_insert(slot);
        }
    }

    fn map_mut(&mut self, wildcard: bool) -> &mut HashMap<Arc<str>, Slot> {
        if wildcard { &mut self.by_wildcard_parent } else { &mut self.by_name }
    }

    /// Every distribution (in the order given to [`Snapshot::new`]; after
    /// [`Snapshot::updated`], a removed distribution's place goes to the last one).
    pub fn distributions(&self) -> &[Arc<Distribution>] {
        &self.distributions
    }

    /// The distribution serving `host` (an SNI name or a `Host` header without its port):
    /// an exact name first, then a wildcard alternative name one label up.
    pub fn find(&self, host: &str) -> Option<&Arc<Distribution>> {
        self.find_index(host).map(|i| &self.distributions[i])
    }

    /// The certificate a TLS handshake for `host` (the SNI name) gets: the edge's default
    /// certificate for a distribution's default domain and subdomain, the attached one for
    /// its alternative names. Hash-map reads and a reference count; no allocation for a
    /// lower-case name, which is what rustls hands over.
    pub fn certificate_for(&self, host: &str) -> Option<&Arc<CertifiedKey>> {
        let slot = self.find_slot(host)?;
        let dist = &self.distributions[slot.index];
        Some(match (slot.certificate, &dist.certificate) {
            (ServedCertificate::Attached, Some(attached)) => attached,
            _ => &dist.default_certificate,
        })
    }

    /// Which certificate `host` is served with (`None`: no distribution serves it).
    pub fn served_certificate(&self, host: &str) -> Option<ServedCertificate> {
        self.find_slot(host).map(|s| s.certificate)
    }

    /// The distribution with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<Distribution>> {
        self.index_of(id).map(|i| &self.distributions[i])
    }

    pub(crate) fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    pub(crate) fn find_index(&self, host: &str) -> Option<usize> {
        self.find_slot(host).map(|s| s.index)
    }

    fn find_slot(&self, host: &str) -> Option<Slot> {
        let host = normalized(host);
        if let Some(slot) = self.by_name.get(host.as_ref()) {
            return Some(*slot);
        }
        let (_, parent) = host.split_once('.')?;
        self.by_wildcard_parent.get(parent).copied()
    }
}

/// One host name as the indexes key it.
struct NameKey {
    /// Lower case; a wildcard's parent (`example.com` for `*.example.com`).
    name: Arc<str>,
    wildcard: bool,
    certificate: ServedCertificate,
}

impl NameKey {
    fn display(&self) -> String {
        if self.wildcard { format!("*.{}", self.name) } else { self.name.to_string() }
    }
}

/// Lower case, without a trailing dot.
pub(crate) fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// [`normalize_host`], borrowing when the name is already normal (SNI names are: rustls
/// lower-cases them).
fn normalized(host: &str) -> Cow<'_, str> {
    if host.ends_with('.') || host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(normalize_host(host))
    } else {
        Cow::Borrowed(host)
    }
}

/// One distribution as the edge serves it.
#[derive(Debug, Clone)]
pub struct Distribution {
    /// Stable identity: keys counters, purges and cache entries (the owner uses the ARN or name).
    pub id: String,
    /// The distribution's default domain (`domainName`, e.g. `d1234567890abc.cdn.carapace.internal`):
    /// always served with [`Distribution::default_certificate`].
    pub domain_name: String,
    /// The Lightsail subdomain's host (`<name>.<edge domain>`), if any: served like the
    /// default domain, with [`Distribution::default_certificate`].
    pub subdomain: Option<String>,
    /// `alternativeDomainNames`: served with [`Distribution::certificate`] (the default
    /// certificate when none is attached). `*.example.com` serves every name one label below
    /// `example.com`.
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
    /// The edge's own certificate (`*.<edge domain>`, CloudFront's `*.cloudfront.net`), for
    /// the default domain and the subdomain.
    pub default_certificate: Arc<CertifiedKey>,
    /// The attached Lightsail certificate, for the alternative domain names.
    pub certificate: Option<Arc<CertifiedKey>>,
}

impl Distribution {
    /// A distribution with Lightsail's defaults for everything but its identity, name, origin
    /// and default certificate: enabled, caching everything, [`CacheSettings::default`],
    /// TLSv1.2_2021, no subdomain, no alternative name, no attached certificate.
    pub fn new(
        id: impl Into<String>,
        domain_name: impl Into<String>,
        origin: Origin,
        default_certificate: Arc<CertifiedKey>,
    ) -> Self {
        Self {
            id: id.into(),
            domain_name: domain_name.into(),
            subdomain: None,
            alternative_domain_names: Vec::new(),
            is_enabled: true,
            origin,
            default_cache_behavior: Behavior::Cache,
            cache_behavior_settings: CacheSettings::default(),
            cache_behaviors: Vec::new(),
            viewer_minimum_tls_protocol_version: TlsPolicy::Tls12_2021,
            default_root_object: None,
            custom_error_responses: Vec::new(),
            default_certificate,
            certificate: None,
        }
    }

    /// The default domain, the subdomain, then the alternative names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.domain_name.as_str())
            .chain(self.subdomain.as_deref())
            .chain(self.alternative_domain_names.iter().map(String::as_str))
    }

    /// What makes a distribution unservable on its own (its names are checked by
    /// [`Distribution::keys`]).
    fn check(&self) -> Result<(), SnapshotError> {
        self.origin.check(&self.id)?;
        let s = &self.cache_behavior_settings;
        if s.minimum_ttl > s.maximum_ttl {
            return Err(SnapshotError::TtlOrder(self.id.clone()));
        }
        Ok(())
    }

    /// Every name as the indexes key it, with the certificate it gets.
    fn keys(&self) -> Result<Vec<NameKey>, SnapshotError> {
        let edge_names = 1 + usize::from(self.subdomain.is_some());
        self.names()
            .enumerate()
            .map(|(i, name)| {
                let normal = normalize_host(name);
                if normal.is_empty() || !normal.is_ascii() || normal.contains(['/', ' ', ':']) {
                    return Err(SnapshotError::InvalidDomain { id: self.id.clone(), name: normal });
                }
                let certificate = if i < edge_names { ServedCertificate::Default } else { ServedCertificate::Attached };
                Ok(match normal.strip_prefix("*.") {
                    Some(parent) => NameKey { name: Arc::from(parent), wildcard: true, certificate },
                    None => NameKey { name: Arc::from(normal), wildcard: false, certificate },
                })
            })
            .collect()
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

    fn key(name: &str) -> Arc<CertifiedKey> {
        use carapace_kernel::ca::{CertificateAuthority, KeyAlgorithm, LeafRequest, generate_key};
        let master = carapace_kernel::crypto::MasterKey::generate().unwrap();
        // No handshake is made: any fixed time will do.
        let now = time::OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let (ca, _) = CertificateAuthority::generate(
            &carapace_kernel::ca::CaProfile::new("Snapshot Test", "http://127.0.0.1:4566"),
            now,
            &master,
        )
        .unwrap();
        let leaf = generate_key(KeyAlgorithm::EcPrime256v1).unwrap();
        let req = LeafRequest {
            common_name: name.to_owned(),
            sans: vec![name.to_owned()],
            ip_addresses: Vec::new(),
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::days(1),
            serial: None,
            base_url: "http://127.0.0.1:4566".into(),
        };
        let issued = ca.issue(&req, &leaf, now).unwrap();
        certified_key_from_pem(&format!("{}{}", issued.certificate_pem, issued.chain_pem), &leaf.to_pem()).unwrap()
    }

    fn dist(id: &str, domain: &str, default: &Arc<CertifiedKey>) -> Distribution {
        let origin = Origin::new("http://127.0.0.1:9".parse().unwrap(), ProtocolPolicy::HttpOnly);
        Distribution::new(id, domain, origin, default.clone())
    }

    #[test]
    fn default_domain_and_subdomain_keep_the_default_certificate() {
        let (default, attached) = (key("*.cdn.test"), key("www.example.test"));
        let mut d = dist("a", "d1.cdn.test", &default);
        d.subdomain = Some("site.cdn.test".into());
        d.alternative_domain_names = vec!["www.example.test".into(), "*.shop.test".into(), "D1.cdn.test".into()];
        let plain = dist("b", "d2.cdn.test", &default);
        let snapshot = Snapshot::new([d.clone(), plain.clone()]).unwrap();
        // Without an attached certificate every name gets the default one.
        assert!(Arc::ptr_eq(snapshot.certificate_for("www.example.test").unwrap(), &default));
        d.certificate = Some(attached.clone());
        let snapshot = Snapshot::new([d, plain]).unwrap();
        for name in ["d1.cdn.test", "D1.CDN.TEST.", "site.cdn.test", "d2.cdn.test"] {
            assert!(Arc::ptr_eq(snapshot.certificate_for(name).unwrap(), &default), "{name}");
            assert_eq!(snapshot.served_certificate(name), Some(ServedCertificate::Default), "{name}");
        }
        for name in ["www.example.test", "eu.shop.test"] {
            assert!(Arc::ptr_eq(snapshot.certificate_for(name).unwrap(), &attached), "{name}");
        }
        assert!(snapshot.certificate_for("unknown.test").is_none());
    }

    #[test]
    fn updates_share_unchanged_distributions_and_refuse_only_the_faulty_one() {
        let default = key("*.cdn.test");
        let names = ["a", "b", "c", "d"];
        let (snapshot, rejected) = Snapshot::build(names.iter().map(|n| dist(n, &format!("{n}.cdn.test"), &default)));
        assert!(rejected.is_empty());
        let kept = snapshot.get("c").unwrap().clone();

        // A removal moves the last distribution into the freed place: every name still leads
        // to its own distribution.
        let mut claims_a = dist("e", "e.cdn.test", &default);
        claims_a.alternative_domain_names = vec!["a.cdn.test".into()];
        let mut bad_origin = dist("b", "b2.cdn.test", &default);
        bad_origin.origin.url = "ftp://x".parse().unwrap();
        let mut renamed = dist("d", "d2.cdn.test", &default);
        renamed.subdomain = Some("dee.cdn.test".into());
        let (next, rejected) = snapshot.updated([
            SnapshotChange::Remove("a".into()),
            SnapshotChange::upsert(bad_origin),
            SnapshotChange::upsert(renamed),
            SnapshotChange::upsert(claims_a.clone()),
            SnapshotChange::upsert(dist("f", "c.cdn.test", &default)),
        ]);
        let refused: Vec<&str> = rejected.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(refused, ["b", "f"], "{rejected:?}");
        assert!(matches!(rejected[1].error, SnapshotError::DuplicateDomain { ref first, .. } if first == "c"));
        assert!(Arc::ptr_eq(next.get("c").unwrap(), &kept), "an unchanged distribution is shared");
        for (name, id) in [
            ("b.cdn.test", "b"),
            ("c.cdn.test", "c"),
            ("d2.cdn.test", "d"),
            ("dee.cdn.test", "d"),
            ("e.cdn.test", "e"),
            ("a.cdn.test", "e"),
        ] {
            assert_eq!(next.find(name).map(|d| d.id.as_str()), Some(id), "{name}");
        }
        assert!(next.find("d.cdn.test").is_none(), "a replaced version's names are gone");
        assert!(next.get("a").is_none() && next.get("f").is_none());
        assert_eq!(next.distributions().len(), 4);
        for (i, d) in next.distributions().iter().enumerate() {
            assert_eq!(next.index_of(&d.id), Some(i));
        }
        // The snapshot it came from is untouched.
        assert_eq!(snapshot.find("a.cdn.test").map(|d| d.id.as_str()), Some("a"));
        assert!(snapshot.get("e").is_none());
        // The strict constructor refuses what `build` leaves out.
        assert!(matches!(
            Snapshot::new([dist("x", "x.test", &default), dist("x", "y.test", &default)]),
            Err(SnapshotError::DuplicateId(_))
        ));
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
