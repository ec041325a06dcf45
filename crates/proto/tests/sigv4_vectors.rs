//! Known-answer tests: the CRT SigV4 test suite (see testdata/aws-signing-test-suite/README.md)
//! and the IAM user guide's example, verified through the public API only.

use std::path::{Path, PathBuf};

use carapace_proto::sigv4::{self, AuthError, SecretKey};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

const SUITE: &str = "testdata/aws-signing-test-suite/v4";

/// Every vector directory kept in testdata (the README says which were left out and why).
const VECTORS: &[&str] = &[
    "get-header-key-duplicate",
    "get-header-value-order",
    "get-header-value-trim",
    "get-relative-normalized",
    "get-relative-relative-normalized",
    "get-slash-dot-slash-normalized",
    "get-slash-normalized",
    "get-slash-pointless-dot-normalized",
    "get-slashes-normalized",
    "get-unreserved",
    "get-vanilla",
    "get-vanilla-empty-query-key",
    "get-vanilla-query",
    "get-vanilla-query-order-encoded",
    "get-vanilla-query-order-key-case",
    "get-vanilla-query-unreserved",
    "get-vanilla-utf8-query",
    "get-vanilla-with-session-token",
    "post-header-key-case",
    "post-header-key-sort",
    "post-header-value-case",
    "post-sts-header-after",
    "post-sts-header-before",
    "post-vanilla",
    "post-vanilla-empty-query-value",
    "post-vanilla-query",
    "post-x-www-form-urlencoded",
    "post-x-www-form-urlencoded-parameters",
];

struct Context {
    secret: String,
    service: String,
    now: OffsetDateTime,
}

fn suite_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SUITE).join(name)
}

fn context(name: &str) -> Context {
    let raw = std::fs::read_to_string(suite_dir(name).join("context.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(json["normalize"], true, "{name}: only normalized vectors apply to non-S3 services");
    Context {
        secret: json["credentials"]["secret_access_key"].as_str().unwrap().to_owned(),
        service: json["service"].as_str().unwrap().to_owned(),
        now: rfc3339(json["timestamp"].as_str().unwrap()),
    }
}

/// `2015-08-30T12:36:00Z`.
fn rfc3339(s: &str) -> OffsetDateTime {
    let n = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap();
    let date =
        Date::from_calendar_date(n(0..4) as i32, Month::try_from(n(5..7) as u8).unwrap(), n(8..10) as u8).unwrap();
    let time = Time::from_hms(n(11..13) as u8, n(14..16) as u8, n(17..19) as u8).unwrap();
    PrimitiveDateTime::new(date, time).assume_utc()
}

/// A request from the suite's text form: request line, `Name:value` headers, blank line, body.
struct Request {
    parts: http::request::Parts,
    body: Vec<u8>,
}

fn read_request(path: &Path) -> Request {
    let raw = std::fs::read_to_string(path).unwrap();
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let (method, rest) = request_line.split_once(' ').unwrap();
    let target = rest.strip_suffix(" HTTP/1.1").unwrap_or(rest);
    // What a client puts on the wire: non-ASCII bytes percent-encoded.
    let target: String =
        target.bytes().map(|b| if b.is_ascii() { (b as char).to_string() } else { format!("%{b:02X}") }).collect();
    let mut builder = http::Request::builder().method(method).uri(target);
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        builder = builder.header(name, value);
    }
    Request { parts: builder.body(()).unwrap().into_parts().0, body: body.as_bytes().to_vec() }
}

/// Verifies one signed request; returns the error for mutation checks.
fn check(req: &Request, body: &[u8], secret: &str, service: &str, now: OffsetDateTime) -> Result<(), AuthError> {
    let info = sigv4::parse(&req.parts)?;
    sigv4::verify(&info, &req.parts, &sigv4::sha256_hex(body), &SecretKey::new(secret.to_owned()), service, now)
}

/// Changes one character of `s` at `index` to another hex digit / letter.
fn flip(s: &str, index: usize) -> String {
    let mut bytes = s.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).unwrap()
}

fn with_header(req: &Request, name: &str, value: String) -> Request {
    let mut parts = req.parts.clone();
    parts.headers.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), value.parse().unwrap());
    Request { parts, body: req.body.clone() }
}

fn with_uri(req: &Request, uri: String) -> Request {
    let mut parts = req.parts.clone();
    parts.uri = uri.parse().unwrap();
    Request { parts, body: req.body.clone() }
}

#[test]
fn crt_suite_header_signatures_verify() {
    // `post-sts-header-after` adds X-Amz-Security-Token after signing: an unsigned `x-amz-*`
    // header, which the verifier refuses (see the README and the test below).
    for name in VECTORS.iter().filter(|n| **n != "post-sts-header-after") {
        let ctx = context(name);
        let req = read_request(&suite_dir(name).join("header-signed-request.txt"));
        check(&req, &req.body, &ctx.secret, &ctx.service, ctx.now).unwrap_or_else(|e| panic!("{name}: {e}"));

        // One character off in the signature.
        let auth = req.parts.headers["authorization"].to_str().unwrap().to_owned();
        let tampered = with_header(&req, "authorization", flip(&auth, auth.len() - 1));
        assert_eq!(check(&tampered, &req.body, &ctx.secret, &ctx.service, ctx.now), Err(AuthError::SignatureMismatch));
        // One byte more in the body.
        let mut body = req.body.clone();
        body.push(b'x');
        assert_eq!(check(&req, &body, &ctx.secret, &ctx.service, ctx.now), Err(AuthError::SignatureMismatch), "{name}");
        // One character off in a signed header.
        let tampered = with_header(&req, "host", "example.amazonaws.con".into());
        assert_eq!(check(&tampered, &req.body, &ctx.secret, &ctx.service, ctx.now), Err(AuthError::SignatureMismatch));
        // Wrong secret.
        let wrong = flip(&ctx.secret, 0);
        assert_eq!(check(&req, &req.body, &wrong, &ctx.service, ctx.now), Err(AuthError::SignatureMismatch));
    }
}

#[test]
fn crt_suite_presigned_urls_verify() {
    // `post-sts-header-after` appends X-Amz-Security-Token to the URL *after* signing (the IoT
    // convention). Every other service signs it, so the verifier requires that; see the README.
    for name in VECTORS.iter().filter(|n| **n != "post-sts-header-after") {
        let ctx = context(name);
        let req = read_request(&suite_dir(name).join("query-signed-request.txt"));
        check(&req, &req.body, &ctx.secret, &ctx.service, ctx.now).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Still valid at the end of its hour, expired one second later.
        let end = ctx.now + time::Duration::seconds(3600);
        check(&req, &req.body, &ctx.secret, &ctx.service, end).unwrap();
        let err = check(&req, &req.body, &ctx.secret, &ctx.service, end + time::Duration::seconds(1)).unwrap_err();
        assert!(matches!(err, AuthError::Expired { .. }), "{name}: {err:?}");

        // One character off in the signature (the last query parameter).
        let uri = req.parts.uri.to_string();
        assert!(uri.contains("&X-Amz-Signature="));
        let tampered = with_uri(&req, flip(&uri, uri.len() - 1));
        assert_eq!(check(&tampered, &req.body, &ctx.secret, &ctx.service, ctx.now), Err(AuthError::SignatureMismatch));
        // A parameter added after signing.
        let tampered = with_uri(&req, format!("{uri}&Extra=1"));
        assert_eq!(check(&tampered, &req.body, &ctx.secret, &ctx.service, ctx.now), Err(AuthError::SignatureMismatch));
        // A longer validity than signed.
        let tampered = with_uri(&req, uri.replace("X-Amz-Expires=3600", "X-Amz-Expires=3601"));
        assert_eq!(check(&tampered, &req.body, &ctx.secret, &ctx.service, ctx.now), Err(AuthError::SignatureMismatch));
    }
}

#[test]
fn crt_suite_token_added_after_signing_is_refused() {
    let ctx = context("post-sts-header-after");
    let req = read_request(&suite_dir("post-sts-header-after").join("header-signed-request.txt"));
    assert_eq!(
        check(&req, &req.body, &ctx.secret, &ctx.service, ctx.now),
        Err(AuthError::UnsignedHeaders("x-amz-security-token".into()))
    );
}

#[test]
fn crt_suite_get_vanilla_exact_signature() {
    // The signature the brief and the suite both state, checked literally.
    let req = read_request(&suite_dir("get-vanilla").join("header-signed-request.txt"));
    let info = sigv4::parse(&req.parts).unwrap();
    assert_eq!(info.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    assert_eq!(
        (info.access_key_id.as_str(), info.date.as_str(), info.region.as_str(), info.service.as_str()),
        ("AKIDEXAMPLE", "20150830", "us-east-1", "service")
    );
    assert_eq!(info.signed_headers, ["host", "x-amz-date"]);
    assert!(!info.presigned);
    let ctx = context("get-vanilla");
    check(&req, b"", &ctx.secret, "service", ctx.now).unwrap();
    assert_eq!(check(&req, b"", &ctx.secret, "acm", ctx.now), Err(AuthError::WrongService { expected: "acm".into() }));
}

#[test]
fn double_encoded_path() {
    // Signed by aws-sigv4 with `Credentials::for_tests()`: `%3D` on the wire is `%253D` when signed.
    let req = read_request(&suite_dir("double-encode-path").join("header-signed-request.txt"));
    let now = rfc3339("2015-08-30T12:36:00Z");
    check(&req, b"", "notrealrnrELgWzOk3IfjzDKtFBhDby", "service", now).unwrap();
    let single = with_uri(&req, "/test/@connections/JBDvjfGEIAMCERw=".into());
    assert_eq!(
        check(&single, b"", "notrealrnrELgWzOk3IfjzDKtFBhDby", "service", now),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn iam_user_guide_example() {
    // https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html (the GET ListUsers example).
    let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                SignedHeaders=content-type;host;x-amz-date, \
                Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
    let parts = http::Request::get("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08")
        .header("host", "iam.amazonaws.com")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .header("x-amz-date", "20150830T123600Z")
        .header("authorization", auth)
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let req = Request { parts, body: Vec::new() };
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let now = rfc3339("2015-08-30T12:36:00Z");
    check(&req, b"", secret, "iam", now).unwrap();
    let reordered = with_uri(&req, "https://iam.amazonaws.com/?Version=2010-05-08&Action=ListUsers".into());
    check(&reordered, b"", secret, "iam", now).unwrap();
    let changed = with_uri(&req, "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-09".into());
    assert_eq!(check(&changed, b"", secret, "iam", now), Err(AuthError::SignatureMismatch));
    let changed = with_header(&req, "content-type", "application/x-www-form-urlencoded; charset=utf-9".into());
    assert_eq!(check(&changed, b"", secret, "iam", now), Err(AuthError::SignatureMismatch));
    let late = now + time::Duration::minutes(6);
    assert!(matches!(check(&req, b"", secret, "iam", late), Err(AuthError::Expired { .. })));
}
