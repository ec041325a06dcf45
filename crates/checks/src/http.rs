//! HTTP validation: fetch `http://<domain>/.well-known/pki-validation/<token>.txt`, follow
//! redirects, and compare the body with the expected content.
//!
//! The trait and its errors are always here; `Fetcher` (feature `http`) does the fetching.
//! It resolves host names through the validation `dns::Resolver` (the configured name
//! servers), never the system resolver, so validation sees the same DNS as the CNAME checks.
//! Only `http://` is followed: ACM's HTTP validation starts on port 80 (a URL naming no port
//! goes to `Fetcher::with_default_port`, 80 unless configured) and Carapace's own
//! `RedirectTo` URLs use its base URL; an `https://` hop is reported as a failure to retry.

#[cfg(feature = "http")]
mod fetcher;
#[cfg(feature = "http")]
pub use fetcher::Fetcher;

/// At most this many redirects are followed.
pub const MAX_REDIRECTS: usize = 5;

/// Why a fetch produced no body to compare.
#[derive(Debug, thiserror::Error)]
pub enum HttpCheckError {
    /// The URL is not one we fetch.
    #[error("unsupported URL {0}")]
    Url(String),
    /// The host has no address, or DNS failed.
    #[error("resolving {host}: {reason}")]
    Resolve {
        /// The host.
        host: String,
        /// Why.
        reason: String,
    },
    /// Connecting, sending or reading failed.
    #[error("fetching {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A status other than 200 (after redirects).
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// Too many redirects.
    #[error("more than {MAX_REDIRECTS} redirects from {0}")]
    TooManyRedirects(String),
}

/// Fetches validation files.
#[async_trait::async_trait]
pub trait HttpChecker: Send + Sync {
    /// Whether `url` serves `expected` (surrounding whitespace ignored), after following at
    /// most [`MAX_REDIRECTS`] redirects.
    async fn check(&self, url: &str, expected: &str) -> Result<bool, HttpCheckError>;
}
