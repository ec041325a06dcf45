//! Carapace's wire layer: SigV4, awsJson1.1 and Smithy RPC v2 CBOR, model-driven input
//! validation, AWS error envelopes and dispatch to service handlers.
//!
//! This crate knows no service. A service plugs in through [`ServiceHandler`]: it names
//! its model ([`carapace_model::schema::Service`]), takes validated JSON documents and
//! answers typed [`Output`]s, by handing them to its generated `dispatch` and converting
//! what that answers with [`Output::from_dispatch`].
//! Everything a client can observe about framing, authentication and errors lives here,
//! so every service behaves the same way on the wire.

pub mod codec;
pub mod context;
pub mod dispatch;
pub mod error;
pub mod output;
pub mod sigv4;

pub use context::RequestContext;
pub use dispatch::{Credential, CredentialLookup, Dispatcher, DispatcherConfig, Outcome, ServiceHandler};
pub use error::WireError;
pub use output::Output;
