//! ListCertificates.
//!
//! Filters follow ACM: `CertificateStatuses` (all when empty); `Includes.keyTypes`
//! (RSA_1024 and RSA_2048 only when absent, as ACM documents); `extendedKeyUsage` and
//! `keyUsage` (a certificate matches when it has one of those listed); `exportOption`;
//! `managedBy`; `CertificateKeyPairOrigins` (all but ACME when absent); `RootHierarchyTypes`
//! (no Amazon N2 certificates when absent, only those when present). `SortBy` and
//! `SortOrder` come together. Pages hold at most `MaxItems` (default 1000).

use carapace_acm::{AcmError, CertificateManager, ListFilter, ListQuery};
use carapace_model::acm as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

/// Page size when the caller names none.
const DEFAULT_MAX_ITEMS: usize = 1000;

pub(crate) async fn handle(
    manager: &CertificateManager,
    ctx: &RequestContext,
    req: m::ListCertificatesRequest,
) -> Result<m::ListCertificatesResponse> {
    let descending = match (req.sort_by, req.sort_order) {
        (None, None) => false,
        (Some(m::SortBy::CreatedAt), Some(order)) => order == m::SortOrder::Descending,
        _ => {
            return Err(AcmError::Validation("SortBy and SortOrder must be specified together.".into()).into());
        }
    };
    let includes = req.includes.unwrap_or_default();
    let filter = ListFilter {
        statuses: req.certificate_statuses.unwrap_or_default().into_iter().map(convert::status_from).collect(),
        key_types: includes.key_types.map(|k| k.into_iter().map(convert::key_algorithm_from).collect()),
        extended_key_usages: includes
            .extended_key_usage
            .unwrap_or_default()
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect(),
        key_usages: includes.key_usage.unwrap_or_default().iter().map(|k| k.as_str().to_owned()).collect(),
        export_enabled: includes.export_option.map(|e| e == m::CertificateExport::Enabled),
        managed_by: includes.managed_by.map(convert::managed_by_from),
        key_pair_origins: req.certificate_key_pair_origins.map(|o| o.into_iter().map(convert::origin_from).collect()),
        root_hierarchies: req
            .root_hierarchy_types
            .unwrap_or_default()
            .into_iter()
            .map(convert::root_hierarchy_from)
            .collect(),
    };
    let query = ListQuery {
        filter,
        descending,
        max_items: req.max_items.and_then(|n| usize::try_from(n).ok()).unwrap_or(DEFAULT_MAX_ITEMS),
        next_token: req.next_token,
    };
    let page = manager.list_certificates(&crate::owner(ctx), &query).await?;
    Ok(m::ListCertificatesResponse {
        next_token: page.next_token,
        certificate_summary_list: Some(page.items.iter().map(convert::summary).collect()),
    })
}
