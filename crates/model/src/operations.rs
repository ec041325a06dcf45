//! What every generated service trait (`acm::Operations` and the like) and its `dispatch`
//! share: the trait's default answer, the failures of a dispatch, and the output it returns.
//!
//! A service's wire crate implements its trait's methods on typed inputs and outputs; the
//! generated `dispatch` decodes the validated input document once, calls the method for the
//! operation, and hands back the output ready to serialize. The trait's default for every
//! method is [`NotImplemented`], so an operation whose method is not written answers
//! `NotImplementedException` naming it.

/// An operation's output, ready to serialize: the operation's output DTO, or `{}` for an
/// operation whose model has no output.
pub type Answer = Box<dyn erased_serde::Serialize + Send + Sync>;

/// The default of every method of a generated service trait: the operation is in the model
/// but its handler does not implement it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{service} operation {operation} is not implemented by Carapace yet.")]
pub struct NotImplemented {
    /// The service's model name, e.g. `acm-pca`.
    pub service: &'static str,
    /// The operation's wire name, e.g. `IssueCertificate`.
    pub operation: &'static str,
}

/// The default body of every method of a generated service trait: fails at once with
/// [`NotImplemented`] naming the operation.
pub fn not_implemented<T, E: From<NotImplemented>>(
    service: &'static str,
    operation: &'static str,
) -> std::future::Ready<Result<T, E>> {
    std::future::ready(Err(NotImplemented { service, operation }.into()))
}

/// Why a generated `dispatch` did not answer.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError<E> {
    /// The input document does not decode into the operation's input type (a
    /// `SerializationException` on the wire): the handler never ran.
    #[error(transparent)]
    Input(#[from] InvalidInput),
    /// The handler's method failed.
    #[error("operation failed")]
    Operation(E),
}

/// An input document that does not decode into its operation's input type.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(#[from] serde_json::Error);

/// Decodes a validated input document into its operation's input type.
pub fn decode<T: serde::de::DeserializeOwned>(input: serde_json::Value) -> Result<T, InvalidInput> {
    Ok(serde_json::from_value(input)?)
}

/// Boxes an operation's output DTO.
pub fn answer<T: serde::Serialize + Send + Sync + 'static>(output: T) -> Answer {
    Box::new(output)
}

/// The answer of an operation whose model has no output: the empty structure, `{}`.
pub fn empty() -> Answer {
    Box::new(serde_json::Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_serialize_as_their_output() {
        let to_json = |a: Answer| serde_json::to_string(&a).unwrap();
        assert_eq!(to_json(empty()), "{}");
        assert_eq!(to_json(answer(serde_json::json!({"CertificateArn": "arn:x"}))), r#"{"CertificateArn":"arn:x"}"#);
    }

    #[test]
    fn undecodable_input_keeps_serdes_message() {
        let err = decode::<crate::acm::DescribeCertificateRequest>(serde_json::json!({})).unwrap_err();
        assert_eq!(err.to_string(), "missing field `CertificateArn`");
    }
}
