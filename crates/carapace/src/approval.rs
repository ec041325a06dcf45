//! The approval page of email validation, served over HTTPS.
//!
//! Approval mail links to `<approval_base_url>/approve/<token>` (see
//! `carapace_acm::validate`). `GET` shows what would be approved — the domain, the
//! account and every name on the certificate — with an **I Approve** button; only the
//! button's `POST` approves. Approving on `GET` would let mail scanners and link previews,
//! which fetch every link they see, approve certificates nobody looked at.
//!
//! A used, expired or forged token gets a plain error page (404); a request that is no
//! longer pending gets 409. The token is the only credential, so the page is sent with
//! `Referrer-Policy: no-referrer` and `Cache-Control: no-store`, and may not be framed.
//!
//! The TLS certificate is issued at start-up by Carapace's own CA for a fresh P-256 key,
//! for the host of `acm.approval_base_url` (a name or an address), `localhost`, `127.0.0.1`
//! and `::1`: a browser that trusts the Carapace root opens the default
//! `https://127.0.0.1:4567` without a warning.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use carapace_acm::{AcmError, ApprovalView, CertificateManager};
use carapace_kernel::ca::{CaError, CertificateAuthority, KeyAlgorithm, LeafRequest, generate_key};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

/// The path prefix of approval links (what the mail's link carries before the token).
pub const APPROVE_PREFIX: &str = "/approve/";

/// Why the approval page could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The page's certificate could not be issued.
    #[error("approval page certificate: {0}")]
    Certificate(#[from] CaError),
    /// rustls refused the certificate or key.
    #[error("approval page TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// What the page's certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateNames {
    /// DNS names, the first one the subject's common name.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<IpAddr>,
}

/// The names the page's certificate is issued for: the host of `base_url` (as a DNS name or
/// an address), then `localhost` and the loopback addresses.
pub fn certificate_names(base_url: &str) -> CertificateNames {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Some(host) = url_host(base_url) {
        match host.parse::<IpAddr>() {
            Ok(ip) => ips.push(ip),
            Err(_) if !host.eq_ignore_ascii_case("localhost") => dns.push(host.to_ascii_lowercase()),
            Err(_) => {}
        }
    }
    dns.push("localhost".to_owned());
    for loopback in [IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)] {
        if !ips.contains(&loopback) {
            ips.push(loopback);
        }
    }
    CertificateNames { dns, ips }
}

/// The host of `https://host[:port][/...]` (brackets of an IPv6 literal removed).
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then_some(host)
}

/// The TLS configuration of the page: a certificate from `ca` for `names`, valid from now for
/// `validity_days` (clamped by the CA to its intermediate), with `api_base_url` in its AIA
/// and CRL URLs like every certificate Carapace issues. The issued certificate is returned
/// too, for the issued-serial index (OCSP answers `good` for it, like for every other).
pub fn tls_config(
    ca: &CertificateAuthority,
    names: &CertificateNames,
    api_base_url: &str,
    validity_days: u32,
    now: time::OffsetDateTime,
) -> Result<(Arc<rustls::ServerConfig>, carapace_kernel::ca::IssuedCertificate), ApprovalError> {
    let key = generate_key(KeyAlgorithm::EcPrime256v1)?;
    let (common_name, sans) = names.dns.split_first().map_or(("localhost", &[][..]), |(cn, rest)| (cn.as_str(), rest));
    let issued = ca.issue(
        &LeafRequest {
            common_name: common_name.to_owned(),
            sans: sans.to_vec(),
            ip_addresses: names.ips.clone(),
            // A little slack for clients whose clocks run behind.
            not_before: now - time::Duration::minutes(5),
            not_after: now + time::Duration::days(i64::from(validity_days.max(1))),
            serial: None,
            base_url: api_base_url.to_owned(),
        },
        &key,
        now,
    )?;
    let pem = format!("{}{}", issued.certificate_pem, issued.chain_pem);
    let chain = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| rustls::Error::General(format!("issued chain: {e}")))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), issued))
}

/// Serves the approval page on `listener` through `server` until `stop` turns true, then
/// lets in-flight approvals finish for up to `grace`.
pub async fn run(
    server: carapace_net::Server,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    manager: CertificateManager,
    mut stop: tokio::sync::watch::Receiver<bool>,
    grace: Duration,
) {
    let manager = Arc::new(manager);
    let stopped = async move {
        // The guard `wait_for` returns is not `Send`: drop it at once.
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let server = server.with_handshake(carapace_net::Tls::new(tls));
    server.run(listener, move |req| handle(manager.clone(), req), stopped, grace).await;
    tracing::info!("approval page stopped");
}

async fn handle(manager: Arc<CertificateManager>, req: Request<carapace_net::Body>) -> Response<Full<Bytes>> {
    let Some(token) = req.uri().path().strip_prefix(APPROVE_PREFIX) else {
        return error_page(StatusCode::NOT_FOUND, "Not found", "There is nothing here.");
    };
    // The body of the POST (an empty form) is never read: the URL names what is approved.
    match *req.method() {
        Method::GET | Method::HEAD => match manager.approval(token).await {
            Ok(view) => page(StatusCode::OK, &confirm_body(&view)),
            Err(e) => refused(&e),
        },
        Method::POST => match manager.approve(token).await {
            Ok(view) => page(StatusCode::OK, &approved_body(&view)),
            Err(e) => refused(&e),
        },
        _ => {
            let mut resp =
                error_page(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed", "Use the link in the mail.");
            resp.headers_mut().insert(header::ALLOW, http::HeaderValue::from_static("GET, HEAD, POST"));
            resp
        }
    }
}

/// The page for an error from the core: the reason when it is the user's (a bad link, a
/// request no longer pending), a generic line (and a log entry) when it is ours.
fn refused(e: &AcmError) -> Response<Full<Bytes>> {
    match e {
        AcmError::NotFound(msg) => error_page(StatusCode::NOT_FOUND, "Invalid approval link", msg),
        AcmError::InvalidState(msg) | AcmError::Conflict(msg) => {
            error_page(StatusCode::CONFLICT, "Cannot approve", msg)
        }
        other => {
            tracing::error!(error = %other, "approval page: internal failure");
            error_page(StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "Please try again later.")
        }
    }
}

fn confirm_body(view: &ApprovalView) -> String {
    let names: String = view.sans.iter().map(|n| format!("<li>{}</li>", escape(n))).collect();
    format!(
        "<h1>Approve a certificate for {domain}</h1>\n\
         <p>Account <strong id=\"account\">{account}</strong> asked Carapace for a certificate that \
         includes <strong id=\"domain\">{domain}</strong>.</p>\n\
         <p>Domains on the certificate:</p>\n<ul id=\"names\">{names}</ul>\n\
         <p class=\"arn\">{arn}</p>\n\
         <p>Approve only if you control {domain} and expected this request.</p>\n\
         <form method=\"post\"><button type=\"submit\">I Approve</button></form>\n",
        domain = escape(&view.domain),
        account = escape(&view.account),
        arn = escape(&view.arn),
    )
}

fn approved_body(view: &ApprovalView) -> String {
    format!(
        "<h1>Approved</h1>\n<p>You approved <strong>{domain}</strong> for account {account}. \
         The certificate is issued once every domain on it is validated.</p>\n",
        domain = escape(&view.domain),
        account = escape(&view.account),
    )
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response<Full<Bytes>> {
    page(status, &format!("<h1>{}</h1>\n<p>{}</p>\n", escape(title), escape(message)))
}

fn page(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Carapace certificate approval</title><style>{STYLE}</style></head>\n\
         <body><main>\n{body}</main></body></html>\n"
    );
    let mut resp = Response::new(Full::new(Bytes::from(html)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, http::HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, http::HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        http::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    resp
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2430;margin:0}\
main{max-width:40rem;margin:3rem auto;background:#fff;padding:2rem 2.5rem;border-radius:8px;\
box-shadow:0 1px 4px rgba(0,0,0,.12)}h1{font-size:1.4rem}ul{padding-left:1.2rem}\
.arn{font-family:monospace;font-size:.8rem;color:#5a6270;word-break:break-all}\
button{font-size:1rem;padding:.6rem 1.4rem;background:#1f6feb;color:#fff;border:0;border-radius:6px;cursor:pointer}";

/// HTML-escapes text for element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the real clock where no clock is injected
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn names_and_addresses() {
        let names = |url: &str| {
            let n = certificate_names(url);
            (n.dns.join(" "), n.ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "))
        };
        let named = |dns: &str, ips: &str| (dns.to_owned(), ips.to_owned());
        assert_eq!(names("https://127.0.0.1:4567"), named("localhost", "127.0.0.1 ::1"));
        assert_eq!(names("https://[::1]:4567/"), named("localhost", "::1 127.0.0.1"));
        assert_eq!(names("https://10.1.2.3"), named("localhost", "10.1.2.3 127.0.0.1 ::1"));
        assert_eq!(names("https://Approve.Example.com/x"), named("approve.example.com localhost", "127.0.0.1 ::1"));
        assert_eq!(names("https://localhost:9"), named("localhost", "127.0.0.1 ::1"));
    }

    /// A client that trusts only the Carapace root reaches the page by IP address.
    #[tokio::test]
    async fn the_page_certificate_verifies_for_a_loopback_address() {
        let master = carapace_kernel::crypto::MasterKey::generate().unwrap();
        let (ca, _) = CertificateAuthority::generate(
            &carapace_kernel::ca::CaProfile::new("Test", "http://127.0.0.1:4566"),
            time::OffsetDateTime::now_utc(),
            &master,
        )
        .unwrap();
        let names = certificate_names("https://127.0.0.1:4567");
        let (tls, _) = tls_config(&ca, &names, "http://127.0.0.1:4566", 30, time::OffsetDateTime::now_utc()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            acceptor.accept(stream).await.map(drop)
        });
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca.root_pem().as_bytes()).unwrap()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
        connector.connect(name, stream).await.expect("the certificate verifies for 127.0.0.1");
        server.await.unwrap().unwrap();
    }

    #[test]
    fn confirm_page_escapes_every_field() {
        let view = ApprovalView {
            domain: "<b>x.com".into(),
            account: "1234\"".into(),
            arn: "arn:<".into(),
            sans: vec!["<script>".into()],
        };
        let body = confirm_body(&view);
        assert!(!body.contains("<b>") && !body.contains("<script>") && !body.contains("1234\""));
        assert!(body.contains("&lt;script&gt;") && body.contains("I Approve"));
    }
}
