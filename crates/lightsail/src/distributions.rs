//! The distribution lifecycle: create, read, update (settings, certificate, bundle),
//! cache resets, delete.
//!
//! Every write of a distribution is one batch: the distribution row at the version read,
//! the host names it gains (inserted, so a name another distribution holds fails the batch)
//! and loses, and its operation records. Certificates are marked in use (ACM's `InUseBy`,
//! which also keeps them renewing and undeletable) *before* a distribution names them and
//! unmarked *after* it stops; a crash in between leaves a mark DeleteCertificate recognises
//! as stale.

use carapace_kernel::error::chain;
use carapace_kernel::retry::commit;
use carapace_store::{Cursor, Key, Row, Write};

use super::cache::{
    Behavior, CacheSettingsInput, CustomErrorResponse, PathBehavior, check_custom_errors, check_default_root_object,
    check_path_behaviors,
};
use super::edge::{CacheResetStatus, DistributionStatus, LiveEdges};
use super::operations::{OperationView, decode_token, encode_token, fingerprint, new_operation, operation_writes};
use super::records::{
    self, AttachedCertificate, CACHE_RESET_KIND, CacheResetRecord, ConfigChange, DISTRIBUTION_KIND, DOMAIN_KIND,
    DistributionRecord, DomainClaim, OriginRecord, SubdomainRecord,
};
use super::{LightsailError, LightsailManager, Result, check_distribution_region, tags};
use crate::records::{IpAddressType, OperationType, OriginProtocolPolicy, ResourceType, ViewerMinimumTls};
use carapace_acm::{AcmError, CertificateManager, Owner, Status, Tag};

/// Distributions per GetDistributions page.
pub const PAGE_SIZE: usize = 100;
/// `viewerMinimumTlsProtocolVersion` when none is given.
pub const DEFAULT_VIEWER_TLS: ViewerMinimumTls = ViewerMinimumTls::Tls12_2021;
/// `ipAddressType` when none is given (the API reference's default).
pub const DEFAULT_IP_ADDRESS_TYPE: IpAddressType = IpAddressType::Dualstack;
/// `origin.responseTimeout` when none is given, and its bounds (the API reference's).
pub const DEFAULT_RESPONSE_TIMEOUT: i32 = 30;

/// `origin` as given.
#[derive(Debug, Clone, Default)]
pub struct OriginInput {
    /// `name`: a declared origin.
    pub name: String,
    /// `regionName`.
    pub region: Option<String>,
    /// `protocolPolicy`; `None`: the declared URL's scheme.
    pub protocol_policy: Option<OriginProtocolPolicy>,
    /// `responseTimeout`, seconds.
    pub response_timeout: Option<i32>,
    /// `ipAddressType`.
    pub ip_address_type: Option<IpAddressType>,
}

/// A CreateDistribution request.
#[derive(Debug, Clone)]
pub struct NewDistribution {
    /// `distributionName`.
    pub name: String,
    /// `origin`.
    pub origin: OriginInput,
    /// `defaultCacheBehavior.behavior`.
    pub default_behavior: Behavior,
    /// `cacheBehaviorSettings`.
    pub cache_settings: Option<CacheSettingsInput>,
    /// `cacheBehaviors`.
    pub cache_behaviors: Vec<PathBehavior>,
    /// `bundleId`.
    pub bundle_id: String,
    /// `ipAddressType`.
    pub ip_address_type: Option<IpAddressType>,
    /// `tags`.
    pub tags: Vec<Tag>,
    /// `certificateName`.
    pub certificate_name: Option<String>,
    /// `viewerMinimumTlsProtocolVersion`.
    pub viewer_minimum_tls: Option<ViewerMinimumTls>,
    /// `defaultRootObject`.
    pub default_root_object: Option<String>,
    /// `customErrorResponses`.
    pub custom_error_responses: Vec<CustomErrorResponse>,
    /// `subdomainName`.
    pub subdomain: Option<String>,
}

/// What UpdateDistribution does to the certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CertificateChange {
    /// Leave it.
    #[default]
    Keep,
    /// Attach this certificate (by name).
    Attach(String),
    /// Go back to the default certificate.
    UseDefault,
}

/// An UpdateDistribution request: absent members keep their values, except that
/// `cache_settings` replaces the settings whole when present.
#[derive(Debug, Clone, Default)]
pub struct DistributionChange {
    /// `origin`.
    pub origin: Option<OriginInput>,
    /// `defaultCacheBehavior.behavior`.
    pub default_behavior: Option<Behavior>,
    /// `cacheBehaviorSettings`.
    pub cache_settings: Option<CacheSettingsInput>,
    /// `cacheBehaviors`.
    pub cache_behaviors: Option<Vec<PathBehavior>>,
    /// `isEnabled`.
    pub is_enabled: Option<bool>,
    /// `viewerMinimumTlsProtocolVersion`.
    pub viewer_minimum_tls: Option<ViewerMinimumTls>,
    /// `certificateName` / `useDefaultCertificate`.
    pub certificate: CertificateChange,
    /// `defaultRootObject`.
    pub default_root_object: Option<String>,
    /// `customErrorResponses`.
    pub custom_error_responses: Option<Vec<CustomErrorResponse>>,
}

/// A distribution as a reader sees it.
#[derive(Debug, Clone)]
pub struct DistributionView {
    /// The record.
    pub record: DistributionRecord,
    /// `status`.
    pub status: DistributionStatus,
    /// `ableToUpdateBundle`.
    pub able_to_update_bundle: bool,
}

/// One page of GetDistributions.
#[derive(Debug, Clone)]
pub struct DistributionsPage {
    /// Oldest first.
    pub items: Vec<DistributionView>,
    /// `nextPageToken`.
    pub next_token: Option<String>,
}

/// The latest cache reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheResetView {
    /// `status`.
    pub status: CacheResetStatus,
    /// `createTime`, Unix milliseconds.
    pub created_ms: i64,
}

fn distribution_key(account: &str, name: &str) -> Key {
    Key::new(DISTRIBUTION_KIND, "", format!("{account}/{name}"))
}

fn domain_key(host: &str) -> Key {
    Key::new(DOMAIN_KIND, "", host.to_ascii_lowercase())
}

fn domain_in_use(host: &str) -> LightsailError {
    LightsailError::invalid(
        "DomainInUse",
        format!("The domain name {host} is already used by another distribution."),
        "A domain name can be served by one distribution at a time: detach its certificate from the other distribution first.",
    )
}

impl LightsailManager {
    fn view(&self, record: DistributionRecord, edges: &LiveEdges) -> DistributionView {
        let able =
            record.bundle_changed_ms.is_none_or(|t| self.now_ms() - t >= self.settings.bundle_change_interval_ms);
        DistributionView { status: edges.distribution_status(&record), able_to_update_bundle: able, record }
    }

    async fn load_distribution(&self, owner: &Owner, name: &str) -> Result<(DistributionRecord, Row)> {
        let row = self.core.store.get(&distribution_key(&owner.account, name)).await?;
        let row = row.ok_or_else(|| LightsailError::does_not_exist("Distribution", name))?;
        Ok((records::decode(&row.body)?, row))
    }

    fn bundle(&self, id: &str) -> Result<&super::Bundle> {
        match self.settings.bundles.iter().find(|b| b.id == id) {
            Some(b) if b.is_active => Ok(b),
            Some(_) => Err(LightsailError::invalid(
                "InactiveBundle",
                format!("The bundle {id} is not active and cannot be used."),
                "Choose an active bundle from GetDistributionBundles.",
            )),
            None => Err(LightsailError::invalid(
                "InvalidBundle",
                format!("The bundle {id} does not exist."),
                "Choose a bundleId from GetDistributionBundles.",
            )),
        }
    }

    fn origin(&self, owner: &Owner, input: &OriginInput) -> Result<OriginRecord> {
        let declared = self.settings.origins.iter().find(|o| {
            o.name == input.name
                && o.account.as_ref().is_none_or(|a| *a == owner.account)
                && match (&o.region, &input.region) {
                    (Some(r), Some(asked)) => r == asked,
                    _ => true,
                }
        });
        let Some(o) = declared else { return Err(LightsailError::does_not_exist("Resource", &input.name)) };
        let timeout = input.response_timeout.unwrap_or(DEFAULT_RESPONSE_TIMEOUT);
        if !(1..=60).contains(&timeout) {
            return Err(LightsailError::invalid(
                "InvalidResponseTimeout",
                format!("The origin responseTimeout must be between 1 and 60 seconds; got {timeout}."),
                "Give a responseTimeout from 1 to 60 (default 30).",
            ));
        }
        let default_policy =
            if o.is_https() { OriginProtocolPolicy::HttpsOnly } else { OriginProtocolPolicy::HttpOnly };
        Ok(OriginRecord {
            name: o.name.clone(),
            region: input.region.clone().or_else(|| o.region.clone()).unwrap_or_else(|| owner.region.clone()),
            resource_type: o.resource_type.clone(),
            url: o.url.clone(),
            public_dns: o.host().to_owned(),
            protocol_policy: input.protocol_policy.unwrap_or(default_policy),
            response_timeout_secs: timeout,
            ip_address_type: input.ip_address_type,
        })
    }

    /// The certificate a distribution may attach: the caller's, in us-east-1, ISSUED.
    async fn attachable(&self, owner: &Owner, name: &str) -> Result<(AttachedCertificate, Vec<String>)> {
        let (record, _) = self
            .load_certificate(owner, name)
            .await?
            .ok_or_else(|| LightsailError::does_not_exist("Certificate", name))?;
        let view =
            self.acm_view(owner, &record).await?.ok_or_else(|| LightsailError::does_not_exist("Certificate", name))?;
        if view.status != Status::Issued {
            return Err(LightsailError::invalid(
                "InvalidCertificateStatus",
                format!(
                    "The certificate {name} cannot be attached: its status is {}. Only certificates with a status of ISSUED can be attached to a distribution.",
                    view.status.as_str()
                ),
                "Validate the certificate's domains with the CNAME records from GetCertificates, wait for the status ISSUED, then try again.",
            ));
        }
        let attached = AttachedCertificate {
            name: record.name,
            scope: owner.scope(),
            acm_id: record.acm_id,
            acm_arn: record.acm_arn,
        };
        Ok((attached, view.record.sans))
    }

    /// Distributions of `account` that use the ACM certificate `acm_id`.
    pub(crate) async fn distributions_using(&self, account: &str, acm_id: &str) -> Result<Vec<String>> {
        Ok(self
            .account_distributions(account)
            .await?
            .into_iter()
            .filter(|d| d.certificate.as_ref().is_some_and(|c| c.acm_id == acm_id))
            .map(|d| d.name)
            .collect())
    }

    async fn account_distributions(&self, account: &str) -> Result<Vec<DistributionRecord>> {
        self.scan_all(DISTRIBUTION_KIND, "", Some(&format!("{account}/"))).await
    }

    /// Writes a distribution (new when `old` is `None`) with its host-name claims and its
    /// operation. `Ok(None)`: the distribution row changed under us (retry from a read).
    async fn write_distribution(
        &self,
        owner: &Owner,
        old: Option<(&DistributionRecord, &Row)>,
        new: &DistributionRecord,
        operation_type: OperationType,
        extra: Vec<Write>,
    ) -> Result<Option<OperationView>> {
        let old_hosts = old.map(|(d, _)| d.hosts()).unwrap_or_default();
        let new_hosts = new.hosts();
        let claim = DomainClaim {
            schema: records::SCHEMA,
            account: owner.account.clone(),
            distribution: new.name.clone(),
            distribution_id: new.id.clone(),
        };
        let now = self.now_ms();
        let key = distribution_key(&owner.account, &new.name);
        let mut writes = vec![Write::Put {
            row: Row { key: key.clone(), version: 0, created_ms: new.created_ms, body: records::encode(new)? },
            expect: old.map(|(_, row)| row.version),
        }];
        for host in new_hosts.iter().filter(|h| !old_hosts.contains(h)) {
            writes.push(Write::Put {
                row: Row { key: domain_key(host), version: 0, created_ms: now, body: records::encode(&claim)? },
                expect: None,
            });
        }
        for host in old_hosts.iter().filter(|h| !new_hosts.contains(h)) {
            if let Some(row) = self.core.store.get(&domain_key(host)).await? {
                writes.push(Write::Delete { key: row.key, expect: row.version });
            }
        }
        writes.extend(extra);
        let (mut op, _) = new_operation(owner, ResourceType::Distribution, &new.name, operation_type, now)?;
        // Only a new configuration version is something an edge applies (a bundle change is
        // not), so only then can an edge fail the operation.
        if old.is_none_or(|(d, _)| d.config_version != new.config_version) {
            op.change = Some(ConfigChange { distribution_id: new.id.clone(), config_version: new.config_version });
        }
        writes.extend(operation_writes(owner, &op)?);
        match self.core.store.apply(writes).await {
            Ok(_) => Ok(Some(OperationView::as_answered(op))),
            Err(carapace_store::Error::Conflict(k)) if k == key => {
                if old.is_none() {
                    return Err(LightsailError::name_exists(&new.name));
                }
                Ok(None)
            }
            // A certificate whose in-use mark is in the batch changed: read again.
            Err(carapace_store::Error::Conflict(k)) if CertificateManager::is_certificate_key(&k) => Ok(None),
            Err(carapace_store::Error::Conflict(k)) if k.kind == DOMAIN_KIND => {
                if old_hosts.contains(&k.id) {
                    return Ok(None); // a claim we were deleting changed: read again
                }
                if k.id == new.domain_name {
                    return Ok(None); // a random default domain collided: the caller draws again
                }
                if new.subdomain.as_ref().is_some_and(|s| s.host == k.id) {
                    return Err(LightsailError::invalid(
                        "SubdomainInUse",
                        format!("The subdomain {} is already in use.", k.id),
                        "Choose another subdomainName.",
                    ));
                }
                Err(domain_in_use(&k.id))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The writes that move a distribution's in-use mark from the certificate `old` to `new`
    /// (none when they are the same), at the certificates' versions read now: they go in the
    /// distribution's own batch, so the mark and the distribution change together or not at
    /// all, and a certificate that changed meanwhile fails the batch with a conflict on its
    /// row, which [`write_distribution`](Self::write_distribution) answers by reading again.
    async fn certificate_mark_writes(
        &self,
        owner: &Owner,
        distribution_arn: &str,
        old: Option<&AttachedCertificate>,
        new: Option<&AttachedCertificate>,
    ) -> Result<Vec<Write>> {
        if old.map(|c| &c.acm_arn) == new.map(|c| &c.acm_arn) {
            return Ok(Vec::new());
        }
        let mut writes = Vec::new();
        if let Some(c) = new {
            writes.extend(self.acm.in_use_writes(owner, &c.acm_arn, distribution_arn, true).await?);
        }
        if let Some(c) = old {
            match self.acm.in_use_writes(owner, &c.acm_arn, distribution_arn, false).await {
                Ok(w) => writes.extend(w),
                // A certificate deleted under the distribution has no mark left to clear.
                Err(AcmError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(writes)
    }

    /// CreateDistribution.
    pub async fn create_distribution(
        &self,
        owner: &Owner,
        req: NewDistribution,
    ) -> Result<(DistributionView, OperationView)> {
        check_distribution_region(owner)?;
        self.bundle(&req.bundle_id)?;
        let origin = self.origin(owner, &req.origin)?;
        let cache_settings = req.cache_settings.clone().unwrap_or_default().resolve(&|_| true)?;
        check_path_behaviors(&req.cache_behaviors)?;
        check_custom_errors(&req.custom_error_responses)?;
        if let Some(o) = &req.default_root_object {
            check_default_root_object(o)?;
        }
        tags::check(&req.tags)?;
        let subdomain = match &req.subdomain {
            Some(s) => {
                let label = s.to_ascii_lowercase();
                let ok = !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-');
                if !ok {
                    return Err(LightsailError::invalid(
                        "InvalidSubdomain",
                        format!("The subdomain name {s} is not a valid DNS label."),
                        "Use 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen.",
                    ));
                }
                Some(SubdomainRecord { host: format!("{label}.{}", self.settings.edge_domain), name: label })
            }
            None => None,
        };
        let certificate = match &req.certificate_name {
            Some(name) => Some(self.attachable(owner, name).await?),
            None => None,
        };
        let id = uuid::Uuid::new_v4().to_string();
        let arn = format!("arn:aws:lightsail:{}:{}:Distribution/{id}", owner.region, owner.account);
        let now = self.now_ms();
        let mut record = DistributionRecord {
            schema: records::SCHEMA,
            id,
            account: owner.account.clone(),
            name: req.name.clone(),
            arn: arn.clone(),
            support_code: format!("{}/{}", owner.account, super::random_alnum(12)?),
            created_ms: now,
            changed_ms: now,
            config_version: 1,
            domain_name: String::new(),
            subdomain,
            bundle_id: req.bundle_id.clone(),
            bundle_changed_ms: None,
            is_enabled: true,
            origin,
            default_behavior: req.default_behavior,
            cache_settings,
            cache_behaviors: req.cache_behaviors.clone(),
            ip_address_type: req.ip_address_type.unwrap_or(DEFAULT_IP_ADDRESS_TYPE),
            viewer_minimum_tls: req.viewer_minimum_tls.unwrap_or(DEFAULT_VIEWER_TLS),
            default_root_object: req.default_root_object.clone(),
            custom_error_responses: req.custom_error_responses.clone(),
            certificate: certificate.as_ref().map(|(c, _)| c.clone()),
            alternative_domain_names: certificate.as_ref().map(|(_, names)| names.clone()).unwrap_or_default(),
            tags: req.tags.clone(),
        };
        carapace_kernel::optimistic!(LightsailError, LightsailError::busy("distribution"), |_| {
            record.domain_name = format!("d{}.{}", super::random_alnum(13)?, self.settings.edge_domain);
            let marks = self.certificate_mark_writes(owner, &arn, None, record.certificate.as_ref()).await?;
            if let Some(op) =
                self.write_distribution(owner, None, &record, OperationType::CreateDistribution, marks).await?
            {
                let edges = self.live_edges().await?;
                return Ok(Some((self.view(record.clone(), &edges), op)));
            }
            Ok(None)
        })
    }

    /// GetDistributions.
    pub async fn get_distributions(
        &self,
        owner: &Owner,
        name: Option<&str>,
        page_token: Option<&str>,
    ) -> Result<DistributionsPage> {
        check_distribution_region(owner)?;
        let edges = self.live_edges().await?;
        if let Some(name) = name {
            let (record, _) = self.load_distribution(owner, name).await?;
            return Ok(DistributionsPage { items: vec![self.view(record, &edges)], next_token: None });
        }
        let f = fingerprint(&format!("distributions|{}", owner.account));
        let after = page_token.map(|t| decode_token(t, &f)).transpose()?;
        // Distributions share one global scope (the edge serves them all): the account's
        // come from the index, not from filtering every account's.
        let clause = super::index::account_clause(&owner.account);
        let rows = self.page_rows(DISTRIBUTION_KIND, "", Some(clause), after, PAGE_SIZE).await?;
        let more = rows.len() > PAGE_SIZE;
        let rows = &rows[..rows.len().min(PAGE_SIZE)];
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            match records::decode(&row.body) {
                Ok(d) => items.push(self.view(d, &edges)),
                Err(e) => {
                    tracing::error!(key = %row.key, error = chain(&e), "skipping an unreadable distribution")
                }
            }
        }
        let next_token = match rows.last() {
            Some(last) if more => {
                Some(encode_token(&Cursor { created_ms: last.created_ms, id: last.key.id.clone() }, &f)?)
            }
            _ => None,
        };
        Ok(DistributionsPage { items, next_token })
    }

    /// UpdateDistribution (and Attach/DetachCertificateToDistribution, which are its
    /// certificate part with their own operation types).
    pub async fn update_distribution(
        &self,
        owner: &Owner,
        name: &str,
        change: DistributionChange,
        operation_type: OperationType,
    ) -> Result<OperationView> {
        check_distribution_region(owner)?;
        let origin = change.origin.as_ref().map(|o| self.origin(owner, o)).transpose()?;
        let cache_settings = change.cache_settings.clone().map(|c| c.resolve(&|_| true)).transpose()?;
        if let Some(b) = &change.cache_behaviors {
            check_path_behaviors(b)?;
        }
        if let Some(e) = &change.custom_error_responses {
            check_custom_errors(e)?;
        }
        if let Some(o) = change.default_root_object.as_deref().filter(|o| !o.is_empty()) {
            check_default_root_object(o)?;
        }
        let certificate = match &change.certificate {
            CertificateChange::Attach(c) => Some(Some(self.attachable(owner, c).await?)),
            CertificateChange::UseDefault => Some(None),
            CertificateChange::Keep => None,
        };
        carapace_kernel::optimistic!(LightsailError, LightsailError::busy("distribution"), |_| {
            let (old, row) = self.load_distribution(owner, name).await?;
            let mut new = old.clone();
            if let Some(o) = &origin {
                new.origin = o.clone();
            }
            if let Some(b) = change.default_behavior {
                new.default_behavior = b;
            }
            if let Some(s) = &cache_settings {
                new.cache_settings = s.clone();
            }
            if let Some(b) = &change.cache_behaviors {
                new.cache_behaviors = b.clone();
            }
            if let Some(e) = change.is_enabled {
                new.is_enabled = e;
            }
            if let Some(t) = change.viewer_minimum_tls {
                new.viewer_minimum_tls = t;
            }
            if let Some(o) = &change.default_root_object {
                new.default_root_object = (!o.is_empty()).then(|| o.clone());
            }
            if let Some(e) = &change.custom_error_responses {
                new.custom_error_responses = e.clone();
            }
            if let Some(c) = &certificate {
                new.certificate = c.as_ref().map(|(c, _)| c.clone());
                new.alternative_domain_names = c.as_ref().map(|(_, names)| names.clone()).unwrap_or_default();
            }
            new.config_version = old.config_version + 1;
            new.changed_ms = self.now_ms();
            let marks = self
                .certificate_mark_writes(owner, &old.arn, old.certificate.as_ref(), new.certificate.as_ref())
                .await?;
            if let Some(op) = self.write_distribution(owner, Some((&old, &row)), &new, operation_type, marks).await? {
                return Ok(Some(op));
            }
            Ok(None)
        })
    }

    /// AttachCertificateToDistribution.
    pub async fn attach_certificate(
        &self,
        owner: &Owner,
        distribution: &str,
        certificate: &str,
    ) -> Result<OperationView> {
        let change =
            DistributionChange { certificate: CertificateChange::Attach(certificate.to_owned()), ..Default::default() };
        self.update_distribution(owner, distribution, change, OperationType::AttachCertificateToDistribution).await
    }

    /// DetachCertificateFromDistribution.
    pub async fn detach_certificate(&self, owner: &Owner, distribution: &str) -> Result<OperationView> {
        let change = DistributionChange { certificate: CertificateChange::UseDefault, ..Default::default() };
        self.update_distribution(owner, distribution, change, OperationType::DetachCertificateFromDistribution).await
    }

    /// UpdateDistributionBundle: once per [`super::LightsailSettings::bundle_change_interval_ms`].
    pub async fn update_distribution_bundle(
        &self,
        owner: &Owner,
        name: &str,
        bundle_id: &str,
    ) -> Result<OperationView> {
        check_distribution_region(owner)?;
        self.bundle(bundle_id)?;
        carapace_kernel::optimistic!(LightsailError, LightsailError::busy("distribution"), |_| {
            let (old, row) = self.load_distribution(owner, name).await?;
            if !self.view(old.clone(), &LiveEdges::default()).able_to_update_bundle {
                return Err(LightsailError::invalid(
                    "BundleUpdateNotAllowed",
                    format!("The bundle of distribution {name} was changed recently and cannot be changed again yet."),
                    "A distribution's bundle can be changed once per monthly billing cycle; check ableToUpdateBundle in GetDistributions.",
                ));
            }
            let mut new = old.clone();
            new.bundle_id = bundle_id.to_owned();
            new.bundle_changed_ms = Some(self.now_ms());
            if let Some(op) = self
                .write_distribution(
                    owner,
                    Some((&old, &row)),
                    &new,
                    OperationType::UpdateDistributionBundle,
                    Vec::new(),
                )
                .await?
            {
                return Ok(Some(op));
            }
            Ok(None)
        })
    }

    /// DeleteDistribution: the distribution, its host names and its latest cache reset.
    pub async fn delete_distribution(&self, owner: &Owner, name: &str) -> Result<OperationView> {
        check_distribution_region(owner)?;
        carapace_kernel::optimistic!(LightsailError, LightsailError::busy("distribution"), |_| {
            let (old, row) = self.load_distribution(owner, name).await?;
            let mut writes = vec![Write::Delete { key: row.key.clone(), expect: row.version }];
            for host in old.hosts() {
                if let Some(claim) = self.core.store.get(&domain_key(&host)).await? {
                    writes.push(Write::Delete { key: claim.key, expect: claim.version });
                }
            }
            let reset_key = Key::new(CACHE_RESET_KIND, "", format!("{}/{name}", owner.account));
            if let Some(reset) = self.core.store.get(&reset_key).await? {
                writes.push(Write::Delete { key: reset_key, expect: reset.version });
            }
            writes.extend(self.certificate_mark_writes(owner, &old.arn, old.certificate.as_ref(), None).await?);
            let (op, op_writes) = new_operation(
                owner,
                ResourceType::Distribution,
                name,
                OperationType::DeleteDistribution,
                self.now_ms(),
            )?;
            writes.extend(op_writes);
            Ok(commit(self.core.store.as_ref(), writes).await?.then(|| OperationView::as_answered(op)))
        })
    }

    /// ResetDistributionCache: records the reset; edges purge when they see it.
    pub async fn reset_distribution_cache(&self, owner: &Owner, name: &str) -> Result<(CacheResetView, OperationView)> {
        check_distribution_region(owner)?;
        carapace_kernel::optimistic!(LightsailError, LightsailError::busy("distribution"), |_| {
            let (d, _) = self.load_distribution(owner, name).await?;
            let now = self.now_ms();
            let (op, op_writes) =
                new_operation(owner, ResourceType::Distribution, name, OperationType::ResetDistributionCache, now)?;
            let reset =
                CacheResetRecord { schema: records::SCHEMA, id: op.id.clone(), distribution_id: d.id, created_ms: now };
            let key = Key::new(CACHE_RESET_KIND, "", format!("{}/{name}", owner.account));
            let expect = self.core.store.get(&key).await?.map(|r| r.version);
            let mut writes = vec![Write::Put {
                row: Row { key, version: 0, created_ms: now, body: records::encode(&reset)? },
                expect,
            }];
            writes.extend(op_writes);
            // As answered, the purge has just started.
            let view = CacheResetView { status: CacheResetStatus::InProgress, created_ms: now };
            Ok(commit(self.core.store.as_ref(), writes).await?.then(|| (view, OperationView::as_answered(op))))
        })
    }

    /// GetDistributionLatestCacheReset: `None` when the cache was never reset.
    pub async fn latest_cache_reset(&self, owner: &Owner, name: &str) -> Result<Option<CacheResetView>> {
        check_distribution_region(owner)?;
        let (d, _) = self.load_distribution(owner, name).await?;
        let key = Key::new(CACHE_RESET_KIND, "", format!("{}/{name}", owner.account));
        let Some(row) = self.core.store.get(&key).await? else { return Ok(None) };
        let reset: CacheResetRecord = records::decode(&row.body)?;
        if reset.distribution_id != d.id {
            return Ok(None); // left by an earlier distribution of the same name
        }
        let edges = self.live_edges().await?;
        Ok(Some(CacheResetView { status: edges.reset_status(&reset), created_ms: reset.created_ms }))
    }

    /// The distribution's id (metrics key on it).
    pub(crate) async fn distribution_id(&self, owner: &Owner, name: &str) -> Result<String> {
        check_distribution_region(owner)?;
        Ok(self.load_distribution(owner, name).await?.0.id)
    }
}
