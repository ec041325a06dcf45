//! The URLs every issued certificate carries, served for real: the issuer certificate
//! (AIA caIssuers), the CRL (CRL distribution point) and the OCSP responder (AIA OCSP),
//! checked with `openssl` as a relying party would, before and after RevokeCertificate.

mod common;

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_acm::primitives::Blob;
use aws_sdk_acm::types::{CertificateExport, CertificateOptions, CertificateStatus, RevocationReason};
use common::Server;

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect("openssl");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

/// A plain HTTP/1.1 GET: (status, body).
fn http_get(url: &str) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}

/// The OCSP answer to the DER request in the file `request`, by the GET form (RFC 6960 A.1).
fn ocsp_get(ocsp_url: &str, request: &str) -> Vec<u8> {
    let (ok, b64) = openssl(&["base64", "-A", "-in", request]);
    assert!(ok, "{b64}");
    let escaped = b64.trim().replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let (status, der) = http_get(&format!("{ocsp_url}/{escaped}"));
    assert_eq!(status, 200);
    der
}

/// The URL after `label` in `openssl x509 -text` output.
fn url_after(text: &str, label: &str) -> String {
    let at = text.find(label).unwrap_or_else(|| panic!("{label} not in certificate:\n{text}"));
    text[at + label.len()..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn issuer_crl_and_ocsp_urls_answer_and_follow_revocation() {
    let server = Server::dev();
    let acm = server.acm("123456789012").await;
    let dir = tempfile::tempdir().unwrap();
    let arn = acm
        .request_certificate()
        .domain_name("pki.example.com")
        .options(CertificateOptions::builder().export(CertificateExport::Enabled).build())
        .send()
        .await
        .unwrap()
        .certificate_arn
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acm.describe_certificate().certificate_arn(&arn).send().await.unwrap().certificate.unwrap().status()
        != Some(&CertificateStatus::Issued)
    {
        assert!(Instant::now() < deadline, "not issued");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = acm.get_certificate().certificate_arn(&arn).send().await.unwrap();
    let leaf = write(dir.path(), "leaf.pem", got.certificate().unwrap().as_bytes());
    let chain = got.certificate_chain().unwrap();
    let inter_pem = &chain[..chain.find("-----END CERTIFICATE-----").unwrap() + 25];
    let inter = write(dir.path(), "inter.pem", format!("{inter_pem}\n").as_bytes());
    let (_, root_pem) = http_get(&format!("{}/ca/root.pem", server.endpoint));
    let root = write(dir.path(), "root.pem", &root_pem);
    let (ok, text) = openssl(&["x509", "-in", &leaf, "-noout", "-text"]);
    assert!(ok, "{text}");

    // caIssuers: the issuing intermediate, DER.
    let (status, der) = http_get(&url_after(&text, "CA Issuers - URI:"));
    assert_eq!(status, 200);
    let issuer = write(dir.path(), "issuer.der", &der);
    let (ok, issuer_pem) = openssl(&["x509", "-inform", "DER", "-in", &issuer]);
    assert!(ok && issuer_pem.trim() == inter_pem.trim(), "caIssuers is not the issuing intermediate");

    // The CRL: signed by the intermediate, and the leaf passes a CRL check.
    let crl_section = &text[text.find("CRL Distribution Points").expect("a CRL distribution point")..];
    let crl_url = url_after(crl_section, "URI:");
    let crl_check = |name: &str| {
        let (status, der) = http_get(&crl_url);
        assert_eq!(status, 200, "{crl_url}");
        let crl = write(dir.path(), name, &der);
        let (ok, out) = openssl(&["crl", "-inform", "DER", "-in", &crl, "-out", &format!("{crl}.pem")]);
        assert!(ok, "{out}");
        let (_, listed) = openssl(&["crl", "-in", &format!("{crl}.pem"), "-noout", "-text"]);
        let crl_pem = format!("{crl}.pem");
        let verify =
            openssl(&["verify", "-crl_check", "-CRLfile", &crl_pem, "-CAfile", &root, "-untrusted", &inter, &leaf]);
        (verify, listed)
    };
    // OCSP, POSTed by openssl itself to the URL in the certificate.
    let ocsp_url = url_after(&text, "OCSP - URI:");
    let ocsp = || openssl(&["ocsp", "-issuer", &inter, "-cert", &leaf, "-url", &ocsp_url, "-CAfile", &root]);
    let (ok, out) = ocsp();
    assert!(ok && out.contains("Response verify OK") && out.contains(": good"), "{out}");
    // One certificate per request: a request about two is malformed, and costs no lookups.
    let (_, out) = openssl(&["ocsp", "-issuer", &inter, "-cert", &leaf, "-cert", &leaf, "-url", &ocsp_url]);
    assert!(out.contains("malformedrequest"), "{out}");
    // Without a nonce every request about the leaf gets the same bytes: the answer is kept,
    // not signed again (a new one would carry a new producedAt).
    let no_nonce = dir.path().join("no-nonce.der");
    let no_nonce = no_nonce.to_str().unwrap();
    let (ok, out) = openssl(&["ocsp", "-issuer", &inter, "-cert", &leaf, "-no_nonce", "-reqout", no_nonce]);
    assert!(ok, "{out}");
    let kept = ocsp_get(&ocsp_url, no_nonce);
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(ocsp_get(&ocsp_url, no_nonce), kept, "a nonce-less answer is kept");

    let ((ok, out), listed) = crl_check("before.crl");
    assert!(ok, "a valid leaf must pass the CRL check: {out}\n{listed}");
    assert!(listed.contains("No Revoked Certificates"), "{listed}");

    // Revoke (ACM revokes exported certificates only).
    acm.export_certificate().certificate_arn(&arn).passphrase(Blob::new("passphrase1")).send().await.unwrap();
    acm.revoke_certificate()
        .certificate_arn(&arn)
        .revocation_reason(RevocationReason::KeyCompromise)
        .send()
        .await
        .unwrap();
    let ((ok, out), listed) = crl_check("after.crl");
    assert!(!ok && out.contains("certificate revoked"), "the revoked leaf must fail the CRL check: {out}");
    let (_, serial) = openssl(&["x509", "-in", &leaf, "-noout", "-serial"]);
    let serial = serial.trim().trim_start_matches("serial=").trim_start_matches('0').to_owned();
    assert!(listed.to_uppercase().contains(&serial), "serial {serial} not listed:\n{listed}");
    assert!(listed.contains("Key Compromise"), "{listed}");

    let (ok, out) = ocsp();
    assert!(ok && out.contains("Response verify OK") && out.contains(": revoked"), "{out}");
    assert!(out.contains("keyCompromise"), "{out}");
    // The kept `good` answer went with the revocation.
    let after = write(dir.path(), "no-nonce-resp.der", &ocsp_get(&ocsp_url, no_nonce));
    let (ok, out) =
        openssl(&["ocsp", "-respin", &after, "-reqin", no_nonce, "-issuer", &inter, "-CAfile", &root, "-resp_text"]);
    assert!(ok && out.contains("Cert Status: revoked"), "{out}");

    // The GET form (RFC 6960 A.1): the base64 request in the path.
    let request = dir.path().join("req.der");
    let request = request.to_str().unwrap();
    let (ok, out) = openssl(&["ocsp", "-issuer", &inter, "-cert", &leaf, "-reqout", request]);
    assert!(ok, "{out}");
    let response = write(dir.path(), "resp.der", &ocsp_get(&ocsp_url, request));
    let (ok, out) =
        openssl(&["ocsp", "-respin", &response, "-reqin", request, "-issuer", &inter, "-CAfile", &root, "-resp_text"]);
    assert!(ok && out.contains("Response verify OK") && out.contains("Cert Status: revoked"), "{out}");
    // Garbage gets an unsuccessful OCSP response, not an HTTP error page.
    let (status, der) = http_get(&format!("{ocsp_url}/bm90IGFuIE9DU1AgcmVxdWVzdA%3D%3D"));
    assert_eq!(status, 200);
    let failed = write(dir.path(), "failed.der", &der);
    let (_, out) = openssl(&["ocsp", "-respin", &failed, "-resp_text", "-noverify"]);
    assert!(out.contains("malformedrequest"), "{out}");

    // Unknown ids are 404s.
    assert_eq!(http_get(&format!("{}/crl/00.crl", server.endpoint)).0, 404);
    assert_eq!(http_get(&format!("{}/ca/00.crt", server.endpoint)).0, 404);
}

/// The approval page's own certificate (outside `--dev`) is one the CA answers for like any
/// other: its serial is in the issued index, so OCSP says `good` rather than `unknown`.
#[tokio::test(flavor = "multi_thread")]
async fn the_approval_page_certificate_is_good_on_ocsp() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let approval = format!("127.0.0.1:{port}");
    let server = Server::start(&[], &[("CARAPACE_ACM_APPROVAL_LISTEN", approval.as_str())]);
    let dir = tempfile::tempdir().unwrap();
    let (_, root_pem) = http_get(&format!("{}/ca/root.pem", server.endpoint));
    let root = write(dir.path(), "root.pem", &root_pem);
    // The page is served once its line is printed, which follows the API's.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&approval).is_err() {
        assert!(Instant::now() < deadline, "the approval page never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, shown) = openssl(&["s_client", "-connect", &approval, "-showcerts"]);
    assert!(ok, "{shown}");
    let pems: Vec<&str> = shown
        .match_indices("-----BEGIN CERTIFICATE-----")
        .map(|(at, _)| &shown[at..at + shown[at..].find("-----END CERTIFICATE-----").unwrap() + 25])
        .collect();
    assert!(pems.len() >= 2, "the approval page sends its leaf and intermediate: {shown}");
    let page_leaf = write(dir.path(), "approval.pem", format!("{}\n", pems[0]).as_bytes());
    let page_inter = write(dir.path(), "approval-inter.pem", format!("{}\n", pems[1]).as_bytes());
    let (ok, page_text) = openssl(&["x509", "-in", &page_leaf, "-noout", "-text"]);
    assert!(ok, "{page_text}");
    let page_ocsp = url_after(&page_text, "OCSP - URI:");
    let (ok, out) =
        openssl(&["ocsp", "-issuer", &page_inter, "-cert", &page_leaf, "-url", &page_ocsp, "-CAfile", &root]);
    assert!(ok && out.contains("Response verify OK") && out.contains(": good"), "{out}");
}
