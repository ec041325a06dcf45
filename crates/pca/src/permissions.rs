//! CreatePermission, ListPermissions and DeletePermission: what lets ACM
//! (`acm.amazonaws.com`) renew the private certificates a CA signs.

use carapace_kernel::Owner;
use carapace_kernel::retry::commit;
use carapace_store::Write;
use serde::{Deserialize, Serialize};

use crate::records::CaStatus;
use crate::{Page, PcaError, PrivateCas, Result, ca_row, contended};

/// The one principal AWS Private CA grants permissions to.
pub const ACM_PRINCIPAL: &str = "acm.amazonaws.com";

/// A permission on a CA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// The principal (`acm.amazonaws.com`).
    pub principal: String,
    /// The account the principal acts for, if limited to one.
    pub source_account: Option<String>,
    /// The actions granted, by API name.
    pub actions: Vec<String>,
    /// When it was granted, Unix ms.
    pub created_ms: i64,
}

impl PrivateCas {
    /// CreatePermission.
    pub async fn create_permission(
        &self,
        owner: &Owner,
        ca_arn: &str,
        principal: &str,
        source_account: Option<&str>,
        actions: Vec<String>,
    ) -> Result<()> {
        if principal != ACM_PRINCIPAL {
            return Err(PcaError::InvalidRequest(format!(
                "Principal {principal} is not supported; permissions are granted to {ACM_PRINCIPAL}."
            )));
        }
        let now = self.now();
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let (mut record, version) = self.authority(owner, ca_arn).await?;
            if record.status == CaStatus::Deleted {
                return Err(PcaError::InvalidState(format!("The certificate authority {ca_arn} is deleted.")));
            }
            if record
                .permissions
                .iter()
                .any(|p| p.principal == principal && p.source_account.as_deref() == source_account)
            {
                return Err(PcaError::PermissionAlreadyExists(format!(
                    "The permission for {principal} on {ca_arn} already exists."
                )));
            }
            record.permissions.push(Permission {
                principal: principal.to_owned(),
                source_account: source_account.map(str::to_owned),
                actions: actions.clone(),
                created_ms: now,
            });
            let row = ca_row(owner, &record)?;
            Ok(commit(self.core.store.as_ref(), vec![Write::Put { row, expect: Some(version) }]).await?.then_some(()))
        })
    }

    /// ListPermissions.
    pub async fn list_permissions(
        &self,
        owner: &Owner,
        ca_arn: &str,
        max: Option<i32>,
        next_token: Option<&str>,
    ) -> Result<Page<Permission>> {
        let (record, _, _) = self.shared_authority(owner, ca_arn, "ListPermissions", None).await?;
        let all = record.permissions;
        let start = match next_token {
            None => 0,
            Some(t) => t.parse::<usize>().ok().filter(|s| *s <= all.len()).ok_or(PcaError::InvalidNextToken)?,
        };
        let limit = max.map_or(100, |m| usize::try_from(m).unwrap_or(100).clamp(1, 1000));
        let end = (start + limit).min(all.len());
        Ok(Page { next_token: (end < all.len()).then(|| end.to_string()), items: all[start..end].to_vec() })
    }

    /// DeletePermission.
    pub async fn delete_permission(
        &self,
        owner: &Owner,
        ca_arn: &str,
        principal: &str,
        source_account: Option<&str>,
    ) -> Result<()> {
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let (mut record, version) = self.authority(owner, ca_arn).await?;
            let before = record.permissions.len();
            record.permissions.retain(|p| !(p.principal == principal && p.source_account.as_deref() == source_account));
            if record.permissions.len() == before {
                return Err(PcaError::NotFound(format!("Could not find a permission for {principal} on {ca_arn}.")));
            }
            let row = ca_row(owner, &record)?;
            Ok(commit(self.core.store.as_ref(), vec![Write::Put { row, expect: Some(version) }]).await?.then_some(()))
        })
    }
}
