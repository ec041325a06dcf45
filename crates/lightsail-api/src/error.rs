//! The one place core errors become Lightsail wire errors: `__type` from the variant, and
//! Lightsail's `code` (sub-code) and `tip` members beside the message (`docs` is added to
//! every Lightsail error by [`crate::Lightsail`]'s `finish_error`).

use carapace_lightsail::LightsailError;
use carapace_model::lightsail::ErrorCode;
use carapace_proto::{Output, WireError};

/// A handler failure: a core error, or a wire error raised while decoding.
#[derive(Debug)]
pub(crate) enum Error {
    /// From the core.
    Core(LightsailError),
    /// Already a wire error.
    Wire(WireError),
}

impl From<LightsailError> for Error {
    fn from(e: LightsailError) -> Self {
        Self::Core(e)
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Self::Wire(e)
    }
}

/// Handler result.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The wire error. Internal failures are logged with the request id and answered with
    /// Lightsail's fault, `ServiceException` (HTTP 500); their details never reach the client.
    pub(crate) fn into_wire(self, request_id: &str, operation: &str) -> WireError {
        let e = match self {
            Self::Wire(w) => return w,
            Self::Core(e) => e,
        };
        let (exception, code, message, tip) = match e {
            LightsailError::NotFound { code, message, tip } => (ErrorCode::NotFoundException, code, message, tip),
            LightsailError::InvalidInput { code, message, tip } => {
                (ErrorCode::InvalidInputException, code, message, tip)
            }
            LightsailError::OperationFailure { code, message, tip } => {
                (ErrorCode::OperationFailureException, code, message, tip)
            }
            e @ (LightsailError::Store(_) | LightsailError::Internal(_) | LightsailError::Fault { .. }) => {
                let error = carapace_kernel::error::chain(&e);
                tracing::error!(request_id, operation, error, "Lightsail operation failed");
                return WireError::modelled(
                    ErrorCode::ServiceException,
                    "An internal error occurred. Try again later.",
                )
                .with_member("code", "InternalError".into())
                .with_member("tip", "Try again later.".into());
            }
        };
        WireError::modelled(exception, message).with_member("code", code.into()).with_member("tip", tip.into())
    }
}

/// Decodes a validated input document.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(input: serde_json::Value) -> Result<T> {
    Ok(carapace_proto::decode_input(input)?)
}

/// Wraps an output DTO.
pub(crate) fn encode<T: serde::Serialize + Send + Sync + 'static>(output: T) -> Result<Output> {
    Ok(Output::new(output))
}
