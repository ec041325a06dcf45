//! Directory Service: directories, registered certificates, LDAPS, client authentication.
//!
//! The rules live here; the `carapace-ds` crate maps its DTOs onto [`Directories`] and
//! runs the network part of the LDAPS check with `carapace_checks::ldaps` (TCP, TLS, a root
//! DSE search), which takes a [`LdapsPlan`] and answers with a [`LdapsFailure`] or success.
//!
//! Storage: directories are rows of kind [`DIRECTORY_KIND`] under `<account>/<region>`
//! with id `d-<10 hex>`; certificates are rows of kind [`CERTIFICATE_KIND`] with id
//! `<directory id>/<certificate id>`, so a prefix scan lists one directory's certificates.
//! Every change that depends on another row (a limit, "the last certificate") writes the
//! directory row at the version it read, so concurrent requests serialise on it and the
//! loser retries.
//!
//! Time-driven states (directory stages, certificate registration) are computed from
//! stored timestamps on read (see [`records`]): durable without a worker. The LDAPS check,
//! which does I/O, is identified by a check id stored with the `Enabling` status; whoever
//! runs it reports back through [`Directories::finish_ldaps_check`], which ignores stale ids.
//!
//! Deliberate differences from AWS, all because Carapace has no EC2 and runs no domain
//! controllers: VPC and subnet ids are checked only against the model's patterns (and that
//! there are two distinct subnets); availability zones, security groups and the DNS
//! addresses of Simple AD / Managed Microsoft AD are synthetic; `DeleteDirectory` removes
//! the directory at once instead of passing through `Deleting`.

pub mod certificate;
pub mod index;
pub mod jobs;
pub mod machine;
pub mod password;
pub mod records;

use std::future::Future;

use carapace_store::{Cursor, Key, Order, Row, Scan, Write};
use zeroize::Zeroizing;

use crate::runtime::Core;
use certificate::CertificateProblem;
use machine::{CertificateEvent, CertificateState, ClientAuthEvent, DirectoryStage, LdapsEvent, LdapsStatus};
use records::{
    CertificateKind, CertificateRecord, ClientAuthKind, ClientAuthRecord, DirectoryKind, DirectoryRecord,
    LDAPS_CHECK_DELAY_MS,
};

/// The LDAPS check's plan and failures are plain data of `carapace-checks`, which runs it.
pub use carapace_checks::ldaps::{LdapsFailure, LdapsPlan};

/// Row kind of directories.
pub const DIRECTORY_KIND: &str = "ds.directory";
/// Row kind of registered certificates.
pub const CERTIFICATE_KIND: &str = "ds.certificate";
/// Row kind of the per-scope quota guard (one row, id `directories`): creates write it at
/// the version they read, so two creates cannot both take the last slot.
const QUOTA_KIND: &str = "ds.quota";

/// Tags one directory may carry (AWS quota).
pub const MAX_TAGS: usize = 50;
/// Default page size when a request gives no (or a zero) `Limit`.
pub const DEFAULT_PAGE: usize = 100;
/// How often a request retries after losing a write race before giving up.
const MAX_ATTEMPTS: usize = 8;

/// Directories one account may have per region, by kind (AWS default quotas).
pub fn directory_limit(kind: DirectoryKind) -> usize {
    match kind {
        DirectoryKind::SimpleAd => 10,
        DirectoryKind::MicrosoftAd => 20,
        DirectoryKind::AdConnector => 10,
    }
}

/// Everything that can go wrong, one variant per AWS error the rules produce.
#[derive(Debug, thiserror::Error)]
pub enum DsError {
    /// No such directory in the caller's account and region. Directory operations call
    /// this `EntityDoesNotExistException`, certificate and LDAPS operations
    /// `DirectoryDoesNotExistException`.
    #[error("Directory {0} does not exist.")]
    DirectoryNotFound(String),
    /// `CertificateDoesNotExistException`.
    #[error("Certificate {0} does not exist.")]
    CertificateNotFound(String),
    /// `DirectoryLimitExceededException`.
    #[error("{0}")]
    DirectoryLimitExceeded(String),
    /// `InvalidParameterException`.
    #[error("{0}")]
    InvalidParameter(String),
    /// `InvalidCertificateException`.
    #[error(transparent)]
    InvalidCertificate(#[from] CertificateProblem),
    /// `CertificateAlreadyExistsException`.
    #[error("{0}")]
    CertificateAlreadyExists(String),
    /// `CertificateLimitExceededException`.
    #[error("{0}")]
    CertificateLimitExceeded(String),
    /// `UnsupportedOperationException`.
    #[error("{0}")]
    Unsupported(String),
    /// `DirectoryUnavailableException`.
    #[error("{0}")]
    DirectoryUnavailable(String),
    /// `CertificateInUseException`.
    #[error("{0}")]
    CertificateInUse(String),
    /// `NoAvailableCertificateException`.
    #[error("{0}")]
    NoAvailableCertificate(String),
    /// `InvalidLDAPSStatusException`.
    #[error("{0}")]
    InvalidLdapsStatus(String),
    /// `InvalidClientAuthStatusException`.
    #[error("{0}")]
    InvalidClientAuthStatus(String),
    /// `InvalidNextTokenException`.
    #[error("The NextToken value is not valid.")]
    InvalidNextToken,
    /// `TagLimitExceededException`.
    #[error("{0}")]
    TagLimitExceeded(String),
    /// The store failed (a fault, never shown to a client).
    #[error(transparent)]
    Store(#[from] carapace_store::Error),
    /// Something else internal failed (a fault, never shown to a client).
    #[error("internal: {0}")]
    Internal(String),
}

/// Result alias.
pub type Result<T, E = DsError> = std::result::Result<T, E>;

/// What `CreateDirectory`, `CreateMicrosoftAD` and `ConnectDirectory` ask for.
#[derive(Debug, Clone)]
pub struct NewDirectory {
    /// Which API created it.
    pub kind: DirectoryKind,
    /// Fully qualified domain name.
    pub name: String,
    /// NetBIOS name.
    pub short_name: Option<String>,
    /// Administrator (or AD Connector service account) password; hashed, then dropped.
    pub password: Zeroizing<String>,
    /// Free text.
    pub description: Option<String>,
    /// `Small` / `Large`.
    pub size: Option<String>,
    /// `Standard` / `Enterprise` / `Hybrid`.
    pub edition: Option<String>,
    /// `IPv4` / `IPv6` / `Dual-stack`.
    pub network_type: Option<String>,
    /// VPC id.
    pub vpc_id: String,
    /// Subnet ids.
    pub subnet_ids: Vec<String>,
    /// AD Connector: customer domain controllers (IPv4).
    pub customer_dns_ips: Vec<String>,
    /// AD Connector: customer domain controllers (IPv6).
    pub customer_dns_ips_v6: Vec<String>,
    /// AD Connector: service account name.
    pub customer_user_name: Option<String>,
    /// Tags to start with.
    pub tags: Vec<(String, String)>,
}

/// A directory as read at one instant.
#[derive(Debug, Clone)]
pub struct DirectoryView {
    /// The stored record.
    pub record: DirectoryRecord,
    /// Its stage now.
    pub stage: DirectoryStage,
    /// When that stage began, Unix milliseconds.
    pub stage_since_ms: i64,
}

/// A registered certificate as read at one instant.
#[derive(Debug, Clone)]
pub struct CertificateView {
    /// The stored record.
    pub record: CertificateRecord,
    /// Its state now.
    pub state: CertificateState,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_token: Option<String>,
}

/// Count and limit of one kind of directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitUsage {
    /// The quota.
    pub limit: usize,
    /// Directories that exist.
    pub current: usize,
}

/// `GetDirectoryLimits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Simple AD ("cloud only directories").
    pub simple_ad: LimitUsage,
    /// Managed Microsoft AD.
    pub microsoft_ad: LimitUsage,
    /// AD Connector ("connected directories").
    pub ad_connector: LimitUsage,
}

/// What to register.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// `CertificateData` (PEM).
    pub data: String,
    /// What for.
    pub kind: CertificateKind,
    /// `ClientCertAuthSettings.OCSPUrl`.
    pub ocsp_url: Option<String>,
}

/// An LDAPS check that is due: who runs it reports back with this id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCheck {
    /// The check's id.
    pub check_id: String,
    /// Earliest time to run it, Unix milliseconds.
    pub due_ms: i64,
}

/// `DescribeLDAPSSettings` for one directory.
#[derive(Debug, Clone)]
pub struct LdapsView {
    /// Status.
    pub status: LdapsStatus,
    /// `LDAPSStatusReason`.
    pub reason: Option<String>,
    /// `LastUpdatedDateTime`, Unix milliseconds.
    pub updated_ms: Option<i64>,
    /// Set while `Enabling`: the check the status waits for.
    pub pending: Option<PendingCheck>,
}

/// The Directory Service rules over the core's store and clock.
#[derive(Clone)]
pub struct Directories {
    core: Core,
    step_ms: i64,
}

impl Directories {
    /// The rules over these handles.
    pub fn new(core: Core) -> Self {
        Self { core, step_ms: records::DIRECTORY_STEP_MS }
    }

    /// Sets how long new directories stay in each of `Requested` and `Creating`.
    pub fn with_directory_step_ms(mut self, step_ms: i64) -> Self {
        self.step_ms = step_ms.max(0);
        self
    }

    fn now(&self) -> i64 {
        self.core.clock.now_ms()
    }

    // ----- directories ---------------------------------------------------------------

    /// Creates a directory; returns its id.
    pub async fn create(&self, scope: &str, new: NewDirectory) -> Result<String> {
        check_new_directory(&new)?;
        let password = new.password.clone();
        // PBKDF2 is deliberately slow: keep it off the async workers.
        let password_hash = tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|e| DsError::Internal(e.to_string()))?
            .map_err(DsError::Internal)?;
        retry(|| self.try_create(scope, &new, &password_hash)).await
    }

    async fn try_create(&self, scope: &str, new: &NewDirectory, password_hash: &str) -> Result<String> {
        let store = &self.core.store;
        let quota_key = Key::new(QUOTA_KIND, scope, "directories");
        let quota = store.get(&quota_key).await?;
        let existing = self.all_directories(scope).await?;
        let limit = directory_limit(new.kind);
        if existing.iter().filter(|d| d.kind == new.kind).count() >= limit {
            return Err(DsError::DirectoryLimitExceeded(format!(
                "The maximum number of {} directories ({limit}) for this account in {} has been reached.",
                new.kind.as_str(),
                region_of(scope)
            )));
        }
        let now = self.now();
        let record = DirectoryRecord {
            id: format!("d-{}", random_hex(5)?),
            kind: new.kind,
            name: new.name.clone(),
            short_name: new
                .short_name
                .clone()
                .unwrap_or_else(|| new.name.split('.').next().unwrap_or(&new.name).to_owned()),
            description: new.description.clone(),
            size: new.size.clone(),
            edition: match new.kind {
                DirectoryKind::MicrosoftAd => Some(new.edition.clone().unwrap_or_else(|| "Enterprise".into())),
                DirectoryKind::SimpleAd | DirectoryKind::AdConnector => None,
            },
            network_type: new.network_type.clone(),
            vpc_id: new.vpc_id.clone(),
            subnet_ids: new.subnet_ids.clone(),
            customer_dns_ips: new.customer_dns_ips.clone(),
            customer_dns_ips_v6: new.customer_dns_ips_v6.clone(),
            customer_user_name: new.customer_user_name.clone(),
            password_hash: password_hash.to_owned(),
            security_group_id: format!("sg-{}", &random_hex(9)?[..17]),
            created_ms: now,
            step_ms: self.step_ms,
            tags: new.tags.clone(),
            ldaps: Default::default(),
            client_auth: Vec::new(),
        };
        let quota_row = Row { key: quota_key, version: 0, created_ms: now, body: b"{}".to_vec() };
        store
            .apply(vec![
                Write::Put { row: quota_row, expect: quota.map(|r| r.version) },
                Write::Put { row: directory_row(scope, &record, now)?, expect: None },
            ])
            .await?;
        Ok(record.id)
    }

    /// `DescribeDirectories`: the given ids (each must exist), or a page of all.
    pub async fn describe(
        &self,
        scope: &str,
        ids: Option<&[String]>,
        limit: Option<usize>,
        token: Option<&str>,
    ) -> Result<Page<DirectoryView>> {
        let now = self.now();
        if let Some(ids) = ids {
            if ids.is_empty() {
                return Err(DsError::InvalidParameter("DirectoryIds must not be an empty list.".into()));
            }
            let mut seen = std::collections::HashSet::new();
            let mut items = Vec::new();
            for id in ids.iter().filter(|id| seen.insert(id.as_str())) {
                let (record, _) = self.directory(scope, id).await?;
                items.push(view(record, now));
            }
            return Ok(Page { items, next_token: None });
        }
        let limit = page_size(limit);
        let after = token.map(decode_cursor).transpose()?;
        let rows = self
            .core
            .store
            .scan(Scan {
                kind: DIRECTORY_KIND,
                scope,
                id_prefix: None,
                after,
                order: Order::Ascending,
                limit: limit + 1,
            })
            .await?;
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(limit);
        let mut last = None;
        for row in rows.into_iter().take(limit) {
            last = Some(Cursor { created_ms: row.created_ms, id: row.key.id.clone() });
            items.push(view(decode::<DirectoryRecord>(&row)?, now));
        }
        Ok(Page { items, next_token: if more { last.map(|c| encode_cursor(&c)) } else { None } })
    }

    /// `DeleteDirectory`: removes the directory and its certificates at once.
    pub async fn delete(&self, scope: &str, id: &str) -> Result<()> {
        retry(|| async {
            let (_, version) = self.directory(scope, id).await?;
            let mut writes = vec![Write::Delete { key: Key::new(DIRECTORY_KIND, scope, id), expect: version }];
            for row in self.certificate_rows(scope, id).await? {
                writes.push(Write::Delete { key: row.key, expect: row.version });
            }
            self.core.store.apply(writes).await?;
            Ok(())
        })
        .await
    }

    /// `GetDirectoryLimits`.
    pub async fn limits(&self, scope: &str) -> Result<Limits> {
        let all = self.all_directories(scope).await?;
        let usage =
            |kind| LimitUsage { limit: directory_limit(kind), current: all.iter().filter(|d| d.kind == kind).count() };
        Ok(Limits {
            simple_ad: usage(DirectoryKind::SimpleAd),
            microsoft_ad: usage(DirectoryKind::MicrosoftAd),
            ad_connector: usage(DirectoryKind::AdConnector),
        })
    }

    // ----- tags ----------------------------------------------------------------------

    /// `AddTagsToResource`: adds or overwrites.
    pub async fn add_tags(&self, scope: &str, id: &str, tags: &[(String, String)]) -> Result<()> {
        check_tag_keys(tags.iter().map(|(k, _)| k.as_str()))?;
        retry(|| async {
            let (mut record, version) = self.directory(scope, id).await?;
            for (k, v) in tags {
                match record.tags.iter_mut().find(|(key, _)| key == k) {
                    Some(existing) => existing.1 = v.clone(),
                    None => record.tags.push((k.clone(), v.clone())),
                }
            }
            if record.tags.len() > MAX_TAGS {
                return Err(DsError::TagLimitExceeded(format!(
                    "A directory can have at most {MAX_TAGS} tags; this request would give {id} {}.",
                    record.tags.len()
                )));
            }
            self.put_directory(scope, &record, version).await
        })
        .await
    }

    /// `RemoveTagsFromResource`: keys that are not there are ignored.
    pub async fn remove_tags(&self, scope: &str, id: &str, keys: &[String]) -> Result<()> {
        check_tag_keys(keys.iter().map(String::as_str))?;
        retry(|| async {
            let (mut record, version) = self.directory(scope, id).await?;
            record.tags.retain(|(k, _)| !keys.contains(k));
            self.put_directory(scope, &record, version).await
        })
        .await
    }

    /// `ListTagsForResource`.
    pub async fn list_tags(
        &self,
        scope: &str,
        id: &str,
        limit: Option<usize>,
        token: Option<&str>,
    ) -> Result<Page<(String, String)>> {
        let (record, _) = self.directory(scope, id).await?;
        offset_page(record.tags, limit, token)
    }

    // ----- certificates --------------------------------------------------------------

    /// `RegisterCertificate`; returns the certificate id.
    pub async fn register_certificate(&self, scope: &str, directory_id: &str, new: &NewCertificate) -> Result<String> {
        retry(|| self.try_register(scope, directory_id, new)).await
    }

    async fn try_register(&self, scope: &str, directory_id: &str, new: &NewCertificate) -> Result<String> {
        let now = self.now();
        let (directory, version) = self.directory(scope, directory_id).await?;
        if !new.kind.supported_on(directory.kind) {
            return Err(DsError::Unsupported(format!(
                "{} certificates are not supported for {} directories.",
                new.kind.as_str(),
                directory.kind.as_str()
            )));
        }
        require_active(&directory, now)?;
        let inspected = certificate::inspect(&new.data, now)?;
        // Rows of finished deregistrations are swept here, in the same batch, the next time
        // a certificate is added: nothing else reads them.
        let mut live = Vec::new();
        let mut swept = Vec::new();
        for row in self.certificate_rows(scope, directory_id).await? {
            let record: CertificateRecord = decode(&row)?;
            let state = record.state_at(now);
            if state.is_live() {
                live.push(CertificateView { record, state });
            } else if state == CertificateState::Deregistered {
                swept.push(Write::Delete { key: row.key, expect: row.version });
            }
        }
        if live.iter().any(|c| c.record.kind == new.kind && c.record.fingerprint == inspected.fingerprint) {
            return Err(DsError::CertificateAlreadyExists(format!(
                "The certificate is already registered with directory {directory_id}."
            )));
        }
        let limit = new.kind.limit();
        if live.iter().filter(|c| c.record.kind == new.kind).count() >= limit {
            return Err(DsError::CertificateLimitExceeded(format!(
                "Directory {directory_id} already has the maximum of {limit} {} certificates.",
                new.kind.as_str()
            )));
        }
        let record = CertificateRecord {
            id: format!("c-{}", random_hex(5)?),
            directory_id: directory_id.to_owned(),
            kind: new.kind,
            pem: inspected.pem,
            common_name: inspected.common_name,
            not_after_ms: inspected.not_after_ms,
            fingerprint: inspected.fingerprint,
            ocsp_url: new.ocsp_url.clone(),
            registered_ms: now,
            state: CertificateState::Registering,
            state_since_ms: now,
        };
        // Rewriting the directory at the version read serialises this against other
        // registrations (limits, duplicates) and against LDAPS / deregistration changes.
        let mut writes = vec![
            Write::Put { row: directory_row(scope, &directory, now)?, expect: Some(version) },
            Write::Put { row: certificate_row(scope, &record, now)?, expect: None },
        ];
        writes.extend(swept);
        self.core.store.apply(writes).await?;
        Ok(record.id)
    }

    /// `DescribeCertificate`.
    pub async fn describe_certificate(
        &self,
        scope: &str,
        directory_id: &str,
        certificate_id: &str,
    ) -> Result<CertificateView> {
        let now = self.now();
        let (directory, _) = self.directory(scope, directory_id).await?;
        require_certificates_supported(&directory)?;
        let (view, _) = self.certificate(scope, directory_id, certificate_id, now).await?;
        Ok(view)
    }

    /// `ListCertificates`: live and deregistering certificates, oldest first.
    pub async fn list_certificates(
        &self,
        scope: &str,
        directory_id: &str,
        limit: Option<usize>,
        token: Option<&str>,
    ) -> Result<Page<CertificateView>> {
        let now = self.now();
        let (directory, _) = self.directory(scope, directory_id).await?;
        require_certificates_supported(&directory)?;
        let limit = page_size(limit);
        let mut after = token.map(decode_cursor).transpose()?;
        let mut items: Vec<(Cursor, CertificateView)> = Vec::new();
        // The directory's certificates only, from the index (an id prefix would be a filter
        // on every certificate of the account). Deregistered rows are skipped, so a page may
        // need more than one scan.
        let clauses = [index::directory_clause(directory_id)];
        loop {
            let scan = Scan {
                kind: CERTIFICATE_KIND,
                scope,
                id_prefix: None,
                after: after.clone(),
                order: Order::Ascending,
                limit: limit + 1,
            };
            let page = self.core.store.scan_filtered(scan, &clauses, 10 * (limit + 1)).await?;
            let resume = page.resume;
            let exhausted = resume.is_none();
            for row in page.rows {
                let cursor = Cursor { created_ms: row.created_ms, id: row.key.id.clone() };
                let record: CertificateRecord = decode(&row)?;
                let state = record.state_at(now);
                if state != CertificateState::Deregistered {
                    items.push((cursor, CertificateView { record, state }));
                }
            }
            if exhausted || items.len() > limit {
                break;
            }
            after = resume;
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next_token = if more { items.last().map(|(c, _)| encode_cursor(c)) } else { None };
        Ok(Page { items: items.into_iter().map(|(_, v)| v).collect(), next_token })
    }

    /// `DeregisterCertificate`.
    pub async fn deregister_certificate(&self, scope: &str, directory_id: &str, certificate_id: &str) -> Result<()> {
        retry(|| async {
            let now = self.now();
            let (directory, version) = self.directory(scope, directory_id).await?;
            require_certificates_supported(&directory)?;
            require_active(&directory, now)?;
            let (target, cert_version) = self.certificate(scope, directory_id, certificate_id, now).await?;
            let next = target
                .state
                .on(CertificateEvent::DeregisterRequested)
                .map_err(|_| DsError::CertificateNotFound(certificate_id.to_owned()))?;
            let in_use = match target.record.kind {
                CertificateKind::ClientLdaps => {
                    matches!(directory.ldaps.status, LdapsStatus::Enabled | LdapsStatus::Enabling)
                }
                CertificateKind::ClientCertAuth => directory.any_client_auth_enabled(),
            };
            if in_use {
                let others = self
                    .live_certificates(scope, directory_id, now)
                    .await?
                    .into_iter()
                    .filter(|c| c.record.kind == target.record.kind && c.record.id != certificate_id)
                    .count();
                if others == 0 {
                    let what = match target.record.kind {
                        CertificateKind::ClientLdaps => "LDAPS",
                        CertificateKind::ClientCertAuth => "client certificate authentication",
                    };
                    return Err(DsError::CertificateInUse(format!(
                        "Certificate {certificate_id} is the last {} certificate and {what} is enabled for directory {directory_id}; disable {what} first.",
                        target.record.kind.as_str()
                    )));
                }
            }
            let mut record = target.record;
            record.state = next;
            record.state_since_ms = now;
            self.core
                .store
                .apply(vec![
                    Write::Put { row: directory_row(scope, &directory, now)?, expect: Some(version) },
                    Write::Put { row: certificate_row(scope, &record, now)?, expect: Some(cert_version) },
                ])
                .await?;
            Ok(())
        })
        .await
    }

    // ----- client LDAPS --------------------------------------------------------------

    /// `EnableLDAPS`: moves to `Enabling` and returns the check to run.
    pub async fn enable_ldaps(&self, scope: &str, directory_id: &str) -> Result<PendingCheck> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = self.directory(scope, directory_id).await?;
            require_ldaps_supported(&directory)?;
            require_active(&directory, now)?;
            let next = directory.ldaps.status.on(LdapsEvent::EnableRequested).map_err(|_| {
                DsError::InvalidLdapsStatus(format!(
                    "LDAPS is already {} for directory {directory_id}.",
                    directory.ldaps.status.as_str().to_lowercase()
                ))
            })?;
            let registered = self
                .live_certificates(scope, directory_id, now)
                .await?
                .into_iter()
                .any(|c| c.record.kind == CertificateKind::ClientLdaps && c.state == CertificateState::Registered);
            if !registered {
                return Err(DsError::NoAvailableCertificate(format!(
                    "Directory {directory_id} has no registered ClientLDAPS certificate."
                )));
            }
            let check = PendingCheck { check_id: random_hex(8)?, due_ms: now + LDAPS_CHECK_DELAY_MS };
            directory.ldaps.status = next;
            directory.ldaps.reason = None;
            directory.ldaps.updated_ms = Some(now);
            directory.ldaps.check_id = Some(check.check_id.clone());
            directory.ldaps.check_due_ms = check.due_ms;
            // The check is a job written with the status: a restart (or another node) runs it.
            let job = jobs::DsJob::LdapsCheck(jobs::LdapsCheckJob {
                scope: scope.to_owned(),
                directory_id: directory_id.to_owned(),
                check_id: check.check_id.clone(),
            });
            let enqueue =
                crate::jobs::JobSpec::to_new_job(&job, check.due_ms).map_err(|e| DsError::Internal(e.to_string()))?;
            let row = directory_row(scope, &directory, now)?;
            self.core.store.apply(vec![Write::Put { row, expect: Some(version) }, Write::Enqueue(enqueue)]).await?;
            self.core.wake_workers();
            Ok(check)
        })
        .await
    }

    /// `DisableLDAPS`.
    pub async fn disable_ldaps(&self, scope: &str, directory_id: &str) -> Result<()> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = self.directory(scope, directory_id).await?;
            require_ldaps_supported(&directory)?;
            require_active(&directory, now)?;
            let next = directory.ldaps.status.on(LdapsEvent::DisableRequested).map_err(|_| {
                DsError::InvalidLdapsStatus(format!("LDAPS is already disabled for directory {directory_id}."))
            })?;
            directory.ldaps.status = next;
            directory.ldaps.reason = None;
            directory.ldaps.updated_ms = Some(now);
            directory.ldaps.check_id = None;
            self.put_directory(scope, &directory, version).await
        })
        .await
    }

    /// `DescribeLDAPSSettings`.
    pub async fn describe_ldaps(&self, scope: &str, directory_id: &str) -> Result<LdapsView> {
        let (directory, _) = self.directory(scope, directory_id).await?;
        require_ldaps_supported(&directory)?;
        let ldaps = directory.ldaps;
        let pending = match (ldaps.status, ldaps.check_id) {
            (LdapsStatus::Enabling, Some(check_id)) => Some(PendingCheck { check_id, due_ms: ldaps.check_due_ms }),
            _ => None,
        };
        Ok(LdapsView { status: ldaps.status, reason: ldaps.reason, updated_ms: ldaps.updated_ms, pending })
    }

    /// What check `check_id` must verify, or `None` when it is stale (the directory is
    /// gone, or LDAPS was disabled or re-enabled since).
    pub async fn ldaps_plan(&self, scope: &str, directory_id: &str, check_id: &str) -> Result<Option<LdapsPlan>> {
        let now = self.now();
        let directory = match self.directory(scope, directory_id).await {
            Ok((d, _)) => d,
            Err(DsError::DirectoryNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        if directory.ldaps.status != LdapsStatus::Enabling || directory.ldaps.check_id.as_deref() != Some(check_id) {
            return Ok(None);
        }
        let mut anchors = Vec::new();
        for c in self.live_certificates(scope, directory_id, now).await? {
            if c.record.kind == CertificateKind::ClientLdaps && c.state == CertificateState::Registered {
                let block = pem::parse(&c.record.pem).map_err(|e| DsError::Internal(e.to_string()))?;
                anchors.push(block.into_contents());
            }
        }
        let targets = match directory.kind {
            DirectoryKind::AdConnector => directory
                .customer_dns_ips
                .iter()
                .chain(&directory.customer_dns_ips_v6)
                .filter_map(|ip| ip.parse().ok())
                .collect(),
            DirectoryKind::MicrosoftAd | DirectoryKind::SimpleAd => Vec::new(),
        };
        Ok(Some(LdapsPlan { targets, anchors }))
    }

    /// Records the result of check `check_id`. Returns whether it was applied (false when
    /// the check is stale).
    pub async fn finish_ldaps_check(
        &self,
        scope: &str,
        directory_id: &str,
        check_id: &str,
        outcome: std::result::Result<(), LdapsFailure>,
    ) -> Result<bool> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = match self.directory(scope, directory_id).await {
                Ok(found) => found,
                Err(DsError::DirectoryNotFound(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            if directory.ldaps.check_id.as_deref() != Some(check_id) {
                return Ok(false);
            }
            let event = if outcome.is_ok() { LdapsEvent::CheckPassed } else { LdapsEvent::CheckFailed };
            let Ok(next) = directory.ldaps.status.on(event) else { return Ok(false) };
            directory.ldaps.status = next;
            directory.ldaps.reason = outcome.as_ref().err().map(ToString::to_string);
            directory.ldaps.updated_ms = Some(now);
            directory.ldaps.check_id = None;
            self.put_directory(scope, &directory, version).await?;
            Ok(true)
        })
        .await
    }

    // ----- client authentication -----------------------------------------------------

    /// `EnableClientAuthentication`. The two types are alternatives: enabling one while
    /// the other is enabled is refused (disable the other first).
    pub async fn enable_client_auth(&self, scope: &str, directory_id: &str, kind: ClientAuthKind) -> Result<()> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = self.directory(scope, directory_id).await?;
            require_client_auth_supported(&directory)?;
            let current = directory.client_auth(kind);
            let next = current.status.on(ClientAuthEvent::EnableRequested).map_err(|_| {
                DsError::InvalidClientAuthStatus(format!(
                    "{} client authentication is already enabled for directory {directory_id}.",
                    kind.as_str()
                ))
            })?;
            if let Some(other) = ClientAuthKind::ALL
                .into_iter()
                .find(|k| *k != kind && directory.client_auth(*k).status == machine::ClientAuthStatus::Enabled)
            {
                return Err(DsError::InvalidClientAuthStatus(format!(
                    "{} client authentication is enabled for directory {directory_id}; disable it before enabling {}.",
                    other.as_str(),
                    kind.as_str()
                )));
            }
            let registered =
                self.live_certificates(scope, directory_id, now).await?.into_iter().any(|c| {
                    c.record.kind == CertificateKind::ClientCertAuth && c.state == CertificateState::Registered
                });
            if !registered {
                return Err(DsError::NoAvailableCertificate(format!(
                    "Directory {directory_id} has no registered ClientCertAuth certificate."
                )));
            }
            directory.set_client_auth(ClientAuthRecord { kind, status: next, updated_ms: now });
            self.put_directory(scope, &directory, version).await
        })
        .await
    }

    /// `DisableClientAuthentication`.
    pub async fn disable_client_auth(&self, scope: &str, directory_id: &str, kind: ClientAuthKind) -> Result<()> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = self.directory(scope, directory_id).await?;
            require_client_auth_supported(&directory)?;
            let next = directory.client_auth(kind).status.on(ClientAuthEvent::DisableRequested).map_err(|_| {
                DsError::InvalidClientAuthStatus(format!(
                    "{} client authentication is already disabled for directory {directory_id}.",
                    kind.as_str()
                ))
            })?;
            directory.set_client_auth(ClientAuthRecord { kind, status: next, updated_ms: now });
            self.put_directory(scope, &directory, version).await
        })
        .await
    }

    /// `DescribeClientAuthenticationSettings`: one type, or all types.
    pub async fn describe_client_auth(
        &self,
        scope: &str,
        directory_id: &str,
        kind: Option<ClientAuthKind>,
        limit: Option<usize>,
        token: Option<&str>,
    ) -> Result<Page<ClientAuthRecord>> {
        let (directory, _) = self.directory(scope, directory_id).await?;
        require_client_auth_supported(&directory)?;
        let all: Vec<ClientAuthRecord> = ClientAuthKind::ALL
            .into_iter()
            .filter(|k| kind.is_none_or(|want| want == *k))
            .map(|k| directory.client_auth(k))
            .collect();
        offset_page(all, limit, token)
    }

    // ----- rows ----------------------------------------------------------------------

    /// Reads a directory and its row version.
    async fn directory(&self, scope: &str, id: &str) -> Result<(DirectoryRecord, u64)> {
        let row = self
            .core
            .store
            .get(&Key::new(DIRECTORY_KIND, scope, id))
            .await?
            .ok_or_else(|| DsError::DirectoryNotFound(id.to_owned()))?;
        Ok((decode(&row)?, row.version))
    }

    async fn put_directory(&self, scope: &str, record: &DirectoryRecord, version: u64) -> Result<()> {
        let row = directory_row(scope, record, self.now())?;
        self.core.store.apply(vec![Write::Put { row, expect: Some(version) }]).await?;
        Ok(())
    }

    async fn all_directories(&self, scope: &str) -> Result<Vec<DirectoryRecord>> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let rows = self
                .core
                .store
                .scan(Scan { kind: DIRECTORY_KIND, scope, id_prefix: None, after, order: Order::Ascending, limit: 500 })
                .await?;
            let done = rows.len() < 500;
            after = rows.last().map(|r| Cursor { created_ms: r.created_ms, id: r.key.id.clone() });
            for row in &rows {
                out.push(decode(row)?);
            }
            if done {
                return Ok(out);
            }
        }
    }

    async fn certificate_rows(&self, scope: &str, directory_id: &str) -> Result<Vec<Row>> {
        let prefix = format!("{directory_id}/");
        let mut out: Vec<Row> = Vec::new();
        loop {
            let after = out.last().map(|r| Cursor { created_ms: r.created_ms, id: r.key.id.clone() });
            let rows = self
                .core
                .store
                .scan(Scan {
                    kind: CERTIFICATE_KIND,
                    scope,
                    id_prefix: Some(&prefix),
                    after,
                    order: Order::Ascending,
                    limit: 500,
                })
                .await?;
            let done = rows.len() < 500;
            out.extend(rows);
            if done {
                return Ok(out);
            }
        }
    }

    /// Certificates of a directory that still count (registering or registered).
    async fn live_certificates(&self, scope: &str, directory_id: &str, now: i64) -> Result<Vec<CertificateView>> {
        let mut out = Vec::new();
        for row in self.certificate_rows(scope, directory_id).await? {
            let record: CertificateRecord = decode(&row)?;
            let state = record.state_at(now);
            if state.is_live() {
                out.push(CertificateView { record, state });
            }
        }
        Ok(out)
    }

    /// A certificate that has not finished deregistering, with its row version.
    async fn certificate(
        &self,
        scope: &str,
        directory_id: &str,
        certificate_id: &str,
        now: i64,
    ) -> Result<(CertificateView, u64)> {
        let key = Key::new(CERTIFICATE_KIND, scope, format!("{directory_id}/{certificate_id}"));
        let row =
            self.core.store.get(&key).await?.ok_or_else(|| DsError::CertificateNotFound(certificate_id.to_owned()))?;
        let record: CertificateRecord = decode(&row)?;
        let state = record.state_at(now);
        if state == CertificateState::Deregistered {
            return Err(DsError::CertificateNotFound(certificate_id.to_owned()));
        }
        Ok((CertificateView { record, state }, row.version))
    }
}

/// Runs `attempt` again when it lost a write race (a store conflict), a bounded number
/// of times: each attempt re-reads what it depends on.
async fn retry<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    for _ in 1..MAX_ATTEMPTS {
        match attempt().await {
            Err(DsError::Store(carapace_store::Error::Conflict(key))) => {
                tracing::debug!(%key, "write race lost; retrying");
            }
            other => return other,
        }
    }
    attempt().await
}

fn view(record: DirectoryRecord, now: i64) -> DirectoryView {
    let (stage, stage_since_ms) = record.stage_at(now);
    DirectoryView { record, stage, stage_since_ms }
}

fn require_active(directory: &DirectoryRecord, now: i64) -> Result<()> {
    let (stage, _) = directory.stage_at(now);
    if stage == DirectoryStage::Active {
        Ok(())
    } else {
        Err(DsError::DirectoryUnavailable(format!(
            "Directory {} is not available: its stage is {}.",
            directory.id,
            stage.as_str()
        )))
    }
}

fn require_certificates_supported(directory: &DirectoryRecord) -> Result<()> {
    if [CertificateKind::ClientLdaps, CertificateKind::ClientCertAuth].iter().any(|k| k.supported_on(directory.kind)) {
        Ok(())
    } else {
        Err(DsError::Unsupported(format!(
            "Certificates are not supported for {} directories.",
            directory.kind.as_str()
        )))
    }
}

fn require_ldaps_supported(directory: &DirectoryRecord) -> Result<()> {
    if CertificateKind::ClientLdaps.supported_on(directory.kind) {
        Ok(())
    } else {
        Err(DsError::Unsupported(format!("LDAPS is not supported for {} directories.", directory.kind.as_str())))
    }
}

fn require_client_auth_supported(directory: &DirectoryRecord) -> Result<()> {
    if CertificateKind::ClientCertAuth.supported_on(directory.kind) {
        Ok(())
    } else {
        Err(DsError::Unsupported(format!(
            "Client authentication is not supported for {} directories.",
            directory.kind.as_str()
        )))
    }
}

fn check_new_directory(new: &NewDirectory) -> Result<()> {
    let distinct: std::collections::HashSet<&String> = new.subnet_ids.iter().collect();
    if new.subnet_ids.len() != 2 || distinct.len() != 2 {
        return Err(DsError::InvalidParameter(
            "Invalid subnet ID(s). They must correspond to two subnets in different Availability Zones.".into(),
        ));
    }
    if new.kind == DirectoryKind::AdConnector && new.customer_dns_ips.is_empty() && new.customer_dns_ips_v6.is_empty() {
        return Err(DsError::InvalidParameter(
            "ConnectSettings must give the customer's DNS servers in CustomerDnsIps or CustomerDnsIpsV6.".into(),
        ));
    }
    if new.edition.as_deref() == Some("Hybrid") {
        return Err(DsError::Unsupported(
            "Hybrid edition directories are created with CreateHybridAD, which Carapace does not implement.".into(),
        ));
    }
    check_tag_keys(new.tags.iter().map(|(k, _)| k.as_str()))?;
    if new.tags.len() > MAX_TAGS {
        return Err(DsError::TagLimitExceeded(format!("A directory can have at most {MAX_TAGS} tags.")));
    }
    Ok(())
}

fn check_tag_keys<'a>(keys: impl Iterator<Item = &'a str>) -> Result<()> {
    for key in keys {
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(DsError::InvalidParameter(format!(
                "Tag key '{key}' is not valid: the prefix 'aws:' is reserved for AWS use."
            )));
        }
    }
    Ok(())
}

fn region_of(scope: &str) -> &str {
    scope.split_once('/').map_or(scope, |(_, region)| region)
}

/// The availability zones shown for a directory: synthetic, one per subnet.
pub fn availability_zones(scope: &str, subnets: usize) -> Vec<String> {
    let region = region_of(scope);
    (0..subnets).map(|i| format!("{region}{}", char::from(b'a' + (i % 26) as u8))).collect()
}

fn page_size(limit: Option<usize>) -> usize {
    match limit {
        None | Some(0) => DEFAULT_PAGE,
        Some(n) => n.min(DEFAULT_PAGE),
    }
}

fn offset_page<T>(items: Vec<T>, limit: Option<usize>, token: Option<&str>) -> Result<Page<T>> {
    let start = match token {
        None => 0,
        Some(t) => {
            let text = hex::decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(DsError::InvalidNextToken)?;
            let n = text.strip_prefix("o:").and_then(|n| n.parse::<usize>().ok()).ok_or(DsError::InvalidNextToken)?;
            if n > items.len() {
                return Err(DsError::InvalidNextToken);
            }
            n
        }
    };
    let limit = page_size(limit);
    let end = (start + limit).min(items.len());
    let next_token = (end < items.len()).then(|| hex::encode(format!("o:{end}")));
    Ok(Page { items: items.into_iter().skip(start).take(end - start).collect(), next_token })
}

fn encode_cursor(c: &Cursor) -> String {
    hex::encode(format!("k:{}:{}", c.created_ms, c.id))
}

fn decode_cursor(token: &str) -> Result<Cursor> {
    let text = hex::decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(DsError::InvalidNextToken)?;
    let rest = text.strip_prefix("k:").ok_or(DsError::InvalidNextToken)?;
    let (ms, id) = rest.split_once(':').ok_or(DsError::InvalidNextToken)?;
    let created_ms = ms.parse().map_err(|_| DsError::InvalidNextToken)?;
    Ok(Cursor { created_ms, id: id.to_owned() })
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| DsError::Internal("random source failed".into()))?;
    Ok(hex::encode(buf))
}

fn decode<T: serde::de::DeserializeOwned>(row: &Row) -> Result<T> {
    serde_json::from_slice(&row.body).map_err(|e| DsError::Internal(format!("row {} does not decode: {e}", row.key)))
}

fn directory_row(scope: &str, record: &DirectoryRecord, now: i64) -> Result<Row> {
    let body = serde_json::to_vec(record).map_err(|e| DsError::Internal(e.to_string()))?;
    Ok(Row { key: Key::new(DIRECTORY_KIND, scope, &record.id), version: 0, created_ms: now, body })
}

fn certificate_row(scope: &str, record: &CertificateRecord, now: i64) -> Result<Row> {
    let body = serde_json::to_vec(record).map_err(|e| DsError::Internal(e.to_string()))?;
    let id = format!("{}/{}", record.directory_id, record.id);
    Ok(Row { key: Key::new(CERTIFICATE_KIND, scope, id), version: 0, created_ms: now, body })
}

#[cfg(test)]
mod tests;
