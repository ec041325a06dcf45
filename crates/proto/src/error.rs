//! The one error type a client ever sees, and how it is rendered.

use std::borrow::Cow;

/// An AWS error as sent on the wire: code, HTTP status and message. Extra members (such
/// as ACM's `throttlingReasons`) ride along in `extra`.
///
/// Rendering into the envelope (member casing, Lightsail's `code`/`docs`/`tip`, DS's
/// `RequestId`) happens in [`crate::codec`], which reads the casing from the model.
#[derive(Debug, Clone, PartialEq)]
pub struct WireError {
    /// The error code, e.g. `ResourceNotFoundException`; sent as `__type`.
    pub code: Cow<'static, str>,
    /// HTTP status.
    pub status: u16,
    /// Human-readable message.
    pub message: String,
    /// Additional members of the error shape, by wire name.
    pub extra: Vec<(&'static str, serde_json::Value)>,
}

impl WireError {
    /// A service's modelled error: code and HTTP status from the model's error shape.
    pub fn modelled(error: impl carapace_model::ModelError, message: impl Into<String>) -> Self {
        Self::with_status(error.code(), error.status(), message)
    }

    /// A client error (HTTP 400) with the given code: the protocol's own errors, common to
    /// every service and in no model (`ValidationException`, `UnknownOperationException`).
    /// A service's errors go through [`WireError::modelled`].
    pub(crate) fn client(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::with_status(code, 400, message)
    }

    /// An error with an explicit status.
    pub(crate) fn with_status(code: impl Into<Cow<'static, str>>, status: u16, message: impl Into<String>) -> Self {
        Self { code: code.into(), status, message: message.into(), extra: Vec::new() }
    }

    /// Adds an extra member to the envelope.
    pub fn with_member(mut self, name: &'static str, value: serde_json::Value) -> Self {
        self.extra.push((name, value));
        self
    }

    /// `ValidationException`, the error for input that breaks the model's constraints.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::client("ValidationException", message)
    }

    /// `AccessDeniedException`, common to every service: the caller may not act on the
    /// resource (another account's, not shared with it).
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::client("AccessDeniedException", message)
    }

    /// `SerializationException`: the body is not a document of the right shape.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::client("SerializationException", message)
    }

    /// The fault every unexpected internal failure becomes. Details go to the log, tagged
    /// with the request id, never to the client.
    pub fn internal() -> Self {
        Self::with_status("InternalFailure", 500, "An internal error occurred. Try again later.")
    }

    /// The answer for an operation that is in the model but not built yet.
    pub fn not_implemented(service: &str, operation: &str) -> Self {
        Self::with_status(
            "NotImplementedException",
            501,
            format!("{service} operation {operation} is not implemented by Carapace yet."),
        )
    }
}

impl From<carapace_model::operations::NotImplemented> for WireError {
    fn from(n: carapace_model::operations::NotImplemented) -> Self {
        Self::not_implemented(n.service, n.operation)
    }
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for WireError {}
