//! The two wire protocols: how a request names its operation, how bodies are decoded and
//! how outputs and errors are encoded.
//!
//! - awsJson1.1: `POST /` with `X-Amz-Target: <prefix>.<Operation>`.
//! - Smithy RPC v2 CBOR: `POST /service/<prefix>/operation/<Operation>` with
//!   `smithy-protocol: rpc-v2-cbor` (what current boto3 sends to Directory Service).
//!
//! Both decode to a `serde_json::Value` document so validation and handlers see one form;
//! CBOR-only types (tag-1 timestamps, byte strings) are mapped to their JSON encodings
//! (epoch-second numbers, base64 strings) and back on the way out, guided by the model.

use bytes::Bytes;
use carapace_model::schema::{Kind, Service, ShapeId};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::{Output, WireError};

/// The protocol a request arrived in; its answer uses the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// awsJson1.1.
    AwsJson11,
    /// Smithy RPC v2 CBOR.
    RpcV2Cbor,
}

impl Protocol {
    /// The `Content-Type` of answers in this protocol.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::AwsJson11 => "application/x-amz-json-1.1",
            Self::RpcV2Cbor => "application/cbor",
        }
    }
}

/// Where a request says it is going, before any service is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The protocol the request speaks.
    pub protocol: Protocol,
    /// The service's target prefix, e.g. `CertificateManager`.
    pub target_prefix: String,
    /// The operation name, e.g. `DescribeCertificate`.
    pub operation: String,
}

/// Why a request names no operation we can route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// Not an API request at all (e.g. `GET /favicon.ico`): a plain 404.
    NotApi,
    /// An API-shaped request naming something we cannot parse.
    Unknown(String),
}

/// Reads the protocol, service and operation from the method, path and headers.
pub fn route(method: &http::Method, path: &str, headers: &HeaderMap) -> Result<Route, RouteError> {
    if let Some(rest) = path.strip_prefix("/service/") {
        if method != http::Method::POST {
            return Err(RouteError::NotApi);
        }
        let (prefix, op) = rest.split_once("/operation/").ok_or(RouteError::NotApi)?;
        if prefix.is_empty() || op.is_empty() || op.contains('/') {
            return Err(RouteError::Unknown(rest.to_owned()));
        }
        return Ok(Route { protocol: Protocol::RpcV2Cbor, target_prefix: prefix.to_owned(), operation: op.to_owned() });
    }
    if path != "/" || method != http::Method::POST {
        return Err(RouteError::NotApi);
    }
    let target = headers.get("x-amz-target").ok_or(RouteError::NotApi)?;
    let target = target.to_str().map_err(|_| RouteError::Unknown(String::from("<non-ascii>")))?;
    let (prefix, op) = target.rsplit_once('.').ok_or_else(|| RouteError::Unknown(target.to_owned()))?;
    Ok(Route { protocol: Protocol::AwsJson11, target_prefix: prefix.to_owned(), operation: op.to_owned() })
}

/// Decodes a request body into a document. An empty body is an empty structure, as the
/// SDKs send for operations without input.
pub fn decode(protocol: Protocol, body: &[u8]) -> Result<serde_json::Value, WireError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    let value = match protocol {
        Protocol::AwsJson11 => serde_json::from_slice::<serde_json::Value>(body)
            .map_err(|e| WireError::serialization(format!("Could not parse request body as JSON: {e}")))?,
        Protocol::RpcV2Cbor => {
            let cbor: ciborium::Value = ciborium::de::from_reader(body).map_err(|e| {
                WireError::serialization(format!("Could not parse request body as CBOR: {}.", cbor_problem(&e)))
            })?;
            carapace_model::cbor::cbor_to_json(cbor)
                .map_err(|e| WireError::serialization(format!("Could not parse request body as CBOR: {e}.")))?
        }
    };
    if !value.is_object() {
        return Err(WireError::serialization(
            "Start of structure or map expected at the top level of the request body.",
        ));
    }
    Ok(value)
}

/// What is wrong with a CBOR body, in words for the client. ciborium's own `Display` is
/// its `Debug` text (`Semantic(None, "...")`), which is not for clients.
fn cbor_problem<T>(e: &ciborium::de::Error<T>) -> String {
    use ciborium::de::Error;
    match e {
        Error::Io(_) => String::from("the body ends inside a value"),
        Error::Syntax(offset) => format!("malformed item at byte {offset}"),
        Error::Semantic(Some(offset), _) => format!("unexpected item at byte {offset}"),
        Error::Semantic(None, _) => String::from("unexpected item"),
        Error::RecursionLimitExceeded => String::from("values nest too deeply"),
    }
}

/// Encodes an operation's output document.
pub fn encode_output(
    protocol: Protocol,
    service: &'static Service,
    shape: Option<ShapeId>,
    output: &Output,
) -> Result<Vec<u8>, WireError> {
    let unserializable = |e: serde_json::Error| {
        tracing::error!(error = %e, "output did not serialize");
        WireError::internal()
    };
    match protocol {
        Protocol::AwsJson11 => {
            let mut out = Vec::with_capacity(1024);
            serde_json::to_writer(&mut out, output).map_err(unserializable)?;
            Ok(out)
        }
        Protocol::RpcV2Cbor => {
            let value = match shape {
                Some(shape) => {
                    carapace_model::cbor::json_to_cbor(service, shape, &output.to_value().map_err(unserializable)?)
                }
                None => ciborium::Value::Map(Vec::new()),
            };
            let mut out = Vec::with_capacity(256);
            ciborium::ser::into_writer(&value, &mut out).map_err(|_| WireError::internal())?;
            Ok(out)
        }
    }
}

/// Builds the error document with the member casing the model gives the error shape:
/// ACM's `AccessDeniedException` has `Message`, most ACM errors `message`, Directory
/// Service's `Message` and `RequestId`. Errors the model does not know (authentication,
/// serialization) use `message`. Service-specific members (Lightsail's `code`, `docs`,
/// `tip`) come from the service, in [`WireError::extra`] (see
/// [`crate::ServiceHandler::finish_error`]).
pub fn error_document(service: Option<&'static Service>, err: &WireError, request_id: &str) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    doc.insert("__type".into(), err.code.as_ref().into());
    let members = service
        .and_then(|s| s.error_shape(&err.code))
        .and_then(|shape| match &shape.kind {
            Kind::Structure { members, .. } => Some(*members),
            _ => None,
        })
        .unwrap_or(&[]);
    let message_name = members.iter().find(|m| m.name.eq_ignore_ascii_case("message")).map_or("message", |m| m.name);
    doc.insert(message_name.into(), err.message.clone().into());
    if members.iter().any(|m| m.name == "RequestId") {
        doc.insert("RequestId".into(), request_id.into());
    }
    for (name, value) in &err.extra {
        doc.insert((*name).into(), value.clone());
    }
    serde_json::Value::Object(doc)
}

/// Renders an error response in the request's protocol.
pub fn error_response(
    protocol: Protocol,
    service: Option<&'static Service>,
    err: &WireError,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let doc = error_document(service, err, request_id);
    let body = match protocol {
        Protocol::AwsJson11 => serde_json::to_vec(&doc).unwrap_or_default(),
        Protocol::RpcV2Cbor => {
            let mut out = Vec::new();
            let value = json_to_cbor_generic(&doc);
            // Writing into a Vec cannot fail for a document we just built.
            let _ = ciborium::ser::into_writer(&value, &mut out);
            out
        }
    };
    let mut resp =
        response(protocol, StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST), body, request_id);
    if let Ok(v) = HeaderValue::from_str(&err.code) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

/// A response with the protocol's headers and the request id.
pub fn response(protocol: Protocol, status: StatusCode, body: Vec<u8>, request_id: &str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(protocol.content_type()));
    if protocol == Protocol::RpcV2Cbor {
        headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}

/// Error documents hold only strings and plain JSON, so no schema is needed.
fn json_to_cbor_generic(v: &serde_json::Value) -> ciborium::Value {
    use ciborium::Value as C;
    match v {
        serde_json::Value::Null => C::Null,
        serde_json::Value::Bool(b) => C::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => C::Integer(i.into()),
            (None, Some(f)) => C::Float(f),
            _ => C::Null,
        },
        serde_json::Value::String(s) => C::Text(s.clone()),
        serde_json::Value::Array(a) => C::Array(a.iter().map(json_to_cbor_generic).collect()),
        serde_json::Value::Object(o) => {
            C::Map(o.iter().map(|(k, v)| (C::Text(k.clone()), json_to_cbor_generic(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(target: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-amz-target", HeaderValue::from_str(target).unwrap());
        h
    }

    #[test]
    fn routes_json_targets() {
        let r = route(&http::Method::POST, "/", &headers("CertificateManager.DescribeCertificate")).unwrap();
        assert_eq!(r.protocol, Protocol::AwsJson11);
        assert_eq!(r.target_prefix, "CertificateManager");
        assert_eq!(r.operation, "DescribeCertificate");
        assert_eq!(route(&http::Method::POST, "/", &headers("Nope")), Err(RouteError::Unknown("Nope".into())));
        assert_eq!(route(&http::Method::GET, "/", &headers("A.B")), Err(RouteError::NotApi));
    }

    #[test]
    fn routes_cbor_paths() {
        let r = route(
            &http::Method::POST,
            "/service/DirectoryService_20150416/operation/DescribeDirectories",
            &HeaderMap::new(),
        )
        .unwrap();
        assert_eq!(r.protocol, Protocol::RpcV2Cbor);
        assert_eq!(r.target_prefix, "DirectoryService_20150416");
        assert_eq!(r.operation, "DescribeDirectories");
        assert_eq!(route(&http::Method::POST, "/service/x", &HeaderMap::new()), Err(RouteError::NotApi));
    }

    #[test]
    fn decodes_empty_and_rejects_garbage() {
        assert_eq!(decode(Protocol::AwsJson11, b"").unwrap(), serde_json::json!({}));
        assert_eq!(decode(Protocol::AwsJson11, b"{").unwrap_err().code, "SerializationException");
        assert_eq!(decode(Protocol::AwsJson11, b"[1]").unwrap_err().code, "SerializationException");
        assert_eq!(decode(Protocol::RpcV2Cbor, &[0xff, 0x00]).unwrap_err().code, "SerializationException");
    }

    /// CBOR errors are worded for the client, never ciborium's Debug text.
    #[test]
    fn cbor_errors_are_worded_for_clients() {
        let message = |body: &[u8]| decode(Protocol::RpcV2Cbor, body).unwrap_err().message;
        assert_eq!(message(&[0xff, 0x00]), "Could not parse request body as CBOR: unexpected item.");
        assert_eq!(message(&[0x1c]), "Could not parse request body as CBOR: malformed item at byte 0.");
        // A map announcing one entry, then nothing.
        assert_eq!(message(&[0xa1]), "Could not parse request body as CBOR: the body ends inside a value.");
        // Map key 1 (an integer).
        assert_eq!(
            message(&[0xa1, 0x01, 0x01]),
            "Could not parse request body as CBOR: map keys must be text strings."
        );
        let deep = [vec![0x81u8; 10_000], vec![0x01]].concat();
        assert_eq!(message(&deep), "Could not parse request body as CBOR: values nest too deeply.");
        for body in [&[0xff, 0x00][..], &[0xa1], &[0xa1, 0x01, 0x01], &deep] {
            let m = message(body);
            assert!(!m.contains("Semantic") && !m.contains("Syntax") && !m.contains('"'), "{m}");
        }
    }

    #[test]
    fn error_members_follow_the_model() {
        let acm = &carapace_model::acm::SERVICE;
        let denied = error_document(Some(acm), &WireError::client("AccessDeniedException", "no"), "r1");
        assert_eq!(denied, serde_json::json!({"__type": "AccessDeniedException", "Message": "no"}));
        let missing = error_document(Some(acm), &WireError::client("ResourceNotFoundException", "gone"), "r1");
        assert_eq!(missing, serde_json::json!({"__type": "ResourceNotFoundException", "message": "gone"}));
        let ds = &carapace_model::ds::SERVICE;
        let doc = error_document(Some(ds), &WireError::client("EntityDoesNotExistException", "x"), "r2");
        assert_eq!(
            doc,
            serde_json::json!({"__type": "EntityDoesNotExistException", "Message": "x", "RequestId": "r2"})
        );
        let ls = &carapace_model::lightsail::SERVICE;
        let err = WireError::client("NotFoundException", "x").with_member("code", "DoesNotExist".into());
        let doc = error_document(Some(ls), &err, "r3");
        assert_eq!(doc, serde_json::json!({"__type": "NotFoundException", "message": "x", "code": "DoesNotExist"}));
    }
}
