//! What a service answers: a typed output, serialized once, straight to the wire.

use carapace_model::operations::{Answer, DispatchError};

use crate::WireError;

/// An operation's output, kept typed until the protocol is known.
///
/// awsJson1.1 writes it directly as JSON: its serde form (epoch-second timestamps,
/// base64 blobs) already is the wire form. Smithy RPC v2 CBOR needs the model to tell
/// timestamps and blobs apart, so it goes through a JSON document first.
pub struct Output(Answer);

impl Output {
    /// Wraps an output DTO (or an already built `serde_json::Value`).
    pub fn new<T: serde::Serialize + Send + Sync + 'static>(output: T) -> Self {
        Self(Box::new(output))
    }

    /// What a service's generated `dispatch` (`carapace_model::acm::dispatch` and the like)
    /// answered, in the wire's terms: the output; `SerializationException` for an input
    /// document that does not decode; the operation's own error as `convert`, the service's
    /// one conversion, renders it.
    pub fn from_dispatch<E>(
        result: Result<Answer, DispatchError<E>>,
        convert: impl FnOnce(E) -> WireError,
    ) -> Result<Self, WireError> {
        match result {
            Ok(answer) => Ok(Self(answer)),
            Err(DispatchError::Input(e)) => Err(WireError::serialization(e.to_string())),
            Err(DispatchError::Operation(e)) => Err(convert(e)),
        }
    }

    /// The output as a JSON document (for the CBOR encoder and for tests).
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

impl From<Answer> for Output {
    fn from(answer: Answer) -> Self {
        Self(answer)
    }
}

impl serde::Serialize for Output {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        erased_serde::serialize(self.0.as_ref(), serializer)
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_string(self) {
            Ok(json) => write!(f, "Output({json})"),
            Err(_) => f.write_str("Output(<unserializable>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Summary {
        certificate_arn: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        serial: Option<String>,
    }

    #[test]
    fn serializes_as_the_wrapped_value() {
        let out = Output::new(Summary { certificate_arn: "arn:x".into(), serial: None });
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"CertificateArn":"arn:x"}"#);
        assert_eq!(out.to_value().unwrap(), serde_json::json!({"CertificateArn": "arn:x"}));
    }

    #[test]
    fn dispatch_failures_become_wire_errors() {
        let input = carapace_model::operations::decode::<Named>(serde_json::json!({})).unwrap_err();
        let err = Output::from_dispatch::<()>(Err(DispatchError::Input(input)), |()| unreachable!()).unwrap_err();
        assert_eq!((err.code.as_ref(), err.message.as_str()), ("SerializationException", "missing field `Arn`"));
        let err = Output::from_dispatch(Err(DispatchError::Operation("gone")), WireError::validation).unwrap_err();
        assert_eq!((err.code.as_ref(), err.message.as_str()), ("ValidationException", "gone"));
        let out = Output::from_dispatch::<()>(Ok(carapace_model::operations::empty()), |()| unreachable!()).unwrap();
        assert_eq!(out.to_value().unwrap(), serde_json::json!({}));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    #[allow(dead_code)] // only decoded
    struct Named {
        arn: String,
    }
}
