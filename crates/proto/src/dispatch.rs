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
    /// Regions accepted in credential scopes besides the service's own
    /// ([`carapace_model::regions::of_service`]): private or test regions.
    pub extra_regions: Vec<String>,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self { dev: false, max_body_bytes: 1 << 20, max_skew: Duration::from_secs(300), extra_regions: Vec::new() }
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
        // A panic is this request's InternalFailure, logged once here with its request id
        // (the hook installed by `carapace_net::panic::install_hook` keeps it out of stderr).
        let served = carapace_net::panic::catch(self.serve(route, &parts, body, now, &request_id, &mut outcome)).await;
        let result = served.unwrap_or_else(|panic| {
            tracing::error!(
                request_id = %request_id, service = outcome.service, operation = outcome.operation,
                panic = %panic, "request handling panicked"
            );
            Err(WireError::internal())
        });
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
        // Before any key lookup: the region set is public, and a made-up region must not
        // reach the per-(account, region) quotas, throttles and ARNs.
        if !carapace_model::regions::of_service(service.name).contains(&info.region.as_str())
            && !self.config.extra_regions.contains(&info.region)
        {
            return Err(auth_error(AuthError::WrongRegion { region: info.region }));
        }
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
        // The listener's body timeout (`http.body_timeout_ms`), in S3's words for the same
        // condition (S3 API reference, "Error responses": RequestTimeout, 400).
        Err(e) if carapace_net::BodyTimeout::is(e.as_ref()) => Err(WireError::client(
            "RequestTimeout",
            "Your socket connection to the server was not read from or written to within the timeout period. \
             Idle connections will be closed.",
        )),
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

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the real clock where no clock is injected
mod tests {
    use super::*;

    /// ACM's model over a handler that answers `{}`, or panics.
    struct Fake {
        panics: bool,
    }

    #[async_trait::async_trait]
    impl ServiceHandler for Fake {
        fn service(&self) -> &'static Service {
            &carapace_model::acm::SERVICE
        }

        async fn call(
            &self,
            _: &RequestContext,
            _: &'static Operation,
            _: serde_json::Value,
        ) -> Result<Output, WireError> {
            if self.panics {
                let date = String::from("2015083é");
                let _ = &date[..8];
            }
            Ok(Output::new(serde_json::json!({})))
        }
    }

    struct NoKeys;

    #[async_trait::async_trait]
    impl CredentialLookup for NoKeys {
        async fn lookup(&self, _: &str) -> Result<Option<Credential>, WireError> {
            Ok(None)
        }
    }

    fn dispatcher(panics: bool, extra_regions: &[&str]) -> Dispatcher {
        let config = DispatcherConfig {
            dev: true,
            extra_regions: extra_regions.iter().map(|r| (*r).to_owned()).collect(),
            ..DispatcherConfig::default()
        };
        Dispatcher::new(vec![Arc::new(Fake { panics })], Arc::new(NoKeys), config)
    }

    /// A well-formed (`--dev` accepts it unverified) ListCertificates call signed for `region`.
    async fn call(dispatcher: &Dispatcher, region: &str) -> (u16, serde_json::Value, Outcome) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=123456789012/20150830/{region}/acm/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00"
        );
        let req = Request::builder()
            .method("POST")
            .uri("/")
            .header("host", "h")
            .header("x-amz-target", "CertificateManager.ListCertificates")
            .header("x-amz-date", "20150830T123600Z")
            .header("authorization", auth)
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let (resp, outcome) = dispatcher.handle(req, time::OffsetDateTime::now_utc()).await;
        let status = resp.status().as_u16();
        assert_eq!(resp.headers()["x-amzn-requestid"].to_str().unwrap(), outcome.request_id);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap(), outcome)
    }

    /// Defence in depth: a panic while handling a request is that
    /// request's `500 InternalFailure` with its request id.
    #[tokio::test]
    async fn a_panic_is_an_internal_failure() {
        carapace_net::panic::install_hook();
        let (status, body, outcome) = call(&dispatcher(true, &[]), "us-east-1").await;
        assert_eq!(status, 500);
        assert_eq!(body["__type"], "InternalFailure");
        assert_eq!(outcome.error.as_deref(), Some("InternalFailure"));
        assert_eq!(call(&dispatcher(false, &[]), "us-east-1").await.0, 200);
    }

    /// The credential scope's region must be one the service is in.
    #[tokio::test]
    async fn regions_outside_the_table_are_refused_as_aws_refuses_them() {
        let d = dispatcher(false, &["local-1"]);
        for region in ["not-a-region", "us-east-1:999999999999", "cn-north-1"] {
            let (status, body, _) = call(&d, region).await;
            assert_eq!(status, 403, "{region}");
            assert_eq!(body["__type"], "InvalidSignatureException");
            assert_eq!(body["message"], format!("Credential should be scoped to a valid region, not '{region}'. "));
        }
        let long = "x".repeat(2_000);
        let (status, body, _) = call(&d, &long).await;
        assert_eq!(status, 403);
        let message = body["message"].as_str().unwrap();
        assert!(message.len() < 400 && message.contains("xxx...'"), "{message}");
        assert_eq!(call(&d, "eu-west-3").await.0, 200);
        assert_eq!(call(&d, "local-1").await.0, 200, "extra_regions");
    }

    #[test]
    fn dev_accounts() {
        assert_eq!(dev_account("123456789012"), "123456789012");
        assert_eq!(dev_account("AKIAEXAMPLE"), "000000000000");
        assert_eq!(dev_account("12345678901a"), "000000000000");
    }
}
