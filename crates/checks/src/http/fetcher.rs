//! [`Fetcher`]: HTTP validation fetches with hyper, resolving through [`Resolver`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::{HttpCheckError, HttpChecker, MAX_REDIRECTS};
use crate::dns::Resolver;

/// Larger bodies are not validation files.
const MAX_BODY: usize = 64 * 1024;

/// Fetches validation files.
#[derive(Debug, Clone)]
pub struct Fetcher {
    dns: Resolver,
    timeout: Duration,
    default_port: u16,
}

/// `http://host[:port]/path` → (host, port, path-and-query); `default_port` when the URL
/// names none.
fn split_http_url(url: &str, default_port: u16) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (authority, default_port),
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port, path.to_owned()))
}

impl Fetcher {
    /// A checker resolving through `dns`; `timeout` bounds each hop.
    pub fn new(dns: Resolver, timeout: Duration) -> Self {
        Self { dns, timeout, default_port: 80 }
    }

    /// Connects to `port` for URLs that name none, instead of 80.
    pub fn with_default_port(self, port: u16) -> Self {
        Self { default_port: port, ..self }
    }

    /// GETs `url`, following redirects, and returns the final body.
    pub async fn fetch(&self, url: &str) -> Result<Bytes, HttpCheckError> {
        let mut current = url.to_owned();
        for _ in 0..=MAX_REDIRECTS {
            match tokio::time::timeout(self.timeout, self.hop(&current)).await {
                Err(_) => return Err(HttpCheckError::Fetch { url: current, reason: "timed out".into() }),
                Ok(Err(e)) => return Err(e),
                Ok(Ok(Hop::Body(body))) => return Ok(body),
                Ok(Ok(Hop::Redirect(next))) => {
                    current = if next.starts_with('/') {
                        let (host, port, _) = split_http_url(&current, self.default_port)
                            .ok_or_else(|| HttpCheckError::Url(current.clone()))?;
                        format!("http://{host}:{port}{next}")
                    } else {
                        next
                    };
                }
            }
        }
        Err(HttpCheckError::TooManyRedirects(url.to_owned()))
    }

    async fn hop(&self, url: &str) -> Result<Hop, HttpCheckError> {
        let (host, port, path) =
            split_http_url(url, self.default_port).ok_or_else(|| HttpCheckError::Url(url.to_owned()))?;
        let addrs = self
            .dns
            .addresses(&host)
            .await
            .map_err(|e| HttpCheckError::Resolve { host: host.clone(), reason: e.to_string() })?;
        let ip = addrs
            .first()
            .copied()
            .ok_or_else(|| HttpCheckError::Resolve { host: host.clone(), reason: "no address".into() })?;
        let fetch_err = |reason: String| HttpCheckError::Fetch { url: url.to_owned(), reason };
        let stream = tokio::net::TcpStream::connect((ip, port)).await.map_err(|e| fetch_err(e.to_string()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| fetch_err(e.to_string()))?;
        let driver = tokio::spawn(conn);
        // The Host header is the URL's authority as written: no port when it names none,
        // whichever port the checker then connects to.
        let host_header = url.strip_prefix("http://").and_then(|r| r.split('/').next()).unwrap_or(&host).to_owned();
        let request = Request::get(path)
            .header(hyper::header::HOST, host_header)
            .header(hyper::header::USER_AGENT, "Carapace-Validation/1")
            .body(Empty::<Bytes>::new())
            .map_err(|e| fetch_err(e.to_string()))?;
        let response = sender.send_request(request).await.map_err(|e| fetch_err(e.to_string()))?;
        let status = response.status();
        let result = if status.is_redirection() {
            let location = response
                .headers()
                .get(hyper::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| fetch_err("redirect without Location".into()))?;
            Ok(Hop::Redirect(location.to_owned()))
        } else if status == hyper::StatusCode::OK {
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| fetch_err(e.to_string()))?
                .to_bytes();
            Ok(Hop::Body(body))
        } else {
            Err(HttpCheckError::Status { url: url.to_owned(), status: status.as_u16() })
        };
        driver.abort();
        result
    }
}

#[async_trait::async_trait]
impl HttpChecker for Fetcher {
    async fn check(&self, url: &str, expected: &str) -> Result<bool, HttpCheckError> {
        let body = self.fetch(url).await?;
        Ok(String::from_utf8_lossy(&body).trim() == expected.trim())
    }
}

enum Hop {
    Body(Bytes),
    Redirect(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn urls() {
        assert_eq!(split_http_url("http://a.com/x.txt", 80), Some(("a.com".into(), 80, "/x.txt".into())));
        assert_eq!(split_http_url("http://a.com/x.txt", 8080), Some(("a.com".into(), 8080, "/x.txt".into())));
        assert_eq!(split_http_url("http://127.0.0.1:8080/p", 80), Some(("127.0.0.1".into(), 8080, "/p".into())));
        assert_eq!(split_http_url("https://a.com/", 80), None);
    }

    /// Serves a redirect on the first request and `body` on the second.
    async fn server(body: &'static str) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for i in 0..2 {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await.unwrap();
                let reply = if i == 0 {
                    format!(
                        "HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:{port}/final.txt\r\nContent-Length: 0\r\n\r\n"
                    )
                } else {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                };
                s.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        port
    }

    #[tokio::test]
    async fn follows_redirects_and_compares() {
        let port = server("expected-content\n").await;
        let checker = Fetcher::new(Resolver::new(Vec::new(), Duration::from_secs(2)), Duration::from_secs(5));
        let url = format!("http://127.0.0.1:{port}/.well-known/pki-validation/t.txt");
        assert!(checker.check(&url, "expected-content").await.unwrap());
        let port = server("other").await;
        let url = format!("http://127.0.0.1:{port}/.well-known/pki-validation/t.txt");
        assert!(!checker.check(&url, "expected-content").await.unwrap());
        // A URL naming no port goes to the configured default.
        let port = server("expected-content").await;
        let checker = checker.with_default_port(port);
        assert!(checker.check("http://127.0.0.1/.well-known/pki-validation/t.txt", "expected-content").await.unwrap());
    }
}
