//! Cross-check: requests signed by the `aws-sigv4` crate (what aws-sdk-rust uses) must verify,
//! and every kind of tampering must fail with the right error.

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use carapace_proto::sigv4::{self, AuthError, SecretKey};
use time::OffsetDateTime;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2026-01-15T10:00:00Z.
const SIGNED_AT: i64 = 1_768_471_200;

/// How to sign.
#[derive(Clone)]
struct Signing {
    service: &'static str,
    token: Option<&'static str>,
    presign_for: Option<Duration>,
    unsigned_payload: bool,
    content_sha256_header: bool,
}

impl Signing {
    fn headers(service: &'static str) -> Self {
        Self { service, token: None, presign_for: None, unsigned_payload: false, content_sha256_header: false }
    }
}

/// A request as the server sees it after the signer and the HTTP client are done with it:
/// origin-form URI and a `Host` header taken from the endpoint.
struct Received {
    parts: http::request::Parts,
    body: Vec<u8>,
}

fn signed(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8], how: &Signing) -> Received {
    let mut request = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut request = request.body(body.to_vec()).unwrap();

    let identity: Identity = Credentials::new(AKID, SECRET, how.token.map(str::to_owned), None, "carapace-test").into();
    let mut settings = SigningSettings::default();
    if let Some(expires) = how.presign_for {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
    }
    if how.content_sha256_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(how.service)
        .time(UNIX_EPOCH + Duration::from_secs(SIGNED_AT as u64))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable_body = if how.unsigned_payload { SignableBody::UnsignedPayload } else { SignableBody::Bytes(body) };
    let signable = SignableRequest::new(
        method,
        url,
        request.headers().iter().map(|(k, v)| (k.as_str(), v.to_str().unwrap())),
        signable_body,
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);

    let (mut parts, body) = request.into_parts();
    let authority = parts.uri.authority().unwrap().as_str().to_owned();
    let host = authority.strip_suffix(":443").unwrap_or(&authority).to_owned();
    parts.headers.entry(http::header::HOST).or_insert(host.parse().unwrap());
    parts.uri = parts.uri.path_and_query().unwrap().as_str().parse().unwrap();
    Received { parts, body }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(SIGNED_AT).unwrap()
}

fn verify_at(req: &Received, body: &[u8], secret: &str, service: &str, now: OffsetDateTime) -> Result<(), AuthError> {
    let info = sigv4::parse(&req.parts)?;
    assert_eq!(info.access_key_id, AKID);
    assert_eq!(info.region, "us-east-1");
    sigv4::verify(&info, &req.parts, &sigv4::sha256_hex(body), &SecretKey::new(secret.to_owned()), service, now)
}

fn verify(req: &Received, service: &str) -> Result<(), AuthError> {
    verify_at(req, &req.body, SECRET, service, now())
}

/// The failures every signed request must show: wrong secret, tampered body, wrong
/// service, a clock more than five minutes off either way.
fn assert_tampering_fails(req: &Received, service: &str) {
    assert_eq!(verify(req, service), Ok(()));
    let wrong_secret = SECRET.replace('K', "k");
    assert_eq!(verify_at(req, &req.body, &wrong_secret, service, now()), Err(AuthError::SignatureMismatch));
    let mut body = req.body.clone();
    body.push(b' ');
    assert_eq!(verify_at(req, &body, SECRET, service, now()), Err(AuthError::SignatureMismatch));
    let other = if service == "acm" { "lightsail" } else { "acm" };
    assert_eq!(verify(req, other), Err(AuthError::WrongService { expected: other.to_owned() }));
    let later = now() + time::Duration::seconds(301);
    assert_eq!(
        verify_at(req, &req.body, SECRET, service, later),
        Err(AuthError::Expired {
            request_time: "20260115T100000Z".into(),
            earliest: "20260115T100001Z".into(),
            now: "20260115T100501Z".into(),
            window: "5 min".into(),
        })
    );
    let earlier = now() - time::Duration::seconds(301);
    let err = verify_at(req, &req.body, SECRET, service, earlier).unwrap_err();
    assert_eq!(
        err.message(),
        "Signature not yet current: 20260115T100000Z is still later than 20260115T095959Z (20260115T095459Z + 5 min.)"
    );
    // Just inside the window on both sides.
    verify_at(req, &req.body, SECRET, service, now() + time::Duration::seconds(300)).unwrap();
    verify_at(req, &req.body, SECRET, service, now() - time::Duration::seconds(300)).unwrap();
}

fn with_header(req: &Received, name: &'static str, value: &str) -> Received {
    let mut parts = req.parts.clone();
    parts.headers.insert(name, value.parse().unwrap());
    Received { parts, body: req.body.clone() }
}

#[test]
fn aws_json_post_verifies() {
    let body = br#"{"CertificateStatuses":["ISSUED"],"MaxItems":10}"#;
    let req = signed(
        "POST",
        "http://127.0.0.1:4566/",
        &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "CertificateManager.ListCertificates")],
        body,
        &Signing::headers("acm"),
    );
    assert_eq!(req.parts.headers["host"], "127.0.0.1:4566");
    assert_tampering_fails(&req, "acm");
    // The operation is a signed header: switching it breaks the signature.
    let switched = with_header(&req, "x-amz-target", "CertificateManager.DeleteCertificate");
    assert_eq!(verify(&switched, "acm"), Err(AuthError::SignatureMismatch));
    // So is the endpoint.
    let moved = with_header(&req, "host", "127.0.0.1:4567");
    assert_eq!(verify(&moved, "acm"), Err(AuthError::SignatureMismatch));
}

#[test]
fn rpc_v2_cbor_post_verifies() {
    // {"Limit": 5} in CBOR.
    let body = [0xa1, 0x65, b'L', b'i', b'm', b'i', b't', 0x05];
    let req = signed(
        "POST",
        "https://ds.us-east-1.amazonaws.com/service/DirectoryService_20150416/operation/DescribeDirectories",
        &[("smithy-protocol", "rpc-v2-cbor"), ("content-type", "application/cbor"), ("accept", "application/cbor")],
        &body,
        &Signing::headers("ds"),
    );
    assert_eq!(req.parts.headers["host"], "ds.us-east-1.amazonaws.com");
    assert_tampering_fails(&req, "ds");
    let mut other_op = req.parts.clone();
    other_op.uri = "/service/DirectoryService_20150416/operation/DeleteDirectory".parse().unwrap();
    let other_op = Received { parts: other_op, body: req.body.clone() };
    assert_eq!(verify(&other_op, "ds"), Err(AuthError::SignatureMismatch));
}

#[test]
fn encoded_path_and_query_agree_with_the_sdk() {
    let req = signed(
        "GET",
        "http://localhost:8080/a%20b/c%3Dd/~e?z=%2F&a=b%20c&a=a&empty=&tilde=~x",
        &[("my-header", "  spaced    out   value  ")],
        b"",
        &Signing::headers("lightsail"),
    );
    assert_eq!(verify(&req, "lightsail"), Ok(()));
}

#[test]
fn presigned_url_verifies_and_expires() {
    let how = Signing { presign_for: Some(Duration::from_secs(900)), ..Signing::headers("lightsail") };
    let req = signed(
        "GET",
        "https://lightsail.us-east-1.amazonaws.com/?Action=GetDistributions&Version=2016-11-28",
        &[],
        b"",
        &how,
    );
    let info = sigv4::parse(&req.parts).unwrap();
    assert!(info.presigned);
    assert_eq!(info.expires_secs, Some(900));
    assert_eq!(verify(&req, "lightsail"), Ok(()));
    verify_at(&req, b"", SECRET, "lightsail", now() + time::Duration::seconds(900)).unwrap();
    assert_eq!(
        verify_at(&req, b"", SECRET, "lightsail", now() + time::Duration::seconds(901)).unwrap_err().message(),
        "Signature expired: 20260115T100000Z is now earlier than 20260115T100001Z (20260115T101501Z - 15 min.)"
    );
    assert_eq!(verify_at(&req, b"", "wrong", "lightsail", now()), Err(AuthError::SignatureMismatch));
    assert_eq!(verify(&req, "acm"), Err(AuthError::WrongService { expected: "acm".into() }));
    let mut tampered = req.parts.clone();
    let uri = tampered.uri.to_string().replace("GetDistributions", "DeleteDistribution");
    tampered.uri = uri.parse().unwrap();
    let tampered = Received { parts: tampered, body: Vec::new() };
    assert_eq!(verify(&tampered, "lightsail"), Err(AuthError::SignatureMismatch));
}

/// S3 signs presigned URLs over `UNSIGNED-PAYLOAD`; a JSON service signs the body, so a URL
/// signed that way would carry any body, that is any input, and does not verify.
#[test]
fn presigned_url_with_unsigned_payload_is_refused() {
    let how = Signing { presign_for: Some(Duration::from_secs(60)), unsigned_payload: true, ..Signing::headers("acm") };
    let req = signed(
        "POST",
        "http://127.0.0.1:4566/",
        &[("x-amz-target", "CertificateManager.ListCertificates")],
        b"{}",
        &how,
    );
    assert_eq!(verify(&req, "acm"), Err(AuthError::SignatureMismatch));
    let signed_body = Signing { unsigned_payload: false, ..how };
    let req = signed(
        "POST",
        "http://127.0.0.1:4566/",
        &[("x-amz-target", "CertificateManager.ListCertificates")],
        b"{}",
        &signed_body,
    );
    assert_eq!(verify(&req, "acm"), Ok(()));
}

/// A presigned URL that signed only `host` cannot be sent with an `X-Amz-Target` of the
/// sender's choosing.
#[test]
fn presigned_url_with_an_unsigned_target_is_refused() {
    let how = Signing { presign_for: Some(Duration::from_secs(60)), ..Signing::headers("acm") };
    let req = signed("POST", "http://127.0.0.1:4566/", &[], b"{}", &how);
    assert_eq!(verify(&req, "acm"), Ok(()));
    let swapped = with_header(&req, "x-amz-target", "CertificateManager.DeleteCertificate");
    assert_eq!(verify(&swapped, "acm"), Err(AuthError::UnsignedHeaders("x-amz-target".into())));
}

#[test]
fn session_token_is_signed() {
    let how = Signing { token: Some("FwoGZXIvYXdzEJr//////////wEaDHVzZXIgdG9rZW4="), ..Signing::headers("acm") };
    let req = signed(
        "POST",
        "http://127.0.0.1:4566/",
        &[("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "CertificateManager.ListCertificates")],
        b"{}",
        &how,
    );
    let info = sigv4::parse(&req.parts).unwrap();
    assert!(info.signed_headers.iter().any(|h| h == "x-amz-security-token"), "{:?}", info.signed_headers);
    assert_tampering_fails(&req, "acm");
    let swapped = with_header(&req, "x-amz-security-token", "FwoGZXIvYXdzEJr//////////wEaDHVzZXIgdG9rZW5=");
    assert_eq!(verify(&swapped, "acm"), Err(AuthError::SignatureMismatch));

    let presigned = Signing { presign_for: Some(Duration::from_secs(300)), ..how };
    let req = signed("GET", "https://acm.us-east-1.amazonaws.com/", &[], b"", &presigned);
    assert!(req.parts.uri.query().unwrap().contains("X-Amz-Security-Token="));
    assert_eq!(verify(&req, "acm"), Ok(()));
}

#[test]
fn content_sha256_header_is_checked_against_the_body() {
    let how = Signing { content_sha256_header: true, ..Signing::headers("acm") };
    let req = signed(
        "POST",
        "http://127.0.0.1:4566/",
        &[("x-amz-target", "CertificateManager.ListCertificates")],
        b"{}",
        &how,
    );
    assert_eq!(req.parts.headers["x-amz-content-sha256"], sigv4::sha256_hex(b"{}"));
    assert_tampering_fails(&req, "acm");
}
