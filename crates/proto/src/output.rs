//! What a service answers: a typed output, serialized once, straight to the wire.

/// An operation's output, kept typed until the protocol is known.
///
/// awsJson1.1 writes it directly as JSON: its serde form (epoch-second timestamps,
/// base64 blobs) already is the wire form. Smithy RPC v2 CBOR needs the model to tell
/// timestamps and blobs apart, so it goes through a JSON document first.
pub struct Output(Box<dyn erased_serde::Serialize + Send + Sync>);

impl Output {
    /// Wraps an output DTO (or an already built `serde_json::Value`).
    pub fn new<T: serde::Serialize + Send + Sync + 'static>(output: T) -> Self {
        Self(Box::new(output))
    }

    /// The empty structure, `{}`.
    pub fn empty() -> Self {
        Self::new(serde_json::Value::Object(serde_json::Map::new()))
    }

    /// The output as a JSON document (for the CBOR encoder and for tests).
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
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
    struct Answer {
        certificate_arn: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        serial: Option<String>,
    }

    #[test]
    fn serializes_as_the_wrapped_value() {
        let out = Output::new(Answer { certificate_arn: "arn:x".into(), serial: None });
        assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"CertificateArn":"arn:x"}"#);
        assert_eq!(out.to_value().unwrap(), serde_json::json!({"CertificateArn": "arn:x"}));
        assert_eq!(serde_json::to_string(&Output::empty()).unwrap(), "{}");
    }
}
