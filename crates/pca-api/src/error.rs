//! The one place AWS Private CA's errors become wire errors.

use carapace_model::acm_pca::{ErrorCode, OperationName};
use carapace_model::operations::NotImplemented;
use carapace_pca::PcaError;
use carapace_proto::WireError;

/// An operation's failure: the domain's, or the generated trait's default.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the rules.
    #[error(transparent)]
    Pca(#[from] PcaError),
    /// An operation of the trait without a method here.
    #[error(transparent)]
    NotImplemented(#[from] NotImplemented),
}

/// Operation result.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The wire error. Internal failures are logged with the request id and answered with a
    /// generic fault; their details never reach the client.
    pub(crate) fn into_wire(self, request_id: &str, operation: OperationName) -> WireError {
        let e = match self {
            Self::NotImplemented(n) => return n.into(),
            Self::Pca(e) => e,
        };
        let code = match &e {
            PcaError::NotFound(_) => ErrorCode::ResourceNotFoundException,
            PcaError::InvalidArn(_) => ErrorCode::InvalidArnException,
            PcaError::InvalidArgs(_) => ErrorCode::InvalidArgsException,
            PcaError::InvalidState(_) => ErrorCode::InvalidStateException,
            PcaError::InvalidRequest(_) => ErrorCode::InvalidRequestException,
            PcaError::InvalidTag(_) => ErrorCode::InvalidTagException,
            PcaError::TooManyTags(_) => ErrorCode::TooManyTagsException,
            PcaError::LimitExceeded(_) => ErrorCode::LimitExceededException,
            PcaError::MalformedCsr(_) => ErrorCode::MalformedCSRException,
            PcaError::MalformedCertificate(_) => ErrorCode::MalformedCertificateException,
            PcaError::CertificateMismatch(_) => ErrorCode::CertificateMismatchException,
            PcaError::RequestInProgress(_) => ErrorCode::RequestInProgressException,
            PcaError::RequestFailed(_) => ErrorCode::RequestFailedException,
            PcaError::RequestAlreadyProcessed(_) => ErrorCode::RequestAlreadyProcessedException,
            PcaError::ConcurrentModification(_) => ErrorCode::ConcurrentModificationException,
            PcaError::PermissionAlreadyExists(_) => ErrorCode::PermissionAlreadyExistsException,
            PcaError::InvalidPolicy(_) => ErrorCode::InvalidPolicyException,
            PcaError::AccessDenied(_) => return WireError::access_denied(e.to_string()),
            PcaError::InvalidNextToken => ErrorCode::InvalidNextTokenException,
            PcaError::Store(_) | PcaError::Fault { .. } => {
                let chain = carapace_kernel::error::chain(&e);
                tracing::error!(request_id, operation = operation.as_str(), error = %chain, "AWS Private CA operation failed");
                return WireError::internal();
            }
        };
        WireError::modelled(code, e.to_string())
    }
}
