//! AWS Private CA (acm-pca) operations over [`carapace_pca::PrivateCas`].
//!
//! The generated trait ([`carapace_model::acm_pca::Operations`]) decodes each call into its
//! typed input; the methods here map it onto the rules ([`convert`]) and the answer back, and
//! errors become wire errors once ([`error`]). Operations not written here — multi-Region
//! replicas and CA associations — answer the trait's default, `NotImplementedException`
//! naming them.

mod convert;
mod error;

use carapace_kernel::Owner;
use carapace_model::Timestamp;
use carapace_model::acm_pca::{self as m, OperationName};
use carapace_model::schema::{Operation, Service};
use carapace_pca::reports::ReportFormat;
use carapace_pca::{IssueRequest, PrivateCas, RevocationReason};
use carapace_proto::{Output, RequestContext, ServiceHandler, WireError};

use crate::error::Result;

/// The AWS Private CA service handler.
pub struct Pca {
    cas: PrivateCas,
}

impl Pca {
    /// AWS Private CA over these rules.
    pub fn new(cas: PrivateCas) -> Self {
        Self { cas }
    }
}

/// The caller as the rules know it.
fn owner(ctx: &RequestContext) -> Owner {
    Owner::new(ctx.account_id.clone(), ctx.region.clone())
}

#[async_trait::async_trait]
impl ServiceHandler for Pca {
    fn service(&self) -> &'static Service {
        &m::SERVICE
    }

    async fn call(
        &self,
        ctx: &RequestContext,
        operation: &'static Operation,
        input: serde_json::Value,
    ) -> std::result::Result<Output, WireError> {
        let op = OperationName::of(operation)?;
        Output::from_dispatch(m::dispatch(self, ctx, op, input).await, |e| e.into_wire(&ctx.request_id, op))
    }
}

impl m::Operations for Pca {
    type Context = RequestContext;
    type Error = error::Error;

    async fn create_certificate_authority(
        &self,
        ctx: &RequestContext,
        input: m::CreateCertificateAuthorityRequest,
    ) -> Result<m::CreateCertificateAuthorityResponse> {
        let arn = self.cas.create_authority(&owner(ctx), convert::new_authority(input)?).await?;
        Ok(m::CreateCertificateAuthorityResponse { certificate_authority_arn: Some(arn) })
    }

    async fn describe_certificate_authority(
        &self,
        ctx: &RequestContext,
        input: m::DescribeCertificateAuthorityRequest,
    ) -> Result<m::DescribeCertificateAuthorityResponse> {
        let view = self.cas.describe_authority(&owner(ctx), &input.certificate_authority_arn).await?;
        Ok(m::DescribeCertificateAuthorityResponse { certificate_authority: Some(convert::authority(&view)) })
    }

    async fn list_certificate_authorities(
        &self,
        ctx: &RequestContext,
        input: m::ListCertificateAuthoritiesRequest,
    ) -> Result<m::ListCertificateAuthoritiesResponse> {
        // CAs shared with this account are named by their owners' ARNs; Carapace keeps no
        // index of them (AWS's comes from RAM), so OTHER_ACCOUNTS lists none.
        if input.resource_owner == Some(m::ResourceOwner::OtherAccounts) {
            return Ok(m::ListCertificateAuthoritiesResponse {
                next_token: None,
                certificate_authorities: Some(Vec::new()),
            });
        }
        let page = self.cas.list_authorities(&owner(ctx), input.max_results, input.next_token.as_deref()).await?;
        Ok(m::ListCertificateAuthoritiesResponse {
            next_token: page.next_token,
            certificate_authorities: Some(page.items.iter().map(convert::authority).collect()),
        })
    }

    async fn update_certificate_authority(
        &self,
        ctx: &RequestContext,
        input: m::UpdateCertificateAuthorityRequest,
    ) -> Result<()> {
        let status = input.status.map(convert::status).transpose()?;
        let revocation = match input.revocation_configuration {
            None => None,
            Some(config) => Some(convert::revocation(Some(config))?),
        };
        self.cas.update_authority(&owner(ctx), &input.certificate_authority_arn, status, revocation).await?;
        Ok(())
    }

    async fn delete_certificate_authority(
        &self,
        ctx: &RequestContext,
        input: m::DeleteCertificateAuthorityRequest,
    ) -> Result<()> {
        let arn = &input.certificate_authority_arn;
        self.cas.delete_authority(&owner(ctx), arn, input.permanent_deletion_time_in_days).await?;
        Ok(())
    }

    async fn restore_certificate_authority(
        &self,
        ctx: &RequestContext,
        input: m::RestoreCertificateAuthorityRequest,
    ) -> Result<()> {
        self.cas.restore_authority(&owner(ctx), &input.certificate_authority_arn).await?;
        Ok(())
    }

    async fn get_certificate_authority_csr(
        &self,
        ctx: &RequestContext,
        input: m::GetCertificateAuthorityCsrRequest,
    ) -> Result<m::GetCertificateAuthorityCsrResponse> {
        let csr = self.cas.authority_csr(&owner(ctx), &input.certificate_authority_arn).await?;
        Ok(m::GetCertificateAuthorityCsrResponse { csr: Some(csr) })
    }

    async fn get_certificate_authority_certificate(
        &self,
        ctx: &RequestContext,
        input: m::GetCertificateAuthorityCertificateRequest,
    ) -> Result<m::GetCertificateAuthorityCertificateResponse> {
        let (certificate, chain) =
            self.cas.authority_certificate(&owner(ctx), &input.certificate_authority_arn).await?;
        Ok(m::GetCertificateAuthorityCertificateResponse { certificate: Some(certificate), certificate_chain: chain })
    }

    async fn import_certificate_authority_certificate(
        &self,
        ctx: &RequestContext,
        input: m::ImportCertificateAuthorityCertificateRequest,
    ) -> Result<()> {
        let chain = input.certificate_chain.as_ref().map(|c| c.as_bytes());
        self.cas
            .import_authority_certificate(
                &owner(ctx),
                &input.certificate_authority_arn,
                input.certificate.as_bytes(),
                chain,
            )
            .await?;
        Ok(())
    }

    async fn issue_certificate(
        &self,
        ctx: &RequestContext,
        input: m::IssueCertificateRequest,
    ) -> Result<m::IssueCertificateResponse> {
        if input.api_passthrough.is_some() {
            return Err(
                carapace_pca::PcaError::InvalidArgs("ApiPassthrough is not supported by Carapace.".into()).into()
            );
        }
        let request = IssueRequest {
            ca_arn: input.certificate_authority_arn,
            csr: input.csr.0,
            signing_algorithm: convert::signing_algorithm(input.signing_algorithm)?,
            template_arn: input.template_arn,
            validity: convert::validity(input.validity),
            validity_not_before: input.validity_not_before.map(convert::validity),
            idempotency_token: input.idempotency_token,
            return_certificate: input.return_values == Some(m::IssueCertificateReturnValue::Certificate),
        };
        let ca_arn = request.ca_arn.clone();
        let (arn, certificate) = self.cas.issue_certificate(&owner(ctx), request).await?;
        let chain = match &certificate {
            Some(_) => self.cas.get_certificate(&owner(ctx), &ca_arn, &arn).await?.1,
            None => None,
        };
        Ok(m::IssueCertificateResponse { certificate_arn: Some(arn), certificate, certificate_chain: chain })
    }

    async fn get_certificate(
        &self,
        ctx: &RequestContext,
        input: m::GetCertificateRequest,
    ) -> Result<m::GetCertificateResponse> {
        let (certificate, chain) =
            self.cas.get_certificate(&owner(ctx), &input.certificate_authority_arn, &input.certificate_arn).await?;
        Ok(m::GetCertificateResponse { certificate: Some(certificate), certificate_chain: chain })
    }

    async fn revoke_certificate(&self, ctx: &RequestContext, input: m::RevokeCertificateRequest) -> Result<()> {
        let reason = match input.revocation_reason {
            m::RevocationReason::Unspecified => RevocationReason::Unspecified,
            m::RevocationReason::KeyCompromise => RevocationReason::KeyCompromise,
            m::RevocationReason::CertificateAuthorityCompromise => RevocationReason::CaCompromise,
            m::RevocationReason::AffiliationChanged => RevocationReason::AffiliationChanged,
            m::RevocationReason::Superseded => RevocationReason::Superseded,
            m::RevocationReason::CessationOfOperation => RevocationReason::CessationOfOperation,
            m::RevocationReason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
            m::RevocationReason::AACompromise => RevocationReason::AaCompromise,
        };
        let (arn, serial) = (&input.certificate_authority_arn, &input.certificate_serial);
        self.cas.revoke_certificate(&owner(ctx), arn, serial, reason).await?;
        Ok(())
    }

    async fn tag_certificate_authority(
        &self,
        ctx: &RequestContext,
        input: m::TagCertificateAuthorityRequest,
    ) -> Result<()> {
        let tags = convert::tags(input.tags);
        self.cas.tag_authority(&owner(ctx), &input.certificate_authority_arn, tags).await?;
        Ok(())
    }

    async fn untag_certificate_authority(
        &self,
        ctx: &RequestContext,
        input: m::UntagCertificateAuthorityRequest,
    ) -> Result<()> {
        let tags = convert::tags(input.tags);
        self.cas.untag_authority(&owner(ctx), &input.certificate_authority_arn, tags).await?;
        Ok(())
    }

    async fn list_tags(&self, ctx: &RequestContext, input: m::ListTagsRequest) -> Result<m::ListTagsResponse> {
        let arn = &input.certificate_authority_arn;
        let page = self.cas.list_tags(&owner(ctx), arn, input.max_results, input.next_token.as_deref()).await?;
        Ok(m::ListTagsResponse {
            next_token: page.next_token,
            tags: Some(page.items.into_iter().map(|(key, value)| m::Tag { key, value }).collect()),
        })
    }

    async fn create_certificate_authority_audit_report(
        &self,
        ctx: &RequestContext,
        input: m::CreateCertificateAuthorityAuditReportRequest,
    ) -> Result<m::CreateCertificateAuthorityAuditReportResponse> {
        let format = match input.audit_report_response_format {
            m::AuditReportResponseFormat::Json => ReportFormat::Json,
            m::AuditReportResponseFormat::Csv => ReportFormat::Csv,
        };
        let arn = &input.certificate_authority_arn;
        let report = self.cas.create_audit_report(&owner(ctx), arn, &input.s3_bucket_name, format).await?;
        Ok(m::CreateCertificateAuthorityAuditReportResponse {
            audit_report_id: Some(report.id),
            s3_key: Some(report.key),
        })
    }

    async fn describe_certificate_authority_audit_report(
        &self,
        ctx: &RequestContext,
        input: m::DescribeCertificateAuthorityAuditReportRequest,
    ) -> Result<m::DescribeCertificateAuthorityAuditReportResponse> {
        let arn = &input.certificate_authority_arn;
        let report = self.cas.describe_audit_report(&owner(ctx), arn, &input.audit_report_id).await?;
        Ok(m::DescribeCertificateAuthorityAuditReportResponse {
            audit_report_status: Some(m::AuditReportStatus::Success),
            s3_bucket_name: Some(report.bucket),
            s3_key: Some(report.key),
            created_at: Some(Timestamp::from_unix_millis(report.created_ms)),
        })
    }

    async fn create_permission(&self, ctx: &RequestContext, input: m::CreatePermissionRequest) -> Result<()> {
        let actions = input.actions.iter().map(|a| a.as_str().to_owned()).collect();
        let arn = &input.certificate_authority_arn;
        self.cas
            .create_permission(&owner(ctx), arn, &input.principal, input.source_account.as_deref(), actions)
            .await?;
        Ok(())
    }

    async fn list_permissions(
        &self,
        ctx: &RequestContext,
        input: m::ListPermissionsRequest,
    ) -> Result<m::ListPermissionsResponse> {
        let arn = &input.certificate_authority_arn;
        let page = self.cas.list_permissions(&owner(ctx), arn, input.max_results, input.next_token.as_deref()).await?;
        let permissions = page
            .items
            .into_iter()
            .map(|p| m::Permission {
                certificate_authority_arn: Some(arn.clone()),
                created_at: Some(Timestamp::from_unix_millis(p.created_ms)),
                principal: Some(p.principal),
                source_account: p.source_account,
                actions: Some(p.actions.iter().filter_map(|a| convert::action(a)).collect()),
                policy: None,
            })
            .collect();
        Ok(m::ListPermissionsResponse { next_token: page.next_token, permissions: Some(permissions) })
    }

    async fn put_policy(&self, ctx: &RequestContext, input: m::PutPolicyRequest) -> Result<()> {
        self.cas.put_policy(&owner(ctx), &input.resource_arn, &input.policy).await?;
        Ok(())
    }

    async fn get_policy(&self, ctx: &RequestContext, input: m::GetPolicyRequest) -> Result<m::GetPolicyResponse> {
        let policy = self.cas.get_policy(&owner(ctx), &input.resource_arn).await?;
        Ok(m::GetPolicyResponse { policy: Some(policy) })
    }

    async fn delete_policy(&self, ctx: &RequestContext, input: m::DeletePolicyRequest) -> Result<()> {
        self.cas.delete_policy(&owner(ctx), &input.resource_arn).await?;
        Ok(())
    }

    async fn delete_permission(&self, ctx: &RequestContext, input: m::DeletePermissionRequest) -> Result<()> {
        let arn = &input.certificate_authority_arn;
        self.cas.delete_permission(&owner(ctx), arn, &input.principal, input.source_account.as_deref()).await?;
        Ok(())
    }
}
