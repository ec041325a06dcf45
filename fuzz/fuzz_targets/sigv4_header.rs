//! SigV4 with the `Authorization` header: parse, then verify (the canonical request is built
//! from every signed header, path and body), as the dispatcher does for any request that
//! names a service. Neither may panic, whatever the bytes.
//!
//! Input: NUL-separated fields — `Authorization`, `X-Amz-Date`, `Date`,
//! `x-amz-content-sha256`, extra header `name:value`, path and query, body.
#![no_main]

use carapace_proto::sigv4;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|b| *b == 0);
    let mut next = || fields.next().unwrap_or_default();
    let (authorization, amz_date, date, content_sha, extra, target, body) =
        (next(), next(), next(), next(), next(), next(), next());
    let uri = http::Uri::try_from(target).unwrap_or_else(|_| http::Uri::from_static("/"));
    let Ok(request) = http::Request::builder().method("POST").uri(uri).body(()) else { return };
    let (mut parts, ()) = request.into_parts();
    parts.headers.insert("host", http::HeaderValue::from_static("acm.us-east-1.amazonaws.com"));
    for (name, value) in [
        ("authorization", authorization),
        ("x-amz-date", amz_date),
        ("date", date),
        ("x-amz-content-sha256", content_sha),
    ] {
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            if !value.is_empty() {
                parts.headers.insert(name, value);
            }
        }
    }
    if let Some(colon) = extra.iter().position(|b| *b == b':') {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(&extra[..colon]), http::HeaderValue::from_bytes(&extra[colon + 1..]))
        {
            parts.headers.append(name, value);
        }
    }
    check(&parts, body);
});

/// Parses and, when that succeeds, verifies at the time of the AWS documentation's examples
/// (so that their dates pass the clock check and the canonical request is reached).
fn check(parts: &http::request::Parts, body: &[u8]) {
    let info = match sigv4::parse(parts) {
        Ok(info) => info,
        Err(e) => {
            let _ = (e.code(), e.status(), e.message());
            return;
        }
    };
    let now = time::macros::datetime!(2015-08-30 12:36:00 UTC);
    let secret = sigv4::SecretKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned());
    if let Err(e) = sigv4::verify(&info, parts, &sigv4::sha256_hex(body), &secret, "acm", now) {
        let _ = e.message();
    }
}
