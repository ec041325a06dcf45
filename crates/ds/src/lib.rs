//! Directory Service operations over the Carapace core.

use carapace_core::Core;
use carapace_model::schema::{Operation, Service};
use carapace_proto::{RequestContext, ServiceHandler, WireError};

/// The Directory Service handler.
pub struct Ds {
    #[allow(dead_code)]
    core: Core,
}

impl Ds {
    /// Directory Service over these core handles.
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

#[async_trait::async_trait]
impl ServiceHandler for Ds {
    fn service(&self) -> &'static Service {
        &carapace_model::ds::SERVICE
    }

    async fn call(
        &self,
        _ctx: &RequestContext,
        operation: &'static Operation,
        _input: serde_json::Value,
    ) -> Result<serde_json::Value, WireError> {
        Err(WireError::not_implemented("ds", operation.name))
    }
}
