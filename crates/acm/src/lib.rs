//! ACM (AWS Certificate Manager) operations over the Carapace core.

use carapace_core::Core;
use carapace_model::schema::{Operation, Service};
use carapace_proto::{RequestContext, ServiceHandler, WireError};

/// The ACM service handler.
pub struct Acm {
    #[allow(dead_code)]
    core: Core,
}

impl Acm {
    /// ACM over these core handles.
    pub fn new(core: Core) -> Self {
        Self { core }
    }
}

#[async_trait::async_trait]
impl ServiceHandler for Acm {
    fn service(&self) -> &'static Service {
        &carapace_model::acm::SERVICE
    }

    async fn call(
        &self,
        _ctx: &RequestContext,
        operation: &'static Operation,
        _input: serde_json::Value,
    ) -> Result<serde_json::Value, WireError> {
        Err(WireError::not_implemented("acm", operation.name))
    }
}

/// Starts ACM's background workers (issuance, validation); they stop when `stop` turns true.
pub fn spawn_workers(_core: Core, _stop: tokio::sync::watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    Vec::new()
}
