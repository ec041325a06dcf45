//! Webhook delivery: POSTing one JSON document to an `http://` or `https://` URL.
//!
//! The trait is always here; [`HttpsWebhooks`] (feature `webhooks`) posts with hyper over
//! rustls. What is posted, its signature, and what a failure means for the event are the
//! core's (`carapace_acm::events`).

use std::time::Duration;

/// Why a POST produced no status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    /// The request could not be built, sent, or its answer read.
    #[error("{0}")]
    Failed(String),
}

/// Posts event documents to webhooks.
#[async_trait::async_trait]
pub trait WebhookClient: Send + Sync {
    /// POSTs `body` to `url` with `headers` (name, value) and returns the answer's status
    /// code. `timeout` bounds the wait for the answer; reading (and discarding) its body,
    /// so the connection can be reused, is bounded by `timeout` again.
    async fn post(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<u16, WebhookError>;
}

#[cfg(feature = "webhooks")]
pub use https::HttpsWebhooks;

#[cfg(feature = "webhooks")]
mod https {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt as _, Full};
    use hyper_rustls::HttpsConnector;
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::{TokioExecutor, TokioTimer};

    use super::{WebhookClient, WebhookError};

    /// A pooled HTTP/1.1 client for webhooks: `https://` URLs are verified against the
    /// system's roots and the extra roots it was built with.
    #[derive(Clone)]
    pub struct HttpsWebhooks {
        client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    }

    impl std::fmt::Debug for HttpsWebhooks {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("HttpsWebhooks").finish_non_exhaustive()
        }
    }

    impl HttpsWebhooks {
        /// A client trusting the system's roots and `extra_root` (DER; Carapace passes its
        /// own root, so webhooks may serve certificates it issued). Connecting is bounded
        /// by 10 seconds.
        pub fn new(extra_root: &[u8]) -> Result<Self, String> {
            let mut roots = rustls::RootCertStore::empty();
            let (_added, _ignored) = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            roots.add(extra_root.to_vec().into()).map_err(|e| e.to_string())?;
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let tls = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let mut http = HttpConnector::new();
            http.enforce_http(false);
            http.set_connect_timeout(Some(Duration::from_secs(10)));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            let client = Client::builder(TokioExecutor::new()).pool_timer(TokioTimer::new()).build(https);
            Ok(Self { client })
        }
    }

    #[async_trait::async_trait]
    impl WebhookClient for HttpsWebhooks {
        async fn post(
            &self,
            url: &str,
            headers: &[(&str, String)],
            body: Vec<u8>,
            timeout: Duration,
        ) -> Result<u16, WebhookError> {
            let mut request = hyper::Request::post(url);
            for (name, value) in headers {
                request = request.header(*name, value.as_str());
            }
            let request =
                request.body(Full::new(Bytes::from(body))).map_err(|e| WebhookError::Failed(e.to_string()))?;
            let response = match tokio::time::timeout(timeout, self.client.request(request)).await {
                Err(_) => return Err(WebhookError::TimedOut(timeout)),
                Ok(Err(e)) => return Err(WebhookError::Failed(e.to_string())),
                Ok(Ok(response)) => response,
            };
            let status = response.status();
            // Drain (bounded by the timeout) so the connection can be reused.
            let _ = tokio::time::timeout(timeout, response.into_body().collect()).await;
            Ok(status.as_u16())
        }
    }

    #[cfg(test)]
    mod tests {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        use super::*;

        /// A webhook that answers `status` to one request and hands back what it received.
        async fn hook(status: &'static str) -> (String, tokio::task::JoinHandle<String>) {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/hook", listener.local_addr().unwrap());
            let task = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut received = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the 2-byte body.
                while !received.windows(4).any(|w| w == b"\r\n\r\n") || !received.ends_with(b"{}") {
                    let n = s.read(&mut buf).await.unwrap();
                    assert!(n > 0, "closed early");
                    received.extend_from_slice(&buf[..n]);
                }
                let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok");
                s.write_all(reply.as_bytes()).await.unwrap();
                String::from_utf8(received).unwrap()
            });
            (url, task)
        }

        #[tokio::test]
        async fn posts_with_headers_and_returns_the_status() {
            let root = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
            let client = HttpsWebhooks::new(root.cert.der()).unwrap();
            let (url, task) = hook("202 Accepted").await;
            let headers = [("content-type", "application/json".to_owned()), ("x-test", "1".to_owned())];
            let status = client.post(&url, &headers, b"{}".to_vec(), Duration::from_secs(5)).await.unwrap();
            assert_eq!(status, 202);
            let received = task.await.unwrap().to_ascii_lowercase();
            assert!(received.starts_with("post /hook http/1.1\r\n"), "{received}");
            assert!(received.contains("\r\nx-test: 1\r\n"), "{received}");

            let (url, _task) = hook("500 Internal Server Error").await;
            assert_eq!(client.post(&url, &headers, b"{}".to_vec(), Duration::from_secs(5)).await.unwrap(), 500);
            assert!(matches!(
                client.post("not a url", &headers, Vec::new(), Duration::from_secs(5)).await,
                Err(WebhookError::Failed(_))
            ));
        }
    }
}
