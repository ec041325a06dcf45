//! The one place core errors become Lightsail wire errors: `__type` from the variant, and
//! Lightsail's `code` (sub-code) and `tip` members beside the message (`docs` is added to
//! every Lightsail error by [`crate::Lightsail`]'s `finish_error`).

use carapace_lightsail::LightsailError;
use carapace_model::lightsail::ErrorCode;
use carapace_model::operations::NotImplemented;
use carapace_proto::WireError;

/// An operation's failure: a core error, or the generated trait's default.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the core.
    #[error(transparent)]
    Core(#[from] LightsailError),
    /// An operation of the trait without a method here.
    #[error(transparent)]
    NotImplemented(#[from] NotImplemented),
}

/// Handler result.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The wire error. Internal failures are logged with the request id and answered with
    /// Lightsail's fault, `ServiceException` (HTTP 500); their details never reach the client.
    pub(crate) fn into_wire(self, request_id: &str, operation: &str) -> WireError {
        let e = match self {
            Self::NotImplemented(n) => return n.into(),
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
