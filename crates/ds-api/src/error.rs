//! The one place core errors become Directory Service wire errors.

use carapace_ds::DsError;
use carapace_model::ds::{ErrorCode, OperationName};
use carapace_model::operations::NotImplemented;
use carapace_proto::{RequestContext, WireError};

/// An operation's failure: a core error, or the generated trait's default.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From the core.
    #[error(transparent)]
    Core(#[from] DsError),
    /// An operation of the trait without a method here.
    #[error(transparent)]
    NotImplemented(#[from] NotImplemented),
}

/// Handler result.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The wire error. Internal failures are logged with the request id and answered with
    /// a generic fault; their details never reach the client.
    pub(crate) fn into_wire(self, ctx: &RequestContext, operation: OperationName) -> WireError {
        let err = match self {
            Self::NotImplemented(n) => return n.into(),
            Self::Core(e) => e,
        };
        let code = match &err {
            DsError::DirectoryNotFound(_) => missing_directory(operation),
            DsError::CertificateNotFound(_) => ErrorCode::CertificateDoesNotExistException,
            DsError::DirectoryLimitExceeded(_) => ErrorCode::DirectoryLimitExceededException,
            DsError::InvalidParameter(_) => ErrorCode::InvalidParameterException,
            DsError::InvalidCertificate(_) => ErrorCode::InvalidCertificateException,
            DsError::CertificateAlreadyExists(_) => ErrorCode::CertificateAlreadyExistsException,
            DsError::CertificateLimitExceeded(_) => ErrorCode::CertificateLimitExceededException,
            DsError::Unsupported(_) => ErrorCode::UnsupportedOperationException,
            DsError::DirectoryUnavailable(_) => ErrorCode::DirectoryUnavailableException,
            DsError::CertificateInUse(_) => ErrorCode::CertificateInUseException,
            DsError::NoAvailableCertificate(_) => ErrorCode::NoAvailableCertificateException,
            DsError::InvalidLdapsStatus(_) => ErrorCode::InvalidLDAPSStatusException,
            DsError::InvalidClientAuthStatus(_) => ErrorCode::InvalidClientAuthStatusException,
            DsError::InvalidNextToken => ErrorCode::InvalidNextTokenException,
            DsError::TagLimitExceeded(_) => ErrorCode::TagLimitExceededException,
            DsError::Store(_) | DsError::Internal(_) | DsError::Fault { .. } => {
                tracing::error!(
                    request_id = %ctx.request_id, operation = operation.as_str(), error = %err,
                    "directory service fault"
                );
                return WireError::internal();
            }
        };
        WireError::modelled(code, err.to_string())
    }
}

/// Which error a missing directory is, as each operation's model lists: the directory
/// operations (create, describe, delete, limits, tags) say `EntityDoesNotExistException`,
/// the certificate, LDAPS and client authentication operations
/// `DirectoryDoesNotExistException`.
fn missing_directory(operation: OperationName) -> ErrorCode {
    use OperationName as Op;
    match operation {
        Op::AddTagsToResource
        | Op::ConnectDirectory
        | Op::CreateDirectory
        | Op::CreateMicrosoftAD
        | Op::DeleteDirectory
        | Op::DescribeDirectories
        | Op::GetDirectoryLimits
        | Op::ListTagsForResource
        | Op::RemoveTagsFromResource => ErrorCode::EntityDoesNotExistException,
        Op::DeregisterCertificate
        | Op::DescribeCertificate
        | Op::DescribeClientAuthenticationSettings
        | Op::DescribeLDAPSSettings
        | Op::DisableClientAuthentication
        | Op::DisableLDAPS
        | Op::EnableClientAuthentication
        | Op::EnableLDAPS
        | Op::ListCertificates
        | Op::RegisterCertificate => ErrorCode::DirectoryDoesNotExistException,
    }
}

#[cfg(test)]
mod tests {
    use carapace_model::ModelError as _;

    use super::*;

    /// Where an operation's model lists one of the two "does not exist" errors, a missing
    /// directory is that one (the create operations list neither).
    #[test]
    fn a_missing_directory_is_the_error_each_operation_lists() {
        let model: serde_json::Value = serde_json::from_str(include_str!("../../../models/ds/service-2.json")).unwrap();
        for op in OperationName::ALL {
            let listed: Vec<&str> = model["operations"][op.as_str()]["errors"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["shape"].as_str())
                .filter(|e| ["EntityDoesNotExistException", "DirectoryDoesNotExistException"].contains(e))
                .collect();
            let chosen = missing_directory(*op).code();
            assert!(listed.is_empty() || listed == [chosen], "{}: lists {listed:?}, answers {chosen}", op.as_str());
        }
    }
}
