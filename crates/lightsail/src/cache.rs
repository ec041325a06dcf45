//! A distribution's cache settings as the UpdateDistribution page documents them, the
//! checks made on them, and the defaults a distribution starts with.
//!
//! UpdateDistribution's `cacheBehaviorSettings` *replaces* the stored settings whole (the
//! page warns of it): members left out take their defaults again, they are not kept.

use serde::{Deserialize, Serialize};

use super::{LightsailError, Result};

/// `allowedHTTPMethods` values the API documents (as method sets; order and case are not
/// significant on input, the stored form is the documented spelling).
pub const ALLOWED_METHODS: [&str; 3] = ["GET,HEAD", "GET,HEAD,OPTIONS", "GET,HEAD,OPTIONS,PUT,PATCH,POST,DELETE"];
/// `cachedHTTPMethods` values the API documents.
pub const CACHED_METHODS: [&str; 2] = ["GET,HEAD", "GET,HEAD,OPTIONS"];
/// Origin status codes a custom error response may replace (CloudFront's list).
pub const CUSTOM_ERROR_CODES: [i32; 11] = [400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504];
/// Per-path behaviours one distribution may have (CloudFront's default quota).
pub const MAX_CACHE_BEHAVIORS: usize = 25;
/// Headers one allow list may name (CloudFront's quota for cache-key headers).
pub const MAX_ALLOWED_HEADERS: usize = 10;

/// The default or per-path behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behavior {
    /// Cache everything (or this path).
    Cache,
    /// Cache only what per-path behaviours say (or not this path).
    DontCache,
}

/// What to forward (`none`, `allow-list`, `all`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Forward {
    /// Nothing (only the default headers, for headers).
    #[default]
    None,
    /// Only the allow list.
    AllowList,
    /// Everything.
    All,
}

/// Forwarded cookies or headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Forwarded {
    /// What is forwarded.
    pub option: Forward,
    /// The names forwarded with [`Forward::AllowList`] (kept as given with the others too,
    /// since Lightsail echoes them).
    #[serde(default)]
    pub allow_list: Vec<String>,
}

/// Forwarded query strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ForwardedQueryStrings {
    /// `true`: forward (and cache on) every query string, whatever the allow list says.
    pub option: bool,
    /// Query string names forwarded when `option` is false.
    #[serde(default)]
    pub allow_list: Vec<String>,
}

/// `cacheBehaviorSettings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheSettings {
    /// Seconds an object stays cached when the origin says nothing.
    pub default_ttl: i64,
    /// Seconds an object stays cached at least.
    pub minimum_ttl: i64,
    /// Seconds an object stays cached at most.
    pub maximum_ttl: i64,
    /// One of [`ALLOWED_METHODS`].
    pub allowed_methods: String,
    /// One of [`CACHED_METHODS`].
    pub cached_methods: String,
    /// Forwarded cookies.
    pub forwarded_cookies: Forwarded,
    /// Forwarded headers.
    pub forwarded_headers: Forwarded,
    /// Forwarded query strings.
    pub forwarded_query_strings: ForwardedQueryStrings,
}

impl Default for CacheSettings {
    /// CloudFront's TTL defaults (a day, zero, a year); every method forwarded, GET and
    /// HEAD cached; nothing forwarded into the cache key.
    fn default() -> Self {
        Self {
            default_ttl: 86_400,
            minimum_ttl: 0,
            maximum_ttl: 31_536_000,
            allowed_methods: ALLOWED_METHODS[2].into(),
            cached_methods: CACHED_METHODS[0].into(),
            forwarded_cookies: Forwarded::default(),
            forwarded_headers: Forwarded::default(),
            forwarded_query_strings: ForwardedQueryStrings::default(),
        }
    }
}

/// `cacheBehaviorSettings` as given: absent members take the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheSettingsInput {
    /// `defaultTTL`.
    pub default_ttl: Option<i64>,
    /// `minimumTTL`.
    pub minimum_ttl: Option<i64>,
    /// `maximumTTL`.
    pub maximum_ttl: Option<i64>,
    /// `allowedHTTPMethods`.
    pub allowed_methods: Option<String>,
    /// `cachedHTTPMethods`.
    pub cached_methods: Option<String>,
    /// `forwardedCookies`.
    pub forwarded_cookies: Option<Forwarded>,
    /// `forwardedHeaders`.
    pub forwarded_headers: Option<Forwarded>,
    /// `forwardedQueryStrings`.
    pub forwarded_query_strings: Option<ForwardedQueryStrings>,
}

fn bad(message: String) -> LightsailError {
    LightsailError::invalid(
        "InvalidCacheSettings",
        message,
        "See the cacheBehaviorSettings of UpdateDistribution in the Lightsail API reference for the allowed values.",
    )
}

/// Matches a method list against the documented spellings as a set.
fn documented(value: &str, member: &str, allowed: &[&'static str]) -> Result<String> {
    let mut given: Vec<String> =
        value.split(',').map(|m| m.trim().to_ascii_uppercase()).filter(|m| !m.is_empty()).collect();
    given.sort();
    for candidate in allowed {
        let mut c: Vec<String> = candidate.split(',').map(str::to_owned).collect();
        c.sort();
        if c == given {
            return Ok((*candidate).to_owned());
        }
    }
    Err(bad(format!("{member} must be one of {}; got \"{value}\".", allowed.join(" or "))))
}

impl CacheSettingsInput {
    /// The settings this input stands for, checked.
    pub fn resolve(self, headers_known: &dyn Fn(&str) -> bool) -> Result<CacheSettings> {
        let d = CacheSettings::default();
        let s = CacheSettings {
            default_ttl: self.default_ttl.unwrap_or(d.default_ttl),
            minimum_ttl: self.minimum_ttl.unwrap_or(d.minimum_ttl),
            maximum_ttl: self.maximum_ttl.unwrap_or(d.maximum_ttl),
            allowed_methods: match &self.allowed_methods {
                Some(v) => documented(v, "allowedHTTPMethods", &ALLOWED_METHODS)?,
                None => d.allowed_methods,
            },
            cached_methods: match &self.cached_methods {
                Some(v) => documented(v, "cachedHTTPMethods", &CACHED_METHODS)?,
                None => d.cached_methods,
            },
            forwarded_cookies: self.forwarded_cookies.unwrap_or_default(),
            forwarded_headers: self.forwarded_headers.unwrap_or_default(),
            forwarded_query_strings: self.forwarded_query_strings.unwrap_or_default(),
        };
        for (name, v) in [("defaultTTL", s.default_ttl), ("minimumTTL", s.minimum_ttl), ("maximumTTL", s.maximum_ttl)] {
            if v < 0 {
                return Err(bad(format!("{name} must be 0 or more seconds; got {v}.")));
            }
        }
        if s.minimum_ttl > s.default_ttl || s.default_ttl > s.maximum_ttl {
            return Err(bad(format!(
                "The TTLs must satisfy minimumTTL <= defaultTTL <= maximumTTL; got {} <= {} <= {}.",
                s.minimum_ttl, s.default_ttl, s.maximum_ttl
            )));
        }
        // A method is cached only if it is forwarded at all.
        if s.cached_methods.contains("OPTIONS") && !s.allowed_methods.contains("OPTIONS") {
            return Err(bad(format!(
                "cachedHTTPMethods {} includes OPTIONS, which allowedHTTPMethods {} does not allow.",
                s.cached_methods, s.allowed_methods
            )));
        }
        if s.forwarded_headers.option == Forward::All && s.minimum_ttl != 0 {
            return Err(bad(format!(
                "minimumTTL must be 0 when the distribution forwards all headers to the origin; got {}.",
                s.minimum_ttl
            )));
        }
        if s.forwarded_headers.allow_list.len() > MAX_ALLOWED_HEADERS {
            return Err(bad(format!("headersAllowList can name at most {MAX_ALLOWED_HEADERS} headers.")));
        }
        if let Some(h) = s.forwarded_headers.allow_list.iter().find(|h| !headers_known(h)) {
            return Err(bad(format!("headersAllowList names an unknown header: {h}.")));
        }
        if s.forwarded_cookies.allow_list.iter().chain(&s.forwarded_query_strings.allow_list).any(|n| n.is_empty()) {
            return Err(bad("Allow lists cannot contain empty names.".into()));
        }
        Ok(s)
    }
}

/// One per-path behaviour (`cacheBehaviors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathBehavior {
    /// The path, with `*` wildcards; case-sensitive.
    pub path: String,
    /// Cache it or not.
    pub behavior: Behavior,
}

/// Checks per-path behaviours: a path each, at most [`MAX_CACHE_BEHAVIORS`], no path twice.
pub fn check_path_behaviors(list: &[PathBehavior]) -> Result<()> {
    if list.len() > MAX_CACHE_BEHAVIORS {
        return Err(bad(format!("A distribution can have at most {MAX_CACHE_BEHAVIORS} cacheBehaviors.")));
    }
    for (i, b) in list.iter().enumerate() {
        if b.path.trim().is_empty() || b.path.len() > 255 {
            return Err(bad("Every cacheBehaviors entry needs a path of 1 to 255 characters.".into()));
        }
        if list[..i].iter().any(|o| o.path == b.path) {
            return Err(bad(format!("The path {} appears twice in cacheBehaviors.", b.path)));
        }
    }
    Ok(())
}

/// One custom error response (`customErrorResponses`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomErrorResponse {
    /// The origin status it replaces.
    pub error_code: i32,
    /// The status sent to the viewer (a 3-digit code as a string), if replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_code: Option<String>,
    /// The origin path of the page sent instead, if any (starts with `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_page_path: Option<String>,
    /// Seconds the error response is cached (default 10).
    pub error_caching_min_ttl: i64,
}

/// Default `errorCachingMinTTL`, seconds (the API reference's).
pub const DEFAULT_ERROR_CACHING_MIN_TTL: i64 = 10;

/// Checks custom error responses as CloudFront does.
pub fn check_custom_errors(list: &[CustomErrorResponse]) -> Result<()> {
    for (i, e) in list.iter().enumerate() {
        if !CUSTOM_ERROR_CODES.contains(&e.error_code) {
            return Err(bad(format!(
                "errorCode {} cannot have a custom error response; allowed: {}.",
                e.error_code,
                CUSTOM_ERROR_CODES.map(|c| c.to_string()).join(", ")
            )));
        }
        if list[..i].iter().any(|o| o.error_code == e.error_code) {
            return Err(bad(format!("errorCode {} appears twice in customErrorResponses.", e.error_code)));
        }
        if let Some(code) = &e.response_code
            && !(code.len() == 3 && code.parse::<u16>().is_ok_and(|c| (200..600).contains(&c)))
        {
            return Err(bad(format!("responseCode must be an HTTP status code such as 404; got \"{code}\".")));
        }
        if e.response_code.is_some() != e.response_page_path.is_some() {
            return Err(bad("responseCode and responsePagePath must be given together.".into()));
        }
        if let Some(path) = &e.response_page_path
            && !path.starts_with('/')
        {
            return Err(bad(format!("responsePagePath must begin with a forward slash (/); got \"{path}\".")));
        }
        if e.error_caching_min_ttl < 0 {
            return Err(bad("errorCachingMinTTL must be 0 or more seconds.".into()));
        }
    }
    Ok(())
}

/// Checks `defaultRootObject` (an object name, not a path).
pub fn check_default_root_object(v: &str) -> Result<()> {
    if v.starts_with('/') || v.len() > 255 {
        return Err(bad(format!(
            "defaultRootObject must be an object name of at most 255 characters that does not begin with /; got \"{v}\"."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_header(_: &str) -> bool {
        true
    }

    #[test]
    fn absent_members_take_the_defaults() {
        assert_eq!(CacheSettingsInput::default().resolve(&any_header).unwrap(), CacheSettings::default());
    }

    #[test]
    fn methods_only_in_documented_combinations() {
        let with = |allowed: &str, cached: &str| {
            CacheSettingsInput {
                allowed_methods: Some(allowed.into()),
                cached_methods: Some(cached.into()),
                ..Default::default()
            }
            .resolve(&any_header)
        };
        let s = with("head,get", "GET,HEAD").unwrap();
        assert_eq!(s.allowed_methods, "GET,HEAD");
        assert!(with("GET,HEAD,OPTIONS,PUT,PATCH,POST,DELETE", "GET,HEAD,OPTIONS").is_ok());
        assert!(with("GET,POST", "GET,HEAD").is_err());
        assert!(with("GET,HEAD", "GET,HEAD,OPTIONS").is_err(), "OPTIONS cached but not allowed");
        assert!(with("GET,HEAD", "GET,HEAD,PUT").is_err());
    }

    #[test]
    fn ttls_and_forwarded_headers() {
        let ttl = |min, def, max| {
            CacheSettingsInput {
                minimum_ttl: Some(min),
                default_ttl: Some(def),
                maximum_ttl: Some(max),
                ..Default::default()
            }
            .resolve(&any_header)
        };
        assert!(ttl(0, 10, 20).is_ok());
        assert!(ttl(30, 10, 20).is_err());
        assert!(ttl(-1, 10, 20).is_err());
        let all_headers = |min| {
            CacheSettingsInput {
                minimum_ttl: Some(min),
                forwarded_headers: Some(Forwarded { option: Forward::All, allow_list: vec![] }),
                ..Default::default()
            }
            .resolve(&any_header)
        };
        assert!(all_headers(0).is_ok());
        let err = all_headers(5).unwrap_err().to_string();
        assert!(err.contains("minimumTTL must be 0"), "{err}");
    }

    #[test]
    fn paths_and_error_responses() {
        let p = |path: &str| PathBehavior { path: path.into(), behavior: Behavior::Cache };
        assert!(check_path_behaviors(&[p("/images/*"), p("*.html")]).is_ok());
        assert!(check_path_behaviors(&[p("/a"), p("/a")]).is_err());
        assert!(check_path_behaviors(&[p("")]).is_err());
        let e = |code, rc: Option<&str>, path: Option<&str>| CustomErrorResponse {
            error_code: code,
            response_code: rc.map(Into::into),
            response_page_path: path.map(Into::into),
            error_caching_min_ttl: 10,
        };
        assert!(check_custom_errors(&[e(404, Some("200"), Some("/404.html"))]).is_ok());
        assert!(check_custom_errors(&[e(404, None, None)]).is_ok());
        assert!(check_custom_errors(&[e(200, None, None)]).is_err());
        assert!(check_custom_errors(&[e(404, Some("200"), Some("404.html"))]).is_err());
        assert!(check_custom_errors(&[e(404, Some("200"), None)]).is_err());
        assert!(check_default_root_object("index.html").is_ok());
        assert!(check_default_root_object("/index.html").is_err());
    }
}
