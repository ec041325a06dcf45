//! The one place core errors become ACM wire errors.

use carapace_acm::AcmError;
use carapace_model::acm::{ErrorCode, OperationName};
use carapace_model::operations::NotImplemented;
use carapace_proto::WireError;

/// An operation's failure: a core error, or the generated trait's default.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the core.
    #[error(transparent)]
    Core(#[from] AcmError),
    /// An operation of the trait without a method here.
    #[error(transparent)]
    NotImplemented(#[from] NotImplemented),
}

/// Handler result.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The wire error. Internal failures are logged with the request id and answered with
    /// a generic fault; their details never reach the client.
    pub(crate) fn into_wire(self, request_id: &str, operation: OperationName) -> WireError {
        let e = match self {
            Self::NotImplemented(n) => return n.into(),
            Self::Core(e) => e,
        };
        let message = e.to_string();
        let code = match e {
            AcmError::NotFound(_) => ErrorCode::ResourceNotFoundException,
            AcmError::InvalidArn(_) => ErrorCode::InvalidArnException,
            AcmError::RequestInProgress(_) => ErrorCode::RequestInProgressException,
            AcmError::InvalidState(_) => ErrorCode::InvalidStateException,
            AcmError::InvalidDomainValidationOptions(_) => ErrorCode::InvalidDomainValidationOptionsException,
            AcmError::InvalidParameter(_) => ErrorCode::InvalidParameterException,
            AcmError::InvalidArgs(_) => ErrorCode::InvalidArgsException,
            AcmError::LimitExceeded(_) => ErrorCode::LimitExceededException,
            AcmError::InvalidTag(_) => ErrorCode::InvalidTagException,
            // TagResource has no TooManyTagsException in the model; it uses the quota error.
            AcmError::TooManyTags(_) if operation == OperationName::TagResource => {
                ErrorCode::ServiceQuotaExceededException
            }
            AcmError::TooManyTags(_) => ErrorCode::TooManyTagsException,
            AcmError::ResourceInUse(_) => ErrorCode::ResourceInUseException,
            AcmError::Validation(_) => ErrorCode::ValidationException,
            AcmError::Conflict(_) => ErrorCode::ConflictException,
            AcmError::Store(_) | AcmError::Internal(_) | AcmError::Fault { .. } => {
                tracing::error!(request_id, operation = operation.as_str(), error = %e.chain(), "ACM operation failed");
                return WireError::internal();
            }
        };
        WireError::modelled(code, message)
    }
}
