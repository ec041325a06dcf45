//! CreateDirectory, CreateMicrosoftAD, ConnectDirectory, DescribeDirectories,
//! DeleteDirectory, GetDirectoryLimits.

use carapace_ds::machine::DirectoryStage as Stage;
use carapace_ds::records::DirectoryKind;
use carapace_ds::{Directories, DirectoryView, DsError, NewDirectory, availability_zones};
use carapace_model::ds::{
    ConnectDirectoryRequest, ConnectDirectoryResult, CreateDirectoryRequest, CreateDirectoryResult,
    CreateMicrosoftADRequest, CreateMicrosoftADResult, DeleteDirectoryRequest, DeleteDirectoryResult,
    DescribeDirectoriesRequest, DescribeDirectoriesResult, DirectoryConnectSettingsDescription, DirectoryDescription,
    DirectoryLimits, DirectorySize, DirectoryStage, DirectoryType, DirectoryVpcSettingsDescription,
    GetDirectoryLimitsResult, RegionsInfo, Tag,
};
use carapace_proto::RequestContext;
use zeroize::Zeroizing;

use crate::error::Result;
use crate::{limit, ts};

/// Tags from the wire as pairs.
pub(crate) fn tag_pairs(tags: Option<Vec<Tag>>) -> Vec<(String, String)> {
    tags.unwrap_or_default().into_iter().map(|t| (t.key, t.value)).collect()
}

/// `CreateDirectory`: a Simple AD directory.
pub(crate) async fn create_directory(
    dirs: &Directories,
    ctx: &RequestContext,
    req: CreateDirectoryRequest,
) -> Result<CreateDirectoryResult> {
    let password = Zeroizing::new(req.password);
    // The model leaves VpcSettings optional, but a Simple AD always lives in a VPC.
    let vpc = req
        .vpc_settings
        .ok_or_else(|| DsError::InvalidParameter("VpcSettings is required to create a Simple AD directory.".into()))?;
    let new = NewDirectory {
        kind: DirectoryKind::SimpleAd,
        name: req.name,
        short_name: req.short_name,
        password,
        description: req.description,
        size: Some(req.size.as_str().to_owned()),
        edition: None,
        network_type: req.network_type.map(|n| n.as_str().to_owned()),
        vpc_id: vpc.vpc_id,
        subnet_ids: vpc.subnet_ids,
        customer_dns_ips: Vec::new(),
        customer_dns_ips_v6: Vec::new(),
        customer_user_name: None,
        tags: tag_pairs(req.tags),
    };
    let id = dirs.create(&ctx.scope(), new).await?;
    Ok(CreateDirectoryResult { directory_id: Some(id) })
}

/// `CreateMicrosoftAD`: a Managed Microsoft AD directory.
pub(crate) async fn create_microsoft_ad(
    dirs: &Directories,
    ctx: &RequestContext,
    req: CreateMicrosoftADRequest,
) -> Result<CreateMicrosoftADResult> {
    let new = NewDirectory {
        kind: DirectoryKind::MicrosoftAd,
        name: req.name,
        short_name: req.short_name,
        password: Zeroizing::new(req.password),
        description: req.description,
        size: None,
        // The model: "Enterprise is the default."
        edition: Some(req.edition.as_ref().map_or("Enterprise", |e| e.as_str()).to_owned()),
        network_type: req.network_type.map(|n| n.as_str().to_owned()),
        vpc_id: req.vpc_settings.vpc_id,
        subnet_ids: req.vpc_settings.subnet_ids,
        customer_dns_ips: Vec::new(),
        customer_dns_ips_v6: Vec::new(),
        customer_user_name: None,
        tags: tag_pairs(req.tags),
    };
    let id = dirs.create(&ctx.scope(), new).await?;
    Ok(CreateMicrosoftADResult { directory_id: Some(id) })
}

/// `ConnectDirectory`: an AD Connector to the customer's domain controllers.
pub(crate) async fn connect_directory(
    dirs: &Directories,
    ctx: &RequestContext,
    req: ConnectDirectoryRequest,
) -> Result<ConnectDirectoryResult> {
    let settings = req.connect_settings;
    let new = NewDirectory {
        kind: DirectoryKind::AdConnector,
        name: req.name,
        short_name: req.short_name,
        password: Zeroizing::new(req.password),
        description: req.description,
        size: Some(req.size.as_str().to_owned()),
        edition: None,
        network_type: req.network_type.map(|n| n.as_str().to_owned()),
        vpc_id: settings.vpc_id,
        subnet_ids: settings.subnet_ids,
        customer_dns_ips: settings.customer_dns_ips.unwrap_or_default(),
        customer_dns_ips_v6: settings.customer_dns_ips_v6.unwrap_or_default(),
        customer_user_name: Some(settings.customer_user_name),
        tags: tag_pairs(req.tags),
    };
    let id = dirs.create(&ctx.scope(), new).await?;
    Ok(ConnectDirectoryResult { directory_id: Some(id) })
}

/// `DescribeDirectories`.
pub(crate) async fn describe_directories(
    dirs: &Directories,
    ctx: &RequestContext,
    req: DescribeDirectoriesRequest,
) -> Result<DescribeDirectoriesResult> {
    let scope = ctx.scope();
    let page = dirs.describe(&scope, req.directory_ids.as_deref(), limit(req.limit), req.next_token.as_deref()).await?;
    Ok(DescribeDirectoriesResult {
        directory_descriptions: Some(page.items.iter().map(|v| description(&scope, &ctx.region, v)).collect()),
        next_token: page.next_token,
    })
}

/// `DeleteDirectory`.
pub(crate) async fn delete_directory(
    dirs: &Directories,
    ctx: &RequestContext,
    req: DeleteDirectoryRequest,
) -> Result<DeleteDirectoryResult> {
    dirs.delete(&ctx.scope(), &req.directory_id).await?;
    Ok(DeleteDirectoryResult { directory_id: Some(req.directory_id) })
}

/// `GetDirectoryLimits`.
pub(crate) async fn get_directory_limits(dirs: &Directories, ctx: &RequestContext) -> Result<GetDirectoryLimitsResult> {
    let l = dirs.limits(&ctx.scope()).await?;
    let n = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
    Ok(GetDirectoryLimitsResult {
        directory_limits: Some(DirectoryLimits {
            cloud_only_directories_limit: Some(n(l.simple_ad.limit)),
            cloud_only_directories_current_count: Some(n(l.simple_ad.current)),
            cloud_only_directories_limit_reached: Some(l.simple_ad.current >= l.simple_ad.limit),
            cloud_only_microsoft_ad_limit: Some(n(l.microsoft_ad.limit)),
            cloud_only_microsoft_ad_current_count: Some(n(l.microsoft_ad.current)),
            cloud_only_microsoft_ad_limit_reached: Some(l.microsoft_ad.current >= l.microsoft_ad.limit),
            connected_directories_limit: Some(n(l.ad_connector.limit)),
            connected_directories_current_count: Some(n(l.ad_connector.current)),
            connected_directories_limit_reached: Some(l.ad_connector.current >= l.ad_connector.limit),
        }),
    })
}

/// A directory as `DescribeDirectories` shows it.
///
/// Every type shows `DesiredNumberOfDomainControllers`: 2 for Managed Microsoft AD (the two
/// controllers it is created with), 0 for the others (the AWS CLI's `describe-directories`
/// example; moto's `test_ds_describe_directories` and `test_ds_connect_directory_describe`
/// check it). Managed Microsoft AD also shows a `Size` (the CLI example's Standard edition
/// directory reads `Small`; Enterprise, the default, and Hybrid are `Large`) and its
/// `RegionsInfo`: created here, replicated nowhere.
fn description(scope: &str, region: &str, view: &DirectoryView) -> DirectoryDescription {
    let d = &view.record;
    let active = view.stage == Stage::Active;
    let azs = Some(availability_zones(scope, d.subnet_ids.len()));
    let (vpc_settings, connect_settings) = match d.kind {
        DirectoryKind::SimpleAd | DirectoryKind::MicrosoftAd => (
            Some(DirectoryVpcSettingsDescription {
                vpc_id: Some(d.vpc_id.clone()),
                subnet_ids: Some(d.subnet_ids.clone()),
                security_group_id: Some(d.security_group_id.clone()),
                availability_zones: azs,
            }),
            None,
        ),
        DirectoryKind::AdConnector => (
            None,
            Some(DirectoryConnectSettingsDescription {
                vpc_id: Some(d.vpc_id.clone()),
                subnet_ids: Some(d.subnet_ids.clone()),
                customer_user_name: d.customer_user_name.clone(),
                security_group_id: Some(d.security_group_id.clone()),
                availability_zones: azs,
                // The connector's own addresses in the customer's subnets: synthetic.
                connect_ips: active.then(|| vec!["10.0.0.10".to_owned(), "10.0.1.10".to_owned()]),
                connect_ips_v6: None,
            }),
        ),
    };
    DirectoryDescription {
        directory_id: Some(d.id.clone()),
        name: Some(d.name.clone()),
        short_name: Some(d.short_name.clone()),
        size: match d.kind {
            DirectoryKind::MicrosoftAd if d.edition.as_deref() == Some("Standard") => Some(DirectorySize::Small),
            DirectoryKind::MicrosoftAd => Some(DirectorySize::Large),
            _ => d.size.as_deref().and_then(|s| s.parse().ok()),
        },
        edition: d.edition.as_deref().and_then(|s| s.parse().ok()),
        alias: Some(d.id.clone()),
        access_url: Some(format!("{}.awsapps.com", d.id)),
        description: d.description.clone(),
        dns_ip_addrs: active.then(|| d.dns_ip_addrs()),
        dns_ipv6_addrs: (active && !d.customer_dns_ips_v6.is_empty()).then(|| d.customer_dns_ips_v6.clone()),
        stage: Some(match view.stage {
            Stage::Requested => DirectoryStage::Requested,
            Stage::Creating => DirectoryStage::Creating,
            Stage::Active => DirectoryStage::Active,
        }),
        launch_time: Some(ts(d.created_ms)),
        stage_last_updated_date_time: Some(ts(view.stage_since_ms)),
        r#type: Some(match d.kind {
            DirectoryKind::SimpleAd => DirectoryType::SimpleAD,
            DirectoryKind::MicrosoftAd => DirectoryType::MicrosoftAD,
            DirectoryKind::AdConnector => DirectoryType::ADConnector,
        }),
        vpc_settings,
        connect_settings,
        sso_enabled: Some(false),
        desired_number_of_domain_controllers: Some(if d.kind == DirectoryKind::MicrosoftAd { 2 } else { 0 }),
        regions_info: (d.kind == DirectoryKind::MicrosoftAd)
            .then(|| RegionsInfo { primary_region: Some(region.to_owned()), additional_regions: Some(Vec::new()) }),
        network_type: d.network_type.as_deref().and_then(|s| s.parse().ok()),
        ..Default::default()
    }
}
