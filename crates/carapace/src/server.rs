//! The HTTP front: serves `/health`, `/metrics` and the PKI URLs, hands API calls to the
//! [`Dispatcher`], and logs and meters every request. Connections, their limits and the
//! graceful shutdown are [`carapace_net`]'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use carapace_kernel::ca::CertificateAuthority;
use carapace_proto::Dispatcher;
use carapace_store::Store;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// What the HTTP front needs.
pub struct Front {
    /// The edge's bound (HTTPS, HTTP) addresses, reported by `/health`; `None` without one.
    pub edge_addrs: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// Certificate time (CRL and OCSP validity): the core's clock, which
    /// `clock_offset_secs` may run ahead.
    pub clock: Arc<dyn carapace_kernel::Clock>,
    /// The time clients sign requests with (SigV4 skew): the real clock, whatever the
    /// offset, so time travel does not make every signature expired.
    pub signing_clock: Arc<dyn carapace_kernel::Clock>,
    /// API dispatch.
    pub dispatcher: Dispatcher,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// For `/health`.
    pub store: Arc<dyn Store>,
    /// Extra GET routes served in clear (CA certificates, CRLs): path → (content type, body).
    pub static_routes: Vec<(String, &'static str, Bytes)>,
    /// Serves the content of HTTP validation `RedirectTo` URLs
    /// (`/acm-validations/<account>/.well-known/pki-validation/<token>.txt`).
    pub acm: Option<carapace_acm::CertificateManager>,
    /// The CA whose certificates (`/ca/<id>.crt`), CRLs (`/crl/<id>.crl`) and OCSP answers
    /// (`/ocsp`) are served: the URLs in every certificate it issues.
    pub ca: Option<Arc<CertificateAuthority>>,
    /// Signed CRLs kept between revocations (`crl_refresh_secs`).
    pub crls: carapace_kernel::revocation::CrlCache,
    /// Signed OCSP answers kept between revocations.
    pub ocsp_answers: carapace_kernel::revocation::OcspCache,
    /// The objects AWS Private CA writes to S3 buckets (`/s3/<bucket>/<key>`); `None`
    /// serves none.
    pub buckets_dir: Option<std::path::PathBuf>,
    /// AWS Private CA, whose OCSP responder is `/pca/ocsp`.
    pub pca: Option<carapace_pca::PrivateCas>,
}

/// Where HTTP validation content lives (the path of ACM's `RedirectTo`, see
/// `carapace_acm::validation::ValidationSecret::http_redirect`).
const ACM_VALIDATIONS_PREFIX: &str = "/acm-validations/";

/// AWS Private CA's OCSP responder (`POST`, or `GET /pca/ocsp/<base64 request>`).
const PCA_OCSP: &str = "/pca/ocsp";

/// Where bucket objects are served (`/s3/<bucket>/<key>`).
const BUCKETS_PREFIX: &str = "/s3/";

/// Largest OCSP request body read.
const MAX_OCSP_REQUEST: usize = 64 * 1024;

impl Front {
    async fn serve(self: Arc<Self>, req: Request<carapace_net::Body>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let path = req.uri().path().to_owned();
        if req.method() == http::Method::POST && (path == "/ocsp" || path == PCA_OCSP) {
            // RFC 6960 A.1: the DER request is the body. Requests are a few hundred bytes.
            let body = http_body_util::Limited::new(req.into_body(), MAX_OCSP_REQUEST).collect().await;
            let der = body.ok().map(|b| b.to_bytes().to_vec());
            return if path == PCA_OCSP { self.pca_ocsp(der).await } else { self.ocsp(der).await };
        }
        if req.method() == http::Method::GET {
            match path.as_str() {
                "/health" => return health(self.store.as_ref(), self.edge_addrs).await,
                "/metrics" => return metrics(&self.metrics),
                _ if path.starts_with(ACM_VALIDATIONS_PREFIX) => return self.http_validation(&path).await,
                _ if path.starts_with("/ca/") && path.ends_with(".crt") => return self.ca_certificate(&path),
                _ if path.starts_with("/crl/") && path.ends_with(".crl") => return self.crl(&path).await,
                _ if path.starts_with(BUCKETS_PREFIX) => return self.bucket_object(&path).await,
                _ if path.starts_with("/ocsp/") || path.starts_with("/pca/ocsp/") => {
                    // RFC 6960 A.1: GET /ocsp/<url-encoded base64 of the DER request>.
                    let (prefix, private) =
                        if path.starts_with("/ocsp/") { ("/ocsp/", false) } else { ("/pca/ocsp/", true) };
                    let encoded = path.trim_start_matches(prefix);
                    let decoded = percent_encoding::percent_decode_str(encoded).decode_utf8_lossy();
                    let der = base64::engine::general_purpose::STANDARD.decode(decoded.as_bytes()).ok();
                    return if private { self.pca_ocsp(der).await } else { self.ocsp(der).await };
                }
                _ => {
                    if let Some((_, ctype, body)) = self.static_routes.iter().find(|(p, _, _)| *p == path) {
                        return binary(ctype, body.clone());
                    }
                }
            }
        }
        let now = self.signing_clock.now();
        let (resp, outcome) = self.dispatcher.handle(req, now).await;
        let elapsed = started.elapsed();
        self.metrics.observe(outcome.service, outcome.operation, outcome.error.as_deref(), elapsed.as_secs_f64());
        let status = resp.status().as_u16();
        match &outcome.error {
            // A fault is ours; 501 (an operation not built yet) is the caller's to expect.
            Some(code) if status >= 500 && status != 501 => tracing::error!(
                request_id = %outcome.request_id, service = outcome.service, operation = outcome.operation,
                status, error = %code, micros = elapsed.as_micros() as u64, "request failed"
            ),
            Some(code) => tracing::info!(
                request_id = %outcome.request_id, service = outcome.service, operation = outcome.operation,
                status, error = %code, micros = elapsed.as_micros() as u64, "request rejected"
            ),
            None => tracing::debug!(
                request_id = %outcome.request_id, service = outcome.service, operation = outcome.operation,
                status, micros = elapsed.as_micros() as u64, "request served"
            ),
        }
        resp
    }

    /// `GET /acm-validations/<account>/.well-known/pki-validation/<token>.txt`: the content
    /// HTTP validation expects, as plain text (what a domain's redirect leads the checker to).
    async fn http_validation(&self, path: &str) -> Response<Full<Bytes>> {
        let Some(acm) = &self.acm else { return not_found() };
        let parsed = path
            .strip_prefix(ACM_VALIDATIONS_PREFIX)
            .and_then(|rest| rest.split_once("/.well-known/pki-validation/"))
            .and_then(|(account, file)| Some((account, file.strip_suffix(".txt")?)));
        let Some((account, token)) = parsed else { return not_found() };
        match acm.http_validation_content(account, token).await {
            Ok(Some(content)) => plain(StatusCode::OK, "text/plain; charset=utf-8", content),
            Ok(None) => not_found(),
            Err(e) => {
                tracing::error!(error = %e, "HTTP validation content failed");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", "Internal error\n".to_owned())
            }
        }
    }

    /// AWS Private CA's OCSP answers (see `carapace_pca::ocsp`).
    async fn pca_ocsp(&self, der: Option<Vec<u8>>) -> Response<Full<Bytes>> {
        let answer = match (&self.pca, der) {
            (Some(pca), Some(der)) => pca.ocsp(&der).await,
            (None, _) => carapace_kernel::ca::ocsp_failure(carapace_kernel::ca::OcspFailure::Unauthorized),
            (_, None) => carapace_kernel::ca::ocsp_failure(carapace_kernel::ca::OcspFailure::MalformedRequest),
        };
        binary("application/ocsp-response", Bytes::from(answer))
    }

    /// `GET /s3/<bucket>/<key>`: an object AWS Private CA wrote to a bucket (a CRL, an audit
    /// report). The key's segments must be plain names — no `.`, `..` or empty segment —
    /// so a request never leaves the buckets directory.
    async fn bucket_object(&self, path: &str) -> Response<Full<Bytes>> {
        let Some(dir) = &self.buckets_dir else { return not_found() };
        let relative = path.trim_start_matches(BUCKETS_PREFIX);
        let plain_segments = relative.split('/').count() >= 2
            && relative.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            });
        if !plain_segments {
            return not_found();
        }
        let content_type = match relative.rsplit('.').next() {
            Some("crl") => "application/pkix-crl",
            Some("json") => "application/json",
            Some("csv") => "text/csv",
            _ => "application/octet-stream",
        };
        match tokio::fs::read(dir.join(relative)).await {
            Ok(bytes) => binary(content_type, Bytes::from(bytes)),
            Err(_) => not_found(),
        }
    }

    /// `GET /ca/<id>.crt`: an intermediate (the leaves' AIA caIssuers URL) or the root (the
    /// intermediates'), DER.
    fn ca_certificate(&self, path: &str) -> Response<Full<Bytes>> {
        let id = path.trim_start_matches("/ca/").trim_end_matches(".crt");
        match self.ca.as_ref().and_then(|ca| ca.certificate_by_id(id)) {
            Some((_, der)) => binary("application/pkix-cert", Bytes::copy_from_slice(der)),
            None => not_found(),
        }
    }

    /// `GET /crl/<id>.crl`: an intermediate's CRL (the leaves' CRL distribution point) or the
    /// root's (the intermediates'), DER. Kept between revocations, and signed afresh after
    /// one, so a revocation is listed as soon as RevokeCertificate returns and a flood of GETs
    /// costs no signatures.
    async fn crl(&self, path: &str) -> Response<Full<Bytes>> {
        let id = path.trim_start_matches("/crl/").trim_end_matches(".crl");
        let Some(ca) = &self.ca else { return not_found() };
        match self.crls.get(self.store.as_ref(), ca, id, self.clock.now()).await {
            Ok(Some(der)) => binary("application/pkix-crl", der),
            Ok(None) => not_found(),
            Err(e) => {
                tracing::error!(error = carapace_kernel::error::chain(&e), "CRL failed");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8", "Internal error\n".to_owned())
            }
        }
    }

    /// Answers an OCSP request (`None`: the body could not be read or decoded) with a
    /// response signed by the issuing intermediate (kept between revocations, see
    /// [`carapace_kernel::revocation::OcspCache`]), or an unsuccessful OCSP response.
    async fn ocsp(&self, request: Option<Vec<u8>>) -> Response<Full<Bytes>> {
        use carapace_kernel::ca::{OcspFailure, ocsp_failure};
        use carapace_kernel::revocation::RevocationError;
        let Some(ca) = &self.ca else { return not_found() };
        let answer = |der: Bytes| binary("application/ocsp-response", der);
        let failure = |failure: OcspFailure| answer(Bytes::from(ocsp_failure(failure)));
        let request = match request.map(|der| ca.parse_ocsp_request(&der)) {
            Some(Ok(request)) => request,
            Some(Err(e)) => return failure(e),
            None => return failure(OcspFailure::MalformedRequest),
        };
        match self.ocsp_answers.answer(self.store.as_ref(), ca, &request, self.clock.now()).await {
            Ok(der) => answer(der),
            Err(RevocationError::Store(e)) => {
                tracing::error!(error = %e, "OCSP lookup failed");
                failure(OcspFailure::TryLater)
            }
            Err(e @ (RevocationError::Sign { .. } | RevocationError::NoCertId | RevocationError::Serial(_))) => {
                tracing::error!(error = carapace_kernel::error::chain(&e), "OCSP response failed");
                failure(OcspFailure::InternalError)
            }
        }
    }
}

/// `GET /health`: 200 when the store answers, with the edge's addresses when one runs.
pub(crate) async fn health(
    store: &dyn carapace_store::Store,
    edge_addrs: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
) -> Response<Full<Bytes>> {
    match store.ping().await {
        Ok(()) => {
            let body = match edge_addrs {
                Some((https, http)) => serde_json::json!({"status": "ok", "edge": {"https": https, "http": http}}),
                None => serde_json::json!({"status": "ok"}),
            };
            plain(StatusCode::OK, "application/json", body.to_string())
        }
        Err(e) => {
            tracing::error!(error = %e, "health check: store unreachable");
            plain(StatusCode::SERVICE_UNAVAILABLE, "application/json", r#"{"status":"store unreachable"}"#.to_owned())
        }
    }
}

/// `GET /metrics`: the text exposition format.
pub(crate) fn metrics(metrics: &Metrics) -> Response<Full<Bytes>> {
    plain(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", metrics.render())
}

pub(crate) fn not_found() -> Response<Full<Bytes>> {
    plain(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "Not Found\n".to_owned())
}

fn binary(ctype: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body));
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static(ctype));
    resp
}

fn plain(status: StatusCode, ctype: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static(ctype));
    resp
}

/// Serves the front on `listener` through `server` until `shutdown` resolves, then drains
/// for up to `grace`.
pub async fn run(
    server: carapace_net::Server,
    listener: TcpListener,
    front: Arc<Front>,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) {
    server.run(listener, move |req| front.clone().serve(req), shutdown, grace).await;
}
