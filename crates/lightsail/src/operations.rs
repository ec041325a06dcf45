//! The `operation` records every mutating call returns, and GetOperation(s).
//!
//! Carapace applies a change when it stores it, so the stored operation is already
//! `Succeeded`. The call's own answer shows the operation as AWS's answer does at that
//! moment — `Started`, not terminal — so a client that waits on GetOperation (Terraform's
//! provider polls until `Succeeded` or `Completed`, internal/service/lightsail/wait.go) sees
//! the transition it expects, on its first poll.
//!
//! An operation that changed a distribution's configuration reads `Failed` once a running
//! edge reports it cannot apply that configuration ([`super::edge::LiveEdges::failure`]):
//! `errorCode` [`NOT_APPLIED`], the edge's reason as `errorDetails` (the API reference's
//! `Operation` members; Lightsail documents no code list, so the code is Carapace's).
//!
//! GetOperations pages oldest first, at most 200 per page (the API reference's wording);
//! GetOperationsForResource reads the per-resource copy of each record in the same order.

use base64::Engine as _;
use carapace_kernel::error::chain;
use carapace_store::{Clause, Cursor, Key, Row, Write};

use super::edge::LiveEdges;
use super::records::{self, OPERATION_KIND, OperationRecord, RESOURCE_OPERATION_KIND, StoredStatus};
use super::{LightsailError, LightsailManager, Result};
use crate::records::{OperationType, ResourceType};
use carapace_acm::Owner;

/// Operations per page.
pub const PAGE_SIZE: usize = 200;

/// `errorCode` of an operation whose distribution configuration an edge refused.
pub const NOT_APPLIED: &str = "DistributionConfigNotApplied";

/// `OperationStatus` as shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationStatus {
    /// In progress (`isTerminal` false).
    Started,
    /// Done.
    Succeeded,
    /// Failed.
    Failed,
}

/// An operation as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationView {
    /// The stored record.
    pub record: OperationRecord,
    /// The status shown.
    pub status: OperationStatus,
    /// `statusChangedAt`, Unix milliseconds.
    pub status_changed_ms: i64,
}

impl OperationView {
    /// `isTerminal`.
    pub fn is_terminal(&self) -> bool {
        self.status != OperationStatus::Started
    }

    fn stored(record: OperationRecord) -> Self {
        let status = match record.status {
            StoredStatus::Started => OperationStatus::Started,
            StoredStatus::Succeeded => OperationStatus::Succeeded,
            StoredStatus::Failed => OperationStatus::Failed,
        };
        Self { status, status_changed_ms: record.status_changed_ms, record }
    }

    /// `Failed`, with the edge's reason, when a running edge refused the configuration the
    /// operation produced.
    fn with_edges(mut self, edges: &LiveEdges) -> Self {
        let Some(change) = &self.record.change else { return self };
        if let Some(f) = edges.failure(&change.distribution_id, change.config_version) {
            self.status = OperationStatus::Failed;
            self.status_changed_ms = f.at_ms;
            self.record.error_code = Some(NOT_APPLIED.to_owned());
            self.record.error_details = Some(f.reason.clone());
        }
        self
    }

    /// As the mutating call answers it: `Started` at its creation time.
    pub(crate) fn as_answered(record: OperationRecord) -> Self {
        let at = record.created_ms;
        match record.status {
            StoredStatus::Failed => Self::stored(record),
            _ => Self { status: OperationStatus::Started, status_changed_ms: at, record },
        }
    }
}

/// One page of operations.
#[derive(Debug, Clone)]
pub struct OperationsPage {
    /// Oldest first.
    pub items: Vec<OperationView>,
    /// Where the next page starts.
    pub next_token: Option<String>,
}

/// A new, finished operation and the two rows that store it.
pub(crate) fn new_operation(
    owner: &Owner,
    resource_type: ResourceType,
    resource_name: &str,
    operation_type: OperationType,
    now_ms: i64,
) -> Result<(OperationRecord, Vec<Write>)> {
    let record = OperationRecord {
        schema: records::SCHEMA,
        id: uuid::Uuid::new_v4().to_string(),
        resource_name: resource_name.to_owned(),
        resource_type,
        created_ms: now_ms,
        region: owner.region.clone(),
        operation_type,
        details: None,
        status: StoredStatus::Succeeded,
        status_changed_ms: now_ms,
        error_code: None,
        error_details: None,
        change: None,
    };
    let writes = operation_writes(owner, &record)?;
    Ok((record, writes))
}

/// The two rows of an operation.
pub(crate) fn operation_writes(owner: &Owner, record: &OperationRecord) -> Result<Vec<Write>> {
    let scope = owner.scope();
    let body = records::encode(record)?;
    let row = |kind: &str, id: String| Write::Put {
        row: Row { key: Key::new(kind, &scope, id), version: 0, created_ms: record.created_ms, body: body.clone() },
        expect: None,
    };
    Ok(vec![
        row(OPERATION_KIND, record.id.clone()),
        row(RESOURCE_OPERATION_KIND, format!("{}/{}", record.resource_name, record.id)),
    ])
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PageToken {
    c: i64,
    i: String,
    f: String,
}

/// Encodes a keyset position bound to `fingerprint` (scope and query).
pub(crate) fn encode_token(cursor: &Cursor, fingerprint: &str) -> Result<String> {
    let t = PageToken { c: cursor.created_ms, i: cursor.id.clone(), f: fingerprint.to_owned() };
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(carapace_kernel::stored::encode("page token", &t)?))
}

/// Decodes a page token made by [`encode_token`] for the same fingerprint.
pub(crate) fn decode_token(token: &str, fingerprint: &str) -> Result<Cursor> {
    let bad = || {
        LightsailError::invalid(
            "InvalidPageToken",
            "The pageToken is not valid for this request.",
            "Use the nextPageToken of the previous page of the same request.",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
    let t: PageToken = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if t.f != fingerprint {
        return Err(bad());
    }
    Ok(Cursor { created_ms: t.c, id: t.i })
}

/// A short, stable fingerprint of a query.
pub(crate) fn fingerprint(text: &str) -> String {
    hex::encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref()[..9])
}

impl LightsailManager {
    /// GetOperation.
    pub async fn get_operation(&self, owner: &Owner, id: &str) -> Result<OperationView> {
        let row = self.core.store.get(&Key::new(OPERATION_KIND, owner.scope(), id)).await?;
        let row = row.ok_or_else(|| LightsailError::does_not_exist("Operation", id))?;
        let view = OperationView::stored(records::decode(&row.body)?);
        Ok(view.with_edges(&self.live_edges().await?))
    }

    /// GetOperations.
    pub async fn get_operations(&self, owner: &Owner, page_token: Option<&str>) -> Result<OperationsPage> {
        let scope = owner.scope();
        self.operations_page(OPERATION_KIND, &scope, None, &fingerprint(&format!("ops|{scope}")), page_token).await
    }

    /// GetOperationsForResource.
    pub async fn get_operations_for_resource(
        &self,
        owner: &Owner,
        resource_name: &str,
        page_token: Option<&str>,
    ) -> Result<OperationsPage> {
        let scope = owner.scope();
        let f = fingerprint(&format!("resource-ops|{scope}|{resource_name}"));
        let clause = super::index::resource_clause(resource_name);
        self.operations_page(RESOURCE_OPERATION_KIND, &scope, Some(clause), &f, page_token).await
    }

    async fn operations_page(
        &self,
        kind: &str,
        scope: &str,
        clause: Option<Clause>,
        fingerprint: &str,
        page_token: Option<&str>,
    ) -> Result<OperationsPage> {
        let after = page_token.map(|t| decode_token(t, fingerprint)).transpose()?;
        let rows = self.page_rows(kind, scope, clause, after, PAGE_SIZE).await?;
        let more = rows.len() > PAGE_SIZE;
        let rows = &rows[..rows.len().min(PAGE_SIZE)];
        let edges = self.live_edges().await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            match records::decode::<OperationRecord>(&row.body) {
                Ok(r) => items.push(OperationView::stored(r).with_edges(&edges)),
                Err(e) => {
                    tracing::error!(key = %row.key, error = chain(&e), "skipping an unreadable operation")
                }
            }
        }
        let next_token = match rows.last() {
            Some(last) if more => {
                Some(encode_token(&Cursor { created_ms: last.created_ms, id: last.key.id.clone() }, fingerprint)?)
            }
            _ => None,
        };
        Ok(OperationsPage { items, next_token })
    }
}
