//! AWS Private CA (acm-pca) operations.
//!
//! The whole model is generated ([`carapace_model::acm_pca`]), so every operation is routed
//! through both of its protocols, signed with the `acm-pca` signing name and validated
//! against its input shape. No method of [`Operations`] is written yet: each answers the
//! trait's default, `NotImplementedException` naming the operation.

use carapace_model::acm_pca::{self, OperationName, Operations};
use carapace_model::operations::NotImplemented;
use carapace_model::schema::{Operation, Service};
use carapace_proto::{Output, RequestContext, ServiceHandler, WireError};

/// The AWS Private CA service handler.
#[derive(Debug, Default)]
pub struct Pca;

impl Operations for Pca {
    type Context = RequestContext;
    type Error = NotImplemented;
}

#[async_trait::async_trait]
impl ServiceHandler for Pca {
    fn service(&self) -> &'static Service {
        &acm_pca::SERVICE
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: serde_json::Value,
    ) -> Result<Output, WireError> {
        let op = OperationName::of(operation)?;
        Output::from_dispatch(acm_pca::dispatch(self, ctx, op, input).await, into_wire)
    }
}

/// The one conversion of the operations' errors into wire errors.
fn into_wire(err: NotImplemented) -> WireError {
    err.into()
}
