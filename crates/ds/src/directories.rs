//! Directories: `CreateDirectory`, `CreateMicrosoftAD`, `ConnectDirectory`,
//! `DescribeDirectories`, `DeleteDirectory` and `GetDirectoryLimits`.

use carapace_store::{Cursor, Key, Order, Row, Scan, Write};
use zeroize::Zeroizing;

use super::records::{DirectoryKind, DirectoryRecord};
use super::{
    DIRECTORY_KIND, Directories, DirectoryView, DsError, MAX_TAGS, Page, QUOTA_KIND, Result, check_tag_keys, decode,
    decode_cursor, directory_limit, directory_row, encode_cursor, page_size, password, random_hex, retry, view,
};

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

impl Directories {
    /// Creates a directory; returns its id.
    pub async fn create(&self, scope: &str, new: NewDirectory) -> Result<String> {
        check_new_directory(&new)?;
        let password = new.password.clone();
        // PBKDF2 is deliberately slow: keep it off the async workers.
        let password_hash = tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|e| DsError::fault("the password hashing task failed", e))?
            .map_err(|e| DsError::fault("drawing the password's salt", e))?;
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

fn region_of(scope: &str) -> &str {
    scope.split_once('/').map_or(scope, |(_, region)| region)
}

/// The availability zones shown for a directory: synthetic, one per subnet.
pub fn availability_zones(scope: &str, subnets: usize) -> Vec<String> {
    let region = region_of(scope);
    (0..subnets).map(|i| format!("{region}{}", char::from(b'a' + (i % 26) as u8))).collect()
}
