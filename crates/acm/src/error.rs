//! [`AcmError`]: everything that can go wrong in an ACM operation.

/// Everything that can go wrong in an ACM operation, named after ACM's error codes. The
/// handler turns each variant into the wire error of the same name.
#[derive(Debug, thiserror::Error)]
pub enum AcmError {
    /// No such certificate for this caller (`ResourceNotFoundException`); holds the ARN.
    #[error("Could not find certificate {0}.")]
    NotFound(String),
    /// An ARN that is well formed but names no ACM certificate (`InvalidArnException`).
    #[error("String '{0}' is not a valid certificate ARN.")]
    InvalidArn(String),
    /// The certificate is not issued yet (`RequestInProgressException`).
    #[error("{0}")]
    RequestInProgress(String),
    /// The operation does not fit the certificate's state (`InvalidStateException`).
    #[error("{0}")]
    InvalidState(String),
    /// Bad domain validation options (`InvalidDomainValidationOptionsException`).
    #[error("{0}")]
    InvalidDomainValidationOptions(String),
    /// A parameter ACM refuses (`InvalidParameterException`).
    #[error("{0}")]
    InvalidParameter(String),
    /// Bad arguments, such as a foreign NextToken (`InvalidArgsException`).
    #[error("{0}")]
    InvalidArgs(String),
    /// A quota would be exceeded (`LimitExceededException`).
    #[error("{0}")]
    LimitExceeded(String),
    /// A tag ACM refuses (`InvalidTagException`).
    #[error("{0}")]
    InvalidTag(String),
    /// More than 50 tags (`TooManyTagsException`).
    #[error("{0}")]
    TooManyTags(String),
    /// The certificate is used by another resource (`ResourceInUseException`).
    #[error("{0}")]
    ResourceInUse(String),
    /// Input ACM rejects with `ValidationException`.
    #[error("{0}")]
    Validation(String),
    /// A concurrent change won (`ConflictException`).
    #[error("{0}")]
    Conflict(String),
    /// The store failed. Never shown to a client.
    #[error(transparent)]
    Store(#[from] carapace_store::Error),
    /// An internal failure without an underlying error (a corrupt row). Never shown to a
    /// client.
    #[error("internal: {0}")]
    Internal(String),
    /// An internal failure caused by another error (the CA, a key, a codec), kept as its
    /// source so the log shows the whole chain. Never shown to a client.
    #[error("internal: {what}")]
    Fault {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl AcmError {
    /// An internal failure without an underlying error (one with a cause is a
    /// [`Self::Fault`]).
    pub(crate) fn internal(what: &str) -> Self {
        Self::Internal(what.to_owned())
    }

    /// A `map_err` for a failure of `what`, keeping the error as the source.
    pub(crate) fn fault<E: std::error::Error + Send + Sync + 'static>(
        what: impl Into<String>,
    ) -> impl FnOnce(E) -> Self {
        let what = what.into();
        move |source| Self::Fault { what, source: Box::new(source) }
    }

    /// The error and every source under it, as one line for the log.
    pub fn chain(&self) -> String {
        carapace_kernel::error::chain(self)
    }
}

/// A stored record that does not decode or encode is an internal failure.
impl From<carapace_kernel::stored::RecordError> for AcmError {
    fn from(e: carapace_kernel::stored::RecordError) -> Self {
        Self::Fault { what: "a stored record".into(), source: Box::new(e) }
    }
}

/// The answer to a change of the certificate `arn` that kept losing write races.
pub(crate) fn busy(arn: &str) -> AcmError {
    AcmError::Conflict(format!("The certificate {arn} is being changed by another request; try again."))
}
