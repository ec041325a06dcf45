//! CreateDistribution, GetDistributions, UpdateDistribution, DeleteDistribution.

use carapace_lightsail::{CertificateChange, DistributionChange, LightsailError, LightsailManager, NewDistribution};
use carapace_model::lightsail as m;
use carapace_proto::RequestContext;

use crate::convert;
use crate::error::Result;

/// WAF and private origin access need an edge that can honour them: asking for them is
/// refused, naming the member, rather than stored and silently ignored. `false` (or an
/// empty rule list) asks for nothing and is accepted.
fn refuse_unsupported(
    enable_waf: Option<bool>,
    waf_rules: Option<&Vec<m::WafRule>>,
    private: Option<bool>,
) -> Result<()> {
    if enable_waf == Some(true) {
        return Err(
            LightsailError::unsupported("enableWaf", "the Carapace edge has no web application firewall").into()
        );
    }
    if waf_rules.is_some_and(|r| !r.is_empty()) {
        return Err(LightsailError::unsupported("wafRules", "the Carapace edge has no web application firewall").into());
    }
    if private == Some(true) {
        return Err(LightsailError::unsupported(
            "enablePrivateOriginAccess",
            "Carapace origins are declared URLs, not Lightsail buckets",
        )
        .into());
    }
    Ok(())
}

pub(crate) async fn create(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::CreateDistributionRequest,
) -> Result<m::CreateDistributionResult> {
    refuse_unsupported(req.enable_waf, req.waf_rules.as_ref(), req.enable_private_origin_access)?;
    let new = NewDistribution {
        name: req.distribution_name,
        origin: convert::origin_from(req.origin),
        default_behavior: req
            .default_cache_behavior
            .behavior
            .map_or(carapace_lightsail::cache::Behavior::Cache, convert::behavior_from),
        cache_settings: req.cache_behavior_settings.map(convert::cache_settings_from),
        cache_behaviors: convert::path_behaviors_from(req.cache_behaviors.unwrap_or_default()),
        bundle_id: req.bundle_id,
        ip_address_type: req.ip_address_type.map(convert::ip_address_type_from),
        tags: convert::tags_from(req.tags.unwrap_or_default()),
        certificate_name: req.certificate_name,
        viewer_minimum_tls: req.viewer_minimum_tls_protocol_version.map(convert::viewer_tls_from),
        default_root_object: req.default_root_object,
        custom_error_responses: convert::custom_errors_from(req.custom_error_responses.unwrap_or_default()),
        subdomain: req.subdomain_name,
    };
    let (view, op) = m.create_distribution(&crate::owner(ctx), new).await?;
    Ok(m::CreateDistributionResult {
        distribution: Some(convert::distribution(&view, true)),
        operation: Some(convert::operation(&op)),
    })
}

pub(crate) async fn get(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::GetDistributionsRequest,
) -> Result<m::GetDistributionsResult> {
    let single = req.distribution_name.is_some();
    let page =
        m.get_distributions(&crate::owner(ctx), req.distribution_name.as_deref(), req.page_token.as_deref()).await?;
    Ok(m::GetDistributionsResult {
        distributions: Some(page.items.iter().map(|d| convert::distribution(d, single)).collect()),
        next_page_token: page.next_token,
    })
}

pub(crate) async fn update(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::UpdateDistributionRequest,
) -> Result<m::UpdateDistributionResult> {
    refuse_unsupported(req.enable_waf, req.waf_rules.as_ref(), req.enable_private_origin_access)?;
    // useDefaultCertificate (default true) and certificateName choose the certificate:
    // a name attaches it; true without a name detaches; false needs a name.
    let certificate = match (req.certificate_name, req.use_default_certificate) {
        (Some(_), Some(true)) => {
            return Err(LightsailError::invalid(
                "InvalidCertificateChoice",
                "certificateName cannot be combined with useDefaultCertificate=true.",
                "Give certificateName with useDefaultCertificate=false, or useDefaultCertificate=true alone.",
            )
            .into());
        }
        (Some(name), _) => CertificateChange::Attach(name),
        (None, Some(true)) => CertificateChange::UseDefault,
        (None, Some(false)) => {
            return Err(LightsailError::invalid(
                "CertificateNameRequired",
                "useDefaultCertificate=false requires certificateName.",
                "Name the ISSUED certificate to attach in certificateName.",
            )
            .into());
        }
        (None, None) => CertificateChange::Keep,
    };
    let change = DistributionChange {
        origin: req.origin.map(convert::origin_from),
        default_behavior: req.default_cache_behavior.and_then(|b| b.behavior).map(convert::behavior_from),
        cache_settings: req.cache_behavior_settings.map(convert::cache_settings_from),
        cache_behaviors: req.cache_behaviors.map(convert::path_behaviors_from),
        is_enabled: req.is_enabled,
        viewer_minimum_tls: req.viewer_minimum_tls_protocol_version.map(convert::viewer_tls_from),
        certificate,
        default_root_object: req.default_root_object,
        custom_error_responses: req.custom_error_responses.map(convert::custom_errors_from),
    };
    let op = m
        .update_distribution(
            &crate::owner(ctx),
            &req.distribution_name,
            change,
            carapace_lightsail::records::OperationType::UpdateDistribution,
        )
        .await?;
    Ok(m::UpdateDistributionResult { operation: Some(convert::operation(&op)) })
}

pub(crate) async fn delete(
    m: &LightsailManager,
    ctx: &RequestContext,
    req: m::DeleteDistributionRequest,
) -> Result<m::DeleteDistributionResult> {
    let name = required(req.distribution_name, "distributionName")?;
    let op = m.delete_distribution(&crate::owner(ctx), &name).await?;
    Ok(m::DeleteDistributionResult { operation: Some(convert::operation(&op)) })
}

/// Members the model leaves optional that the operation cannot do without.
pub(crate) fn required(v: Option<String>, member: &str) -> Result<String> {
    v.ok_or_else(|| {
        LightsailError::invalid("MissingParameter", format!("{member} is required."), format!("Give {member}.")).into()
    })
}
