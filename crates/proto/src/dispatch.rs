//! One request, start to finish: route, authenticate, read the body under a limit, verify
//! the signature, decode, validate against the model, call the service, encode.
//!
//! The order matters and follows what AWS front ends do: a request for an unknown service
//! or operation fails before its body is read; authentication is decided before the body
//! is parsed, so an unsigned request never learns whether its input was valid.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use carapace_model::schema::{Operation, Service};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;

use crate::codec::{self, Protocol, RouteError};
use crate::sigv4::{self, AuthError, SecretKey};
use crate::{Output, RequestContext, WireError};

/// A caller's signing secret and the account it belongs to.
#[derive(Clone)]
pub struct Credential {
    /// The 12-digit account id.
    pub account_id: String,
    /// The secret access key.
    pub secret: SecretKey,
}

/// Where the dispatcher finds secrets for access key ids.
#[async_trait::async_trait]
pub trait CredentialLookup: Send + Sync + 'static {
    /// The credential for `access_key_id`, or `None` when the key is unknown or revoked.
    async fn lookup(&self, access_key_id: &str) -> Result<Option<Credential>, WireError>;
}

/// A service's operations, behind the wire layer.
#[async_trait::async_trait]
pub trait ServiceHandler: Send + Sync + 'static {
    /// The model this handler serves.
    fn service(&self) -> &'static Service;

    /// Answers one operation. `input` has already been validated against the operation's
    /// input shape; the output must serialize to its output shape.
    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: serde_json::Value,
    ) -> Result<Output, WireError>;

    /// Adds the service's own members to any error answered for it — the wire layer's
    /// (validation, authentication) as well as the handler's. Lightsail puts its `docs`
    /// link (and `code`/`tip`) on every error this way. The default adds nothing.
    fn finish_error(&self, err: WireError) -> WireError {
        err
    }
}

/// Wire-level settings.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Emulator mode: any well-formed SigV4 request is accepted, and the account is the
    /// access key id when it is 12 digits, `000000000000` otherwise.
    pub dev: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Largest accepted difference between the request's time and ours.
    pub max_skew: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self { dev: false, max_body_bytes: 1 << 20, max_skew: Duration::from_secs(300) }
    }
}

/// What happened to a request, for logs and metrics.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The request id sent back as `x-amzn-RequestId`.
    pub request_id: String,
    /// Service short name, `-` when the request named none we serve.
    pub service: &'static str,
    /// Operation name as requested (bounded: only model operations are reported by name).
    pub operation: &'static str,
    /// The error code, if the request failed.
    pub error: Option<String>,
}

/// Routes requests to services.
pub struct Dispatcher {
    services: Vec<Arc<dyn ServiceHandler>>,
    credentials: Arc<dyn CredentialLookup>,
    config: DispatcherConfig,
}

impl Dispatcher {
    /// Builds a dispatcher over these services.
    pub fn new(
        services: Vec<Arc<dyn ServiceHandler>>,
        credentials: Arc<dyn CredentialLookup>,
        config: DispatcherConfig,
    ) -> Self {
        Self { services, credentials, config }
    }

    /// True when the request looks like an API call (so the caller can serve other paths,
    /// such as `/health`, itself).
    pub fn is_api_request(req: &http::request::Parts) -> bool {
        !matches!(codec::route(&req.method, req.uri.path(), &req.headers), Err(RouteError::NotApi))
    }

    /// Serves one API request.
    pub async fn handle<B>(&self, req: Request<B>, now: time::OffsetDateTime) -> (Response<Full<Bytes>>, Outcome)
    where
        B: Body + Send,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (parts, body) = req.into_parts();
        let mut outcome = Outcome { request_id: request_id.clone(), service: "-", operation: "-", error: None };
        let route = codec::route(&parts.method, parts.uri.path(), &parts.headers);
        let protocol = route.as_ref().map_or(Protocol::AwsJson11, |route| route.protocol);
        let result = self.serve(route, &parts, body, now, &request_id, &mut outcome).await;
        let handler = self.services.iter().find(|s| s.service().name == outcome.service);
        let resp = match result {
            Ok(resp) => resp,
            Err(err) => {
                outcome.error = Some(err.code.to_string());
                let err = match handler {
                    Some(h) => h.finish_error(err),
                    None => err,
                };
                codec::error_response(protocol, handler.map(|h| h.service()), &err, &request_id)
            }
        };
        (resp, outcome)
    }

    async fn serve<B>(
        &self,
        route: Result<codec::Route, RouteError>,
        parts: &http::request::Parts,
        body: B,
        now: time::OffsetDateTime,
        request_id: &str,
        outcome: &mut Outcome,
    ) -> Result<Response<Full<Bytes>>, WireError>
    where
        B: Body + Send,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let route = match route {
            Ok(route) => route,
            Err(RouteError::NotApi) => {
                return Err(WireError::with_status("UnknownOperationException", 404, "No such API route."));
            }
            Err(RouteError::Unknown(target)) => return Err(unknown_operation(&target)),
        };
        let handler = self
            .services
            .iter()
            .find(|s| s.service().target_prefix == route.target_prefix)
            .ok_or_else(|| unknown_operation(&format!("{}.{}", route.target_prefix, route.operation)))?;
        let service = handler.service();
        outcome.service = service.name;
        if route.protocol == Protocol::RpcV2Cbor && !service.rpc_v2_cbor {
            return Err(unknown_operation(&route.operation));
        }

        let info = sigv4::parse(parts).map_err(auth_error)?;
        let account_id = if self.config.dev {
            dev_account(&info.access_key_id)
        } else {
            let credential = self.credentials.lookup(&info.access_key_id).await?;
            let credential = credential.ok_or_else(|| auth_error(AuthError::UnrecognizedClient))?;
            // The skew and service checks happen inside verify, after the body hash is known.
            let body = read_body(parts, body, self.config.max_body_bytes).await?;
            let hash = sigv4::sha256_hex(&body);
            sigv4::verify_with_skew(
                &info,
                parts,
                &hash,
                &credential.secret,
                service.signing_name,
                now,
                self.config.max_skew,
            )
            .map_err(auth_error)?;
            let ctx = RequestContext {
                request_id: request_id.to_owned(),
                account_id: credential.account_id,
                region: info.region.clone(),
                access_key_id: info.access_key_id.clone(),
            };
            return self.call(handler.as_ref(), &route, ctx, &body, outcome).await;
        };
        let body = read_body(parts, body, self.config.max_body_bytes).await?;
        let ctx = RequestContext {
            request_id: request_id.to_owned(),
            account_id,
            region: info.region.clone(),
            access_key_id: info.access_key_id.clone(),
        };
        self.call(handler.as_ref(), &route, ctx, &body, outcome).await
    }

    async fn call(
        &self,
        handler: &dyn ServiceHandler,
        route: &codec::Route,
        ctx: RequestContext,
        body: &[u8],
        outcome: &mut Outcome,
    ) -> Result<Response<Full<Bytes>>, WireError> {
        let service = handler.service();
        let operation = service.operation(&route.operation).ok_or_else(|| unknown_operation(&route.operation))?;
        outcome.operation = operation.name;
        let input = codec::decode(route.protocol, body)?;
        if !operation.generated {
            return Err(WireError::not_implemented(service.name, operation.name));
        }
        if let Some(shape) = operation.input {
            carapace_model::validate::validate(service, shape, &input).map_err(|invalid| match invalid {
                carapace_model::validate::Invalid::Serialization(msg) => WireError::serialization(msg),
                constraints => WireError::validation(constraints.message()),
            })?;
        }
        let output = handler.call(&ctx, operation, input).await?;
        let bytes = codec::encode_output(route.protocol, service, operation.output, &output)?;
        Ok(codec::response(route.protocol, StatusCode::OK, bytes, &ctx.request_id))
    }
}

/// Reads the whole body, refusing one that announces or reaches more than `limit` bytes
/// without buffering past the limit.
async fn read_body<B>(parts: &http::request::Parts, body: B, limit: usize) -> Result<Bytes, WireError>
where
    B: Body + Send,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || {
        WireError::with_status(
            "RequestEntityTooLargeException",
            413,
            format!("Request body is larger than the limit of {limit} bytes."),
        )
    };
    let announced = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(WireError::serialization("The request body could not be read.")),
    }
}

fn auth_error(err: AuthError) -> WireError {
    WireError::with_status(err.code(), err.status(), err.message())
}

fn unknown_operation(target: &str) -> WireError {
    WireError::client("UnknownOperationException", format!("Unknown operation {target}"))
}

/// Emulator accounts: a 12-digit access key id *is* the account id, so tests can act as
/// several accounts without creating keys.
fn dev_account(access_key_id: &str) -> String {
    if access_key_id.len() == 12 && access_key_id.bytes().all(|b| b.is_ascii_digit()) {
        access_key_id.to_owned()
    } else {
        String::from("000000000000")
    }
}

/// Decodes a validated input document into a typed DTO.
pub fn decode_input<T: serde::de::DeserializeOwned>(input: serde_json::Value) -> Result<T, WireError> {
    serde_json::from_value(input).map_err(|e| WireError::serialization(e.to_string()))
}

/// Wraps a typed DTO as an operation's output.
pub fn encode_output<T: serde::Serialize + Send + Sync + 'static>(output: T) -> Result<Output, WireError> {
    Ok(Output::new(output))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_accounts() {
        assert_eq!(dev_account("123456789012"), "123456789012");
        assert_eq!(dev_account("AKIAEXAMPLE"), "000000000000");
        assert_eq!(dev_account("12345678901a"), "000000000000");
    }
}
