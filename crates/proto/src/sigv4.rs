//! Server-side AWS Signature Version 4 verification.
//!
//! Two steps, so the dispatcher can look the key up between them:
//!
//! 1. [`parse`] reads the `Authorization` header (or the `X-Amz-*` query parameters of a
//!    presigned URL) into a [`SignatureInfo`], refusing malformed requests with the
//!    messages AWS sends.
//! 2. [`verify`] rebuilds the canonical request from what arrived on the wire, signs it
//!    with the caller's secret and compares in constant time; it also checks the clock
//!    skew (or the presigned expiry), the credential scope's service and date.
//!
//! The canonical request follows
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html> as the
//! SDKs implement it for every service except S3: the path is normalized (dot segments and
//! empty segments removed) and then percent-encoded *again* as it was received, so `%3D` on
//! the wire is `%253D` in the canonical URI. That is what botocore (`quote(path,
//! safe='/~')`) and aws-sigv4 (`PercentEncodingMode::Double`) do.
//!
//! What this module does not do: SigV4a (ECDSA), S3's chunked `STREAMING-*` payloads, and
//! SigV2. Those requests are refused.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aws_lc_rs::{digest, hmac};
use http::request::Parts;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode};
use subtle::ConstantTimeEq;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};
use zeroize::Zeroizing;

/// The only algorithm accepted.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The credential scope terminator.
const TERMINATOR: &str = "aws4_request";
/// Payload line a signer uses when it chose not to sign the body.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// AWS refuses presigned URLs valid for longer than a week.
const MAX_PRESIGNED_EXPIRES: u64 = 604_800;
/// The clock skew AWS tolerates between a header-signed request and its own clock.
pub const DEFAULT_MAX_SKEW: std::time::Duration = std::time::Duration::from_secs(300);

/// RFC 3986 unreserved characters stay as they are; everything else is `%XX` (upper case),
/// as the SigV4 spec requires for query keys and values.
const QUERY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// The same set for the canonical URI, which keeps its `/` separators.
const PATH_ENCODE: &AsciiSet = &QUERY_ENCODE.remove(b'/');

/// Parsed, not yet verified, signature information from a request (the `Authorization`
/// header or a presigned URL's query).
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureInfo {
    /// The access key id from the credential scope; the dispatcher looks the secret up by it.
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub date: String,
    /// The credential scope's region; resources live per region.
    pub region: String,
    /// The credential scope's service signing name (`acm`, `ds`, `lightsail`).
    pub service: String,
    /// The signed header names, lower case, in the order the signer listed them.
    pub signed_headers: Vec<String>,
    /// The signature the client sent, hex.
    pub signature: String,
    /// When the request was signed: `X-Amz-Date` (header or query) or the `Date` header.
    pub timestamp: OffsetDateTime,
    /// True for a presigned URL (`X-Amz-Algorithm` in the query).
    pub presigned: bool,
    /// `X-Amz-Expires` of a presigned URL, in seconds.
    pub expires_secs: Option<u64>,
    /// The request time as it enters the string to sign, `YYYYMMDDTHHMMSSZ`: the raw
    /// `X-Amz-Date`, or the `Date` header reformatted.
    pub amz_date_raw: String,
}

/// A secret access key. Zeroized on drop and never printed.
///
/// It remembers the last signing key derived from it: the derivation is four HMACs and a
/// key schedule, and a client signs every request of a day with the same date, region
/// and service. Clones share that memory.
#[derive(Clone)]
pub struct SecretKey(Arc<SecretInner>);

struct SecretInner {
    secret: Zeroizing<String>,
    /// The credential scope (`date/region/service`) and signing key derived last.
    derived: Mutex<Option<(String, Arc<hmac::Key>)>>,
}

impl SecretKey {
    /// Wraps a secret access key.
    pub fn new(secret: String) -> Self {
        Self(Arc::new(SecretInner { secret: Zeroizing::new(secret), derived: Mutex::new(None) }))
    }

    /// The signing key for a credential scope, derived once per scope.
    fn signing_key(&self, date: &str, region: &str, service: &str) -> Arc<hmac::Key> {
        let matches = |scope: &str| {
            let mut parts = scope.split('/');
            parts.next() == Some(date) && parts.next() == Some(region) && parts.next() == Some(service)
        };
        let mut derived = self.0.derived.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((scope, key)) = derived.as_ref()
            && matches(scope)
        {
            return key.clone();
        }
        let key = Arc::new(hmac::Key::new(hmac::HMAC_SHA256, &derive_signing_key(self, date, region, service)));
        *derived = Some((format!("{date}/{region}/{service}"), key.clone()));
        key
    }
}

impl From<String> for SecretKey {
    fn from(secret: String) -> Self {
        Self::new(secret)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Why a request was not authenticated. Each variant knows its AWS error code, HTTP status
/// and message, so every auth failure renders the same way for every service.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum AuthError {
    /// Neither an `Authorization` header nor a presigned query.
    #[error("Missing Authentication Token")]
    MissingToken,
    /// The signature information is malformed or incomplete; the message is AWS's text.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not known (returned by the dispatcher after its lookup).
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature does not match the request.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,
    /// The request was signed too long ago, or its presigned URL has expired.
    #[error("Signature expired: {request_time} is now earlier than {earliest} ({now} - {window}.)")]
    Expired {
        /// The request's time, `YYYYMMDDTHHMMSSZ`.
        request_time: String,
        /// The earliest time still accepted.
        earliest: String,
        /// The server's time.
        now: String,
        /// The allowance, e.g. `5 min`.
        window: String,
    },
    /// The request is dated too far in the future.
    #[error("Signature not yet current: {request_time} is still later than {latest} ({now} + {window}.)")]
    NotYetCurrent {
        /// The request's time, `YYYYMMDDTHHMMSSZ`.
        request_time: String,
        /// The latest time still accepted.
        latest: String,
        /// The server's time.
        now: String,
        /// The allowance, e.g. `5 min`.
        window: String,
    },
    /// The credential scope names another service.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService {
        /// The signing name of the service that received the request.
        expected: String,
    },
    /// The credential scope names a region the service is not in (`not-a-region`,
    /// `us-east-1:999999999999`): the message AWS's JSON services send, e.g. in
    /// aws/aws-sdk-js-v3#5576 (`InvalidSignatureException`, HTTP 403) and
    /// cognitect-labs/aws-api#27 ("Credential should be scoped to a valid region, not
    /// 'ap-southeast-2'. "). The region is echoed cut like a validation message's value.
    #[error("Credential should be scoped to a valid region, not '{}'. ", carapace_model::validate::echo(region))]
    WrongRegion {
        /// The region the request named.
        region: String,
    },
    /// The request carries `x-amz-*` headers the signature does not cover. SigV4 requires
    /// every `x-amz-*` header to be signed ("Signing elements of an AWS API request", IAM
    /// User Guide; S3 answers `There were headers present in the request which were not
    /// signed`): otherwise a presigned URL or a captured request could be replayed with
    /// another `X-Amz-Target`, that is as another operation.
    #[error("There were headers present in the request which were not signed: {0}.")]
    UnsignedHeaders(String),
    /// The credential scope's date is not the day of the request time.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '{scope_date}' != '{request_date}', from '{amz_date}'."
    )]
    WrongDate {
        /// The date in the credential scope.
        scope_date: String,
        /// The date part of the request time.
        request_date: String,
        /// The request time as sent.
        amz_date: String,
    },
}

impl AuthError {
    /// The AWS error code, sent as `__type`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "MissingAuthenticationTokenException",
            Self::Incomplete(_) => "IncompleteSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
            Self::SignatureMismatch
            | Self::Expired { .. }
            | Self::NotYetCurrent { .. }
            | Self::WrongService { .. }
            | Self::WrongRegion { .. }
            | Self::UnsignedHeaders(_)
            | Self::WrongDate { .. } => "InvalidSignatureException",
        }
    }

    /// The HTTP status: 400 for a malformed signature, 403 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            Self::Incomplete(_) => 400,
            _ => 403,
        }
    }

    /// The message, as AWS words it.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Lower-case hex SHA-256 of `data`: the payload hash [`verify`] expects.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut out = [0u8; 64];
    // A SHA-256 digest is 32 bytes: the 64-byte buffer always fits, and hex is ASCII.
    let _ = hex::encode_to_slice(digest::digest(&digest::SHA256, data), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads the signature information of a request without checking it.
///
/// A request carries it either in the `Authorization` header or, for a presigned URL, in
/// the `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
/// `X-Amz-SignedHeaders` and `X-Amz-Signature` query parameters.
pub fn parse(parts: &Parts) -> Result<SignatureInfo, AuthError> {
    let mut authorization = parts.headers.get_all(http::header::AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(AuthError::Incomplete("Only one 'Authorization' header may be sent.".into()));
    }
    let query = decoded_query(parts.uri.query().unwrap_or(""));
    let presigned = query.iter().any(|(k, _)| k == "X-Amz-Algorithm");
    match (header, presigned) {
        (None, false) => Err(AuthError::MissingToken),
        (Some(_), true) => Err(AuthError::Incomplete(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the \
             Authorization header should be specified."
                .into(),
        )),
        (Some(value), false) => parse_header(parts, value),
        (None, true) => parse_query(&query),
    }
}

/// Parses `AWS4-HMAC-SHA256 Credential=.../aws4_request, SignedHeaders=a;b, Signature=hex`.
fn parse_header(parts: &Parts, value: &http::HeaderValue) -> Result<SignatureInfo, AuthError> {
    let raw = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let trimmed = raw.trim();
    let (algorithm, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));

    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for pair in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, val)) = pair.split_once('=') else {
            return Err(AuthError::Incomplete(format!(
                "'{pair}' not a valid key=value pair (missing equal-sign) in Authorization header: '{raw}'."
            )));
        };
        match key.trim() {
            "Credential" => credential = Some(val.trim()),
            "SignedHeaders" => signed_headers = Some(val.trim()),
            "Signature" => signature = Some(val.trim()),
            // AWS ignores components it does not know; so do we.
            _ => {}
        }
    }
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!("Unsupported AWS 'algorithm': '{algorithm}'.")));
    }

    let date = request_date(parts)?;
    let mut missing = String::new();
    if credential.is_none() {
        missing.push_str("Authorization header requires 'Credential' parameter. ");
    }
    if signature.is_none() {
        missing.push_str("Authorization header requires 'Signature' parameter. ");
    }
    if signed_headers.is_none() {
        missing.push_str("Authorization header requires 'SignedHeaders' parameter. ");
    }
    if date.is_none() {
        missing.push_str("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ");
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some((timestamp, amz_date_raw))) =
        (credential, signed_headers, signature, date)
    else {
        return Err(AuthError::Incomplete(format!("{missing}Authorization={raw}")));
    };
    build_info(credential, signed_headers, signature, timestamp, amz_date_raw, None)
}

/// Parses the `X-Amz-*` parameters of a presigned URL.
fn parse_query(query: &[(String, String)]) -> Result<SignatureInfo, AuthError> {
    const REQUIRED: [&str; 6] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
        "X-Amz-Expires",
    ];
    let mut values: [Option<&str>; 6] = [None; 6];
    for (key, value) in query {
        if let Some(i) = REQUIRED.iter().position(|r| r == key) {
            // Two values for one auth parameter would make "which one was signed" ambiguous.
            if values[i].replace(value).is_some() {
                return Err(AuthError::Incomplete(format!(
                    "AWS query-string parameter '{key}' may appear only once. Re-examine the query-string parameters."
                )));
            }
        }
    }
    let [Some(algorithm), Some(credential), Some(signature), Some(signed_headers), Some(date), Some(expires)] = values
    else {
        let mut message = String::new();
        for (name, value) in REQUIRED.iter().zip(values) {
            if value.is_none() {
                message.push_str(&format!("AWS query-string parameters must include '{name}'. "));
            }
        }
        message.push_str("Re-examine the query-string parameters.");
        return Err(AuthError::Incomplete(message));
    };
    if algorithm != ALGORITHM {
        return Err(AuthError::Incomplete(format!("Unsupported AWS 'algorithm': '{algorithm}'.")));
    }
    let expires: u64 = expires.parse().map_err(|_| AuthError::Incomplete("X-Amz-Expires should be a number".into()))?;
    if expires > MAX_PRESIGNED_EXPIRES {
        return Err(AuthError::Incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES}"
        )));
    }
    let timestamp = parse_amz_date(date)?;
    build_info(credential, signed_headers, signature, timestamp, date.to_owned(), Some(expires))
}

/// Checks the credential scope and signed header list shared by both forms.
fn build_info(
    credential: &str,
    signed_headers: &str,
    signature: &str,
    timestamp: OffsetDateTime,
    amz_date_raw: String,
    expires_secs: Option<u64>,
) -> Result<SignatureInfo, AuthError> {
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(AuthError::Incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != TERMINATOR {
        return Err(AuthError::Incomplete(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{terminator}'. "
        )));
    }
    if region.is_empty() {
        return Err(AuthError::Incomplete("Credential should be scoped to a valid region, not ''. ".into()));
    }
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_ascii_lowercase).collect();
    // Without the host signed, a signature could be replayed against another endpoint.
    if !signed_headers.iter().any(|h| h == "host" || h == ":authority") {
        return Err(AuthError::Incomplete(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    Ok(SignatureInfo {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers,
        signature: signature.to_owned(),
        timestamp,
        presigned: expires_secs.is_some(),
        expires_secs,
        amz_date_raw,
    })
}

/// The request time of a header-signed request: `X-Amz-Date`, else `Date`. `None` when
/// neither header is present.
fn request_date(parts: &Parts) -> Result<Option<(OffsetDateTime, String)>, AuthError> {
    if let Some(value) = parts.headers.get("x-amz-date") {
        let raw = String::from_utf8_lossy(value.as_bytes());
        return Ok(Some((parse_amz_date(&raw)?, raw.into_owned())));
    }
    if let Some(value) = parts.headers.get(http::header::DATE) {
        let raw = String::from_utf8_lossy(value.as_bytes());
        let timestamp = parse_http_date(&raw)
            .ok_or_else(|| AuthError::Incomplete(format!("Date must be in RFC 1123 format. Got '{raw}'.")))?;
        return Ok(Some((timestamp, iso_basic(timestamp))));
    }
    Ok(None)
}

/// Parses ISO-8601 basic format, `20150830T123600Z`.
///
/// By bytes, never by `str` index: the value is the client's, and slicing a `str` inside a
/// multi-byte character panics (`X-Amz-Date: 20150830T1236é0Z`).
fn parse_amz_date(raw: &str) -> Result<OffsetDateTime, AuthError> {
    let invalid = || {
        AuthError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            carapace_model::validate::echo(raw)
        ))
    };
    let b = raw.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(invalid());
    }
    let num = |range: std::ops::Range<usize>| -> Result<u32, AuthError> {
        let digits = &b[range];
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(invalid());
        }
        Ok(digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let month = u8::try_from(month).ok().and_then(|m| Month::try_from(m).ok()).ok_or_else(invalid)?;
    let date = Date::from_calendar_date(year as i32, month, day as u8).map_err(|_| invalid())?;
    let time = Time::from_hms(hour as u8, minute as u8, second as u8).map_err(|_| invalid())?;
    Ok(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Parses an RFC 1123 date, `Sun, 06 Nov 1994 08:49:37 GMT` (the only `Date` form SDKs send).
fn parse_http_date(raw: &str) -> Option<OffsetDateTime> {
    let fields: Vec<&str> = raw.split_whitespace().collect();
    let [_weekday, day, month, year, hms, "GMT"] = fields[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| *m == month)?;
    let month = Month::try_from(u8::try_from(month + 1).ok()?).ok()?;
    let date = Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    let mut hms = hms.split(':').map(|n| n.parse::<u8>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() {
        return None;
    }
    Some(PrimitiveDateTime::new(date, Time::from_hms(h, m, s).ok()?).assume_utc())
}

/// Formats a time as ISO-8601 basic, `20150830T123600Z`, in UTC.
fn iso_basic(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Verifies the signature over method, path, query, signed headers and the payload hash,
/// allowing AWS's five minutes of clock skew. See [`verify_with_skew`].
pub fn verify(
    info: &SignatureInfo,
    parts: &Parts,
    payload_sha256_hex: &str,
    secret: &SecretKey,
    expected_service: &str,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    verify_with_skew(info, parts, payload_sha256_hex, secret, expected_service, now, DEFAULT_MAX_SKEW)
}

/// Verifies the signature over method, path, query, signed headers and the payload hash.
///
/// `payload_sha256_hex` is [`sha256_hex`] of the body as received. `expected_service` is the
/// receiving service's signing name (`acm`, `ds`, `lightsail`). `now` is the server's time:
/// a header-signed request must be within `max_skew` of it either way; a presigned URL must
/// not be dated later than `now + max_skew` nor have expired.
pub fn verify_with_skew(
    info: &SignatureInfo,
    parts: &Parts,
    payload_sha256_hex: &str,
    secret: &SecretKey,
    expected_service: &str,
    now: OffsetDateTime,
    max_skew: std::time::Duration,
) -> Result<(), AuthError> {
    check_time(info, now, max_skew)?;
    if info.service != expected_service {
        return Err(AuthError::WrongService { expected: expected_service.to_owned() });
    }
    let request_date = info.amz_date_raw.get(..8).unwrap_or(&info.amz_date_raw);
    if info.date != request_date {
        return Err(AuthError::WrongDate {
            scope_date: info.date.clone(),
            request_date: request_date.to_owned(),
            amz_date: info.amz_date_raw.clone(),
        });
    }

    check_amz_headers_signed(info, parts)?;
    let payload = payload_line(parts, payload_sha256_hex)?;
    let key = secret.signing_key(&info.date, &info.region, &info.service);
    let scope = format!("{}/{}/{}/{TERMINATOR}", info.date, info.region, info.service);
    let creq = canonical_request(info, parts, payload);
    let string_to_sign = format!("{ALGORITHM}\n{}\n{scope}\n{}", info.amz_date_raw, sha256_hex(&creq));
    let mut expected = [0u8; 64];
    // An HMAC-SHA256 tag is 32 bytes: always fits.
    let _ = hex::encode_to_slice(hmac::sign(&key, string_to_sign.as_bytes()), &mut expected);
    if bool::from(expected[..].ct_eq(info.signature.as_bytes())) { Ok(()) } else { Err(AuthError::SignatureMismatch) }
}

/// Clock skew for signed headers, expiry for presigned URLs.
fn check_time(info: &SignatureInfo, now: OffsetDateTime, max_skew: std::time::Duration) -> Result<(), AuthError> {
    let skew = time::Duration::try_from(max_skew).unwrap_or(time::Duration::MAX);
    let request_time = info.timestamp;
    let latest = now.checked_add(skew).unwrap_or(now);
    if request_time > latest {
        return Err(AuthError::NotYetCurrent {
            request_time: info.amz_date_raw.clone(),
            latest: iso_basic(latest),
            now: iso_basic(now),
            window: window_text(max_skew.as_secs()),
        });
    }
    let (window, secs) = match info.expires_secs {
        Some(expires) => (time::Duration::seconds(i64::try_from(expires).unwrap_or(i64::MAX)), expires),
        None => (skew, max_skew.as_secs()),
    };
    let earliest = now.checked_sub(window).unwrap_or(now);
    if request_time < earliest {
        return Err(AuthError::Expired {
            request_time: info.amz_date_raw.clone(),
            earliest: iso_basic(earliest),
            now: iso_basic(now),
            window: window_text(secs),
        });
    }
    Ok(())
}

/// `5 min` for whole minutes (as AWS prints its skew), `90 sec` otherwise.
fn window_text(secs: u64) -> String {
    if secs.is_multiple_of(60) { format!("{} min", secs / 60) } else { format!("{secs} sec") }
}

/// Refuses a request with an `x-amz-*` header that is not in `SignedHeaders`, in either
/// form of authentication (a presigned URL's `X-Amz-*` query parameters are not headers).
fn check_amz_headers_signed(info: &SignatureInfo, parts: &Parts) -> Result<(), AuthError> {
    let unsigned: Vec<&str> = parts
        .headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|name| name.starts_with("x-amz-") && !info.signed_headers.iter().any(|signed| signed == name))
        .collect();
    if unsigned.is_empty() { Ok(()) } else { Err(AuthError::UnsignedHeaders(unsigned.join(", "))) }
}

/// The payload line the signer must have used: the hash of the body as received.
///
/// A signer may state the line in `x-amz-content-sha256`: a hash must then be the body's.
/// `UNSIGNED-PAYLOAD` (the signer chose not to sign the body) is S3's, for uploads and S3's
/// presigned URLs (botocore's `S3SigV4QueryAuth`); AWS's JSON and CBOR services sign the
/// body, presigned or not (botocore's `SigV4QueryAuth` and aws-sigv4 hash it), so here the
/// line is the body's hash whatever the header says, and a request signed over
/// `UNSIGNED-PAYLOAD` does not match: its body, and so its operation's input, could be
/// anything.
fn payload_line<'a>(parts: &'a Parts, payload: &'a str) -> Result<&'a str, AuthError> {
    if let Some(declared) = parts.headers.get("x-amz-content-sha256") {
        let declared = declared.to_str().unwrap_or("");
        if declared == UNSIGNED_PAYLOAD {
            return Ok(payload);
        }
        if declared.len() == 64 && declared.bytes().all(|b| b.is_ascii_hexdigit()) {
            return if declared.eq_ignore_ascii_case(payload) {
                Ok(declared)
            } else {
                Err(AuthError::SignatureMismatch)
            };
        }
        return Err(AuthError::Incomplete(format!(
            "Unsupported x-amz-content-sha256 value '{declared}': chunked (STREAMING-*) payloads are not supported."
        )));
    }
    Ok(payload)
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
fn derive_signing_key(secret: &SecretKey, date: &str, region: &str, service: &str) -> Zeroizing<Vec<u8>> {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.0.secret.len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.0.secret.as_bytes());
    let mut key = k_secret;
    for part in [date, region, service, TERMINATOR] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes());
        key = Zeroizing::new(tag.as_ref().to_vec());
    }
    key
}

/// The canonical request, as bytes (header values need not be UTF-8).
fn canonical_request(info: &SignatureInfo, parts: &Parts, payload: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(parts.uri.path()).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(parts.uri.query().unwrap_or(""), info.presigned).as_bytes());
    out.push(b'\n');
    for name in &info.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        canonical_header_value(parts, name, &mut out);
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(info.signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload.as_bytes());
    out
}

/// Normalizes the path as received (RFC 3986 §5.2.4 dot segments, plus empty segments, as
/// AWS requires) and percent-encodes it once more.
fn canonical_uri(path: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let normalized = if path.contains('.') || path.contains("//") || !path.starts_with('/') {
        let mut segments: Vec<&str> = Vec::new();
        for segment in path.split('/') {
            match segment {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                s => segments.push(s),
            }
        }
        let mut out = format!("/{}", segments.join("/"));
        let trailing = ["/", "/.", "/..", "/./", "/../"].iter().any(|s| path.ends_with(s));
        if trailing && !out.ends_with('/') {
            out.push('/');
        }
        out
    } else {
        path.to_owned()
    };
    percent_encoding::utf8_percent_encode(&normalized, PATH_ENCODE).to_string()
}

/// Decodes `a=1&b=%2F` into pairs, form-style (`+` is a space), as aws-sigv4 reads a query.
fn decoded_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

fn form_decode(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_decode(plus_as_space.as_bytes()).decode_utf8_lossy().into_owned()
}

/// Sorted `key=value` pairs, each RFC 3986-encoded; a presigned URL's own signature is left
/// out because it cannot sign itself.
fn canonical_query(query: &str, presigned: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (form_decode_bytes(k), form_decode_bytes(v));
            if presigned && k == b"X-Amz-Signature" {
                return None;
            }
            Some((
                percent_encoding::percent_encode(&k, QUERY_ENCODE).to_string(),
                percent_encoding::percent_encode(&v, QUERY_ENCODE).to_string(),
            ))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(query.len() + 16);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn form_decode_bytes(s: &str) -> Vec<u8> {
    let plus_as_space = s.replace('+', " ");
    percent_decode(plus_as_space.as_bytes()).collect()
}

/// Appends a header's canonical value: every value trimmed, runs of spaces collapsed, joined
/// with `,`. The host falls back to the URI authority (HTTP/2 has no `Host` header).
fn canonical_header_value(parts: &Parts, name: &str, out: &mut Vec<u8>) {
    let mut values = parts.headers.get_all(name).iter().peekable();
    if values.peek().is_none() {
        if name == "host" || name == ":authority" {
            if let Some(authority) = parts.uri.authority() {
                out.extend_from_slice(authority.as_str().as_bytes());
            } else if let Some(host) = parts.headers.get(http::header::HOST) {
                trim_all(host.as_bytes(), out);
            }
        }
        return;
    }
    for (i, value) in values.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        trim_all(value.as_bytes(), out);
    }
}

/// Trims leading and trailing spaces and collapses runs of spaces into one.
fn trim_all(value: &[u8], out: &mut Vec<u8>) {
    let mut previous_space = true;
    let start = out.len();
    for &b in value {
        if b == b' ' {
            if !previous_space {
                out.push(b' ');
            }
            previous_space = true;
        } else {
            out.push(b);
            previous_space = false;
        }
    }
    if out.len() > start && out.last() == Some(&b' ') {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn at(raw: &str) -> OffsetDateTime {
        parse_amz_date(raw).unwrap()
    }

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// The IAM user guide's example: GET https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08.
    fn iam_example(signature: &str) -> Parts {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
        );
        parts(
            "GET",
            "/?Action=ListUsers&Version=2010-05-08",
            &[
                ("host", "iam.amazonaws.com"),
                ("content-type", "application/x-www-form-urlencoded; charset=utf-8"),
                ("x-amz-date", "20150830T123600Z"),
                ("authorization", &auth),
            ],
        )
    }

    const IAM_SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    #[test]
    fn iam_documentation_example_verifies() {
        let p = iam_example(IAM_SIGNATURE);
        let info = parse(&p).unwrap();
        assert_eq!(info.access_key_id, "AKIDEXAMPLE");
        assert_eq!(info.signed_headers, ["content-type", "host", "x-amz-date"]);
        let creq = canonical_request(&info, &p, &sha256_hex(b""));
        assert_eq!(
            String::from_utf8(creq.clone()).unwrap(),
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
             content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\n\
             x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // The hashed canonical request printed in the IAM guide.
        assert_eq!(sha256_hex(&creq), "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
        let secret = SecretKey::new(SECRET.into());
        verify(&info, &p, &sha256_hex(b""), &secret, "iam", at("20150830T123600Z")).unwrap();
    }

    #[test]
    fn one_character_changes_fail() {
        let secret = SecretKey::new(SECRET.into());
        let now = at("20150830T123600Z");
        let empty = sha256_hex(b"");

        let mut bad_sig = IAM_SIGNATURE.to_owned();
        bad_sig.replace_range(0..1, "6");
        let p = iam_example(&bad_sig);
        let info = parse(&p).unwrap();
        assert_eq!(verify(&info, &p, &empty, &secret, "iam", now), Err(AuthError::SignatureMismatch));

        let p = iam_example(IAM_SIGNATURE);
        let info = parse(&p).unwrap();
        let mut bad_body = empty.clone();
        bad_body.replace_range(0..1, "f");
        assert_eq!(verify(&info, &p, &bad_body, &secret, "iam", now), Err(AuthError::SignatureMismatch));

        let mut p = iam_example(IAM_SIGNATURE);
        p.headers.insert("host", "iam.amazonaws.con".parse().unwrap());
        let info = parse(&p).unwrap();
        assert_eq!(verify(&info, &p, &empty, &secret, "iam", now), Err(AuthError::SignatureMismatch));

        let wrong = SecretKey::new(SECRET.replace('w', "W"));
        let p = iam_example(IAM_SIGNATURE);
        let info = parse(&p).unwrap();
        assert_eq!(verify(&info, &p, &empty, &wrong, "iam", now), Err(AuthError::SignatureMismatch));
    }

    #[test]
    fn signing_key_matches_the_documented_derivation() {
        // From the SigV4 docs' "deriving a signing key" example (20120215, us-east-1, iam).
        let key = derive_signing_key(&SecretKey::new(SECRET.into()), "20120215", "us-east-1", "iam");
        assert_eq!(hex::encode(&key[..]), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    }

    #[test]
    fn remembered_signing_key_follows_the_scope() {
        let secret = SecretKey::new(SECRET.into());
        let tag = |k: &hmac::Key| hex::encode(hmac::sign(k, b"string to sign"));
        let scopes = [
            ("20120215", "us-east-1", "iam"),
            ("20150830", "us-east-1", "iam"),
            ("20150830", "eu-west-1", "iam"),
            ("20150830", "eu-west-1", "acm"),
            ("20150830", "eu-west-1", "acm"),
            ("20120215", "us-east-1", "iam"),
        ];
        for (date, region, service) in scopes {
            let fresh = hmac::Key::new(hmac::HMAC_SHA256, &derive_signing_key(&secret, date, region, service));
            assert_eq!(tag(&secret.signing_key(date, region, service)), tag(&fresh), "{date}/{region}/{service}");
        }
    }

    #[test]
    fn canonical_uri_double_encodes_and_normalizes() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(
            canonical_uri("/service/DirectoryService_20150416/operation/DescribeDirectories"),
            "/service/DirectoryService_20150416/operation/DescribeDirectories"
        );
        assert_eq!(canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"), "/test/%40connections/JBDvjfGEIAMCERw%253D");
        assert_eq!(
            canonical_uri("/2015-03-31/functions/arn%3Aaws%3Alambda/invocations"),
            "/2015-03-31/functions/arn%253Aaws%253Alambda/invocations"
        );
        assert_eq!(canonical_uri("/example/.."), "/");
        assert_eq!(canonical_uri("/example1/example2/../.."), "/");
        assert_eq!(canonical_uri("/./"), "/");
        assert_eq!(canonical_uri("//"), "/");
        assert_eq!(canonical_uri("/./example"), "/example");
        assert_eq!(canonical_uri("//example//"), "/example/");
        assert_eq!(canonical_uri("/-._~AZaz09"), "/-._~AZaz09");
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        assert_eq!(canonical_query("", false), "");
        assert_eq!(canonical_query("Param2=value2&Param1=value1", false), "Param1=value1&Param2=value2");
        assert_eq!(
            canonical_query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1", false),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(canonical_query("b=2&a=2&a=1", false), "a=1&a=2&b=2");
        assert_eq!(canonical_query("flag&x=a%2fb", false), "flag=&x=a%2Fb");
        assert_eq!(canonical_query("a=b+c&d=%20", false), "a=b%20c&d=%20");
        assert_eq!(canonical_query("X-Amz-Signature=abc&a=1", true), "a=1");
        assert_eq!(canonical_query("X-Amz-Signature=abc&a=1", false), "X-Amz-Signature=abc&a=1");
    }

    #[test]
    fn header_values_are_trimmed_and_joined() {
        let mut p = parts("GET", "/", &[("host", "h"), ("my-header2", "  \"a   b   c\"  ")]);
        p.headers.append("my-header1", "value4".parse().unwrap());
        p.headers.append("my-header1", " value1 ".parse().unwrap());
        let mut out = Vec::new();
        canonical_header_value(&p, "my-header1", &mut out);
        assert_eq!(out, b"value4,value1");
        out.clear();
        canonical_header_value(&p, "my-header2", &mut out);
        assert_eq!(out, b"\"a b c\"");
        out.clear();
        canonical_header_value(&p, "absent", &mut out);
        assert_eq!(out, b"");
        // HTTP/2: no Host header, the authority stands in.
        let p = parts("GET", "https://example.com:8443/", &[]);
        out.clear();
        canonical_header_value(&p, "host", &mut out);
        assert_eq!(out, b"example.com:8443");
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(iso_basic(at("20150830T123600Z")), "20150830T123600Z");
        for bad in ["2015-08-30T12:36:00Z", "20150830T123600", "20151330T123600Z", "2015083xT123600Z", ""] {
            assert!(
                matches!(parse_amz_date(bad), Err(AuthError::Incomplete(m)) if m.contains("ISO-8601 'basic format'")),
                "{bad}"
            );
        }
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 GMT"), Some(at("20150830T123600Z")));
        assert_eq!(parse_http_date("Sun, 30 Aug 2015 12:36:00 PST"), None);
        assert_eq!(parse_http_date("30 Aug 2015"), None);
    }

    /// A multi-byte character in `X-Amz-Date` is answered with 400, not a panic (slicing a
    /// `str` inside a character would panic).
    #[test]
    fn multibyte_dates_are_refused_not_panics() {
        // `é` is two bytes: the value is 16 bytes long with `T` and `Z` in place, and the
        // hour's slice ends inside the `é`.
        let date = "20150830T1é000Z";
        assert_eq!(date.len(), 16);
        let expected = AuthError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ));
        let mut p = parts(
            "POST",
            "/",
            &[
                ("host", "h"),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/acm/aws4_request, SignedHeaders=host, Signature=00",
                ),
            ],
        );
        p.headers.insert("x-amz-date", http::HeaderValue::from_bytes(date.as_bytes()).unwrap());
        assert_eq!(parse(&p), Err(expected.clone()));
        let query = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20150830%2Fus-east-1%2Facm%2Faws4_request\
                     &X-Amz-Date=20150830T1%C3%A9000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
        assert_eq!(parse(&parts("GET", query, &[("host", "h")])), Err(expected));
        // Every byte position, every width of character, length kept at 16: an error,
        // never a panic.
        let base = b"20150830T123600Z";
        for c in ["é", "€", "😀"] {
            for at in 0..=base.len() - c.len() {
                let raw = [&base[..at], c.as_bytes(), &base[at + c.len()..]].concat();
                let raw = String::from_utf8(raw).unwrap();
                assert!(parse_amz_date(&raw).is_err(), "{raw}");
            }
        }
    }

    #[test]
    fn missing_authentication() {
        assert_eq!(parse(&parts("POST", "/", &[("host", "h")])), Err(AuthError::MissingToken));
        assert_eq!(parse(&parts("GET", "/?X-Amz-Credential=x", &[("host", "h")])), Err(AuthError::MissingToken));
    }

    #[test]
    fn incomplete_header_lists_every_missing_part() {
        let p = parts("POST", "/", &[("host", "h"), ("authorization", "AWS4-HMAC-SHA256 SignedHeaders=host")]);
        assert_eq!(
            parse(&p),
            Err(AuthError::Incomplete(
                "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' \
                 parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
                 Authorization=AWS4-HMAC-SHA256 SignedHeaders=host"
                    .into()
            ))
        );
        let p = parts("POST", "/", &[("authorization", "AWS4-HMAC-SHA256"), ("x-amz-date", "20150830T123600Z")]);
        assert_eq!(
            parse(&p).unwrap_err().message(),
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' \
             parameter. Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256"
        );
    }

    fn header_error(auth: &str) -> AuthError {
        let p = parts("POST", "/", &[("host", "h"), ("x-amz-date", "20150830T123600Z"), ("authorization", auth)]);
        parse(&p).unwrap_err()
    }

    #[test]
    fn malformed_headers() {
        assert_eq!(
            header_error("Bearer token"),
            AuthError::Incomplete(
                "'token' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer token'."
                    .into()
            )
        );
        assert_eq!(
            header_error("AWS4-HMAC-SHA512 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00"),
            AuthError::Incomplete("Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.".into())
        );
        assert_eq!(
            header_error("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1, SignedHeaders=host, Signature=00"),
            AuthError::Incomplete(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, \
                 got 'AKID/20150830/us-east-1'"
                    .into()
            )
        );
        assert_eq!(
            header_error(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/acm/aws5, SignedHeaders=host, Signature=0"
            ),
            AuthError::Incomplete(
                "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5'. ".into()
            )
        );
        assert_eq!(
            header_error(
                "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/acm/aws4_request, SignedHeaders=x-amz-date, Signature=0"
            ),
            AuthError::Incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into())
        );
        let p = parts(
            "POST",
            "/",
            &[
                ("host", "h"),
                ("x-amz-date", "2015-08-30"),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=0",
                ),
            ],
        );
        assert_eq!(
            parse(&p),
            Err(AuthError::Incomplete(
                "Date must be in ISO-8601 'basic format'. Got '2015-08-30'. See http://en.wikipedia.org/wiki/ISO_8601"
                    .into()
            ))
        );
    }

    #[test]
    fn date_header_stands_in_for_x_amz_date() {
        let p = parts(
            "POST",
            "/",
            &[
                ("host", "h"),
                ("date", "Sun, 30 Aug 2015 12:36:00 GMT"),
                (
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=date;host, Signature=0",
                ),
            ],
        );
        let info = parse(&p).unwrap();
        assert_eq!(info.amz_date_raw, "20150830T123600Z");
        assert_eq!(info.timestamp, at("20150830T123600Z"));
    }

    #[test]
    fn presigned_query_errors() {
        let p = parts("GET", "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20150830T123600Z", &[("host", "h")]);
        assert_eq!(
            parse(&p),
            Err(AuthError::Incomplete(
                "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must \
                 include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS \
                 query-string parameters must include 'X-Amz-Expires'. Re-examine the query-string parameters."
                    .into()
            ))
        );
        let base = "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20150830%2Fr%2Fs%2Faws4_request\
                    &X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
        let p = parts("GET", &format!("{base}&X-Amz-Expires=604801"), &[("host", "h")]);
        assert_eq!(
            parse(&p),
            Err(AuthError::Incomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800".into()))
        );
        let p = parts("GET", &format!("{base}&X-Amz-Expires=soon"), &[("host", "h")]);
        assert_eq!(parse(&p), Err(AuthError::Incomplete("X-Amz-Expires should be a number".into())));
        let p = parts("GET", &format!("{base}&X-Amz-Expires=60&X-Amz-Expires=90"), &[("host", "h")]);
        assert!(matches!(parse(&p), Err(AuthError::Incomplete(m)) if m.contains("only once")));
        let p =
            parts("GET", &format!("{base}&X-Amz-Expires=60"), &[("host", "h"), ("authorization", "AWS4-HMAC-SHA256")]);
        assert!(matches!(parse(&p), Err(AuthError::Incomplete(m)) if m.starts_with("Only one auth mechanism")));
        let info = parse(&parts("GET", &format!("{base}&X-Amz-Expires=60"), &[("host", "h")])).unwrap();
        assert!(info.presigned);
        assert_eq!(info.expires_secs, Some(60));
        assert_eq!((info.access_key_id.as_str(), info.service.as_str()), ("A", "s"));
    }

    fn info_at(amz_date: &str, expires: Option<u64>) -> SignatureInfo {
        SignatureInfo {
            access_key_id: "AKID".into(),
            date: amz_date[..8].into(),
            region: "us-east-1".into(),
            service: "acm".into(),
            signed_headers: vec!["host".into()],
            signature: "00".into(),
            timestamp: at(amz_date),
            presigned: expires.is_some(),
            expires_secs: expires,
            amz_date_raw: amz_date.into(),
        }
    }

    fn check(info: &SignatureInfo, now: &str) -> Result<(), AuthError> {
        let p = parts("POST", "/", &[("host", "h")]);
        match verify(info, &p, &sha256_hex(b""), &SecretKey::new("s".into()), "acm", at(now)) {
            Err(AuthError::SignatureMismatch) => Ok(()),
            other => other,
        }
    }

    #[test]
    fn clock_skew_and_expiry() {
        let info = info_at("20130524T000000Z", None);
        assert_eq!(check(&info, "20130524T000500Z"), Ok(()));
        assert_eq!(check(&info, "20130523T235500Z"), Ok(()));
        let expired = check(&info, "20130524T001000Z").unwrap_err();
        assert_eq!(
            expired.message(),
            "Signature expired: 20130524T000000Z is now earlier than 20130524T000500Z (20130524T001000Z - 5 min.)"
        );
        assert_eq!((expired.code(), expired.status()), ("InvalidSignatureException", 403));
        let future = check(&info, "20130523T235000Z").unwrap_err();
        assert_eq!(
            future.message(),
            "Signature not yet current: 20130524T000000Z is still later than 20130523T235500Z (20130523T235000Z + 5 min.)"
        );

        let presigned = info_at("20130524T000000Z", Some(3600));
        assert_eq!(check(&presigned, "20130524T010000Z"), Ok(()));
        assert_eq!(
            check(&presigned, "20130524T010001Z").unwrap_err().message(),
            "Signature expired: 20130524T000000Z is now earlier than 20130524T000001Z (20130524T010001Z - 60 min.)"
        );
        let short = info_at("20130524T000000Z", Some(90));
        assert_eq!(
            check(&short, "20130524T000200Z").unwrap_err().message(),
            "Signature expired: 20130524T000000Z is now earlier than 20130524T000030Z (20130524T000200Z - 90 sec.)"
        );
        assert!(matches!(check(&presigned, "20130523T235000Z"), Err(AuthError::NotYetCurrent { .. })));
    }

    #[test]
    fn scope_checks() {
        let info = info_at("20130524T000000Z", None);
        let p = parts("POST", "/", &[("host", "h")]);
        let secret = SecretKey::new("s".into());
        let err = verify(&info, &p, "", &secret, "ds", at("20130524T000000Z")).unwrap_err();
        assert_eq!(err, AuthError::WrongService { expected: "ds".into() });
        assert_eq!(err.message(), "Credential should be scoped to correct service: 'ds'. ");
        let mut info = info_at("20130524T000000Z", None);
        info.date = "20130523".into();
        let err = verify(&info, &p, "", &secret, "acm", at("20130524T000000Z")).unwrap_err();
        assert_eq!(
            err.message(),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '20130523' != '20130524', from '20130524T000000Z'."
        );
        assert_eq!((err.code(), err.status()), ("InvalidSignatureException", 403));
    }

    #[test]
    fn declared_content_hash_must_match_the_body() {
        let body = sha256_hex(b"{}");
        let p = parts("POST", "/", &[("host", "h"), ("x-amz-content-sha256", &sha256_hex(b"[]"))]);
        assert_eq!(payload_line(&p, &body), Err(AuthError::SignatureMismatch));
        let p = parts("POST", "/", &[("host", "h"), ("x-amz-content-sha256", &body)]);
        assert_eq!(payload_line(&p, &body), Ok(body.as_str()));
        // S3's UNSIGNED-PAYLOAD is not a JSON service's: the body's hash is the line.
        let p = parts("POST", "/", &[("host", "h"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]);
        assert_eq!(payload_line(&p, &body), Ok(body.as_str()));
        let p = parts("POST", "/", &[("host", "h"), ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")]);
        assert!(matches!(payload_line(&p, &body), Err(AuthError::Incomplete(_))));
        let p = parts("POST", "/", &[("host", "h")]);
        assert_eq!(payload_line(&p, &body), Ok(body.as_str()));
    }

    #[test]
    fn every_amz_header_must_be_signed() {
        let mut info = info_at("20130524T000000Z", Some(60));
        info.signed_headers = vec!["host".into()];
        let p = parts("POST", "/", &[("host", "h"), ("content-type", "application/x-amz-json-1.1")]);
        assert_eq!(check_amz_headers_signed(&info, &p), Ok(()));
        let p = parts("POST", "/", &[("host", "h"), ("x-amz-target", "CertificateManager.DeleteCertificate")]);
        let err = check_amz_headers_signed(&info, &p).unwrap_err();
        assert_eq!(
            (err.code(), err.status(), err.message().as_str()),
            (
                "InvalidSignatureException",
                403,
                "There were headers present in the request which were not signed: x-amz-target."
            )
        );
        info.signed_headers.push("x-amz-target".into());
        assert_eq!(check_amz_headers_signed(&info, &p), Ok(()));
    }

    #[test]
    fn odd_signed_header_names_do_not_panic() {
        let auth = "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/acm/aws4_request, \
                    SignedHeaders=host;bad header;:authority;x-amz-date;;caf\u{e9}, Signature=00";
        let p = parts("POST", "/", &[("host", "h"), ("x-amz-date", "20130524T000000Z"), ("authorization", auth)]);
        let info = parse(&p).unwrap();
        let secret = SecretKey::new("s".into());
        assert_eq!(verify(&info, &p, "", &secret, "acm", at("20130524T000000Z")), Err(AuthError::SignatureMismatch));
    }

    #[test]
    fn every_error_renders() {
        let cases: Vec<(AuthError, &str, u16, &str)> = vec![
            (AuthError::MissingToken, "MissingAuthenticationTokenException", 403, "Missing Authentication Token"),
            (AuthError::Incomplete("why".into()), "IncompleteSignatureException", 400, "why"),
            (
                AuthError::UnrecognizedClient,
                "UnrecognizedClientException",
                403,
                "The security token included in the request is invalid.",
            ),
            (
                AuthError::SignatureMismatch,
                "InvalidSignatureException",
                403,
                "The request signature we calculated does not match the signature you provided. Check your AWS \
                 Secret Access Key and signing method. Consult the service documentation for details.",
            ),
            (
                AuthError::Expired {
                    request_time: "20130524T000000Z".into(),
                    earliest: "20130524T000500Z".into(),
                    now: "20130524T001000Z".into(),
                    window: "5 min".into(),
                },
                "InvalidSignatureException",
                403,
                "Signature expired: 20130524T000000Z is now earlier than 20130524T000500Z (20130524T001000Z - 5 min.)",
            ),
            (
                AuthError::NotYetCurrent {
                    request_time: "20130524T001000Z".into(),
                    latest: "20130524T000500Z".into(),
                    now: "20130524T000000Z".into(),
                    window: "5 min".into(),
                },
                "InvalidSignatureException",
                403,
                "Signature not yet current: 20130524T001000Z is still later than 20130524T000500Z (20130524T000000Z + 5 min.)",
            ),
            (
                AuthError::WrongService { expected: "acm".into() },
                "InvalidSignatureException",
                403,
                "Credential should be scoped to correct service: 'acm'. ",
            ),
            (
                AuthError::WrongDate {
                    scope_date: "20130523".into(),
                    request_date: "20130524".into(),
                    amz_date: "20130524T000000Z".into(),
                },
                "InvalidSignatureException",
                403,
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
                 '20130523' != '20130524', from '20130524T000000Z'.",
            ),
        ];
        for (err, code, status, message) in cases {
            assert_eq!((err.code(), err.status(), err.message().as_str()), (code, status, message), "{err:?}");
        }
    }

    #[test]
    fn secret_key_is_redacted() {
        let key = SecretKey::new(SECRET.into());
        assert_eq!(format!("{key:?}"), "SecretKey(<redacted>)");
        assert!(!format!("{key:?}").contains("EXAMPLEKEY"));
    }
}
