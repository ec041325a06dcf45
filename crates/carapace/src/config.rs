//! Configuration: one serde struct, a default for every field, read from an optional TOML
//! file, then overridden by `CARAPACE_*` environment variables, then by flags, and checked
//! by [`Config::validate`] before anything starts.
//!
//! Environment names are the field path in upper case joined by `_`: `listen` is
//! `CARAPACE_LISTEN`, `acm.domains_per_certificate` is `CARAPACE_ACM_DOMAINS_PER_CERTIFICATE`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The default API address: loopback only, so a fresh `carapace serve` is never exposed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4566";

/// Everything `carapace serve` can be told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory holding the database, the master key, the CA and the admin credentials.
    pub data_dir: PathBuf,
    /// Address the API listens on. Port 0 picks a free port (printed at start-up).
    pub listen: SocketAddr,
    /// Emulator mode: any well-formed SigV4 request is accepted and validation is
    /// auto-approved. Never use it for real certificates.
    pub dev: bool,
    /// File holding the 32-byte master key (64 hex digits) that seals private keys at rest.
    /// Default: `<data_dir>/master.key`, created 0600 on first start.
    pub master_key_file: Option<PathBuf>,
    /// SQLite database file. Default: `<data_dir>/carapace.db`.
    pub database_path: Option<PathBuf>,
    /// PostgreSQL instead of SQLite, for several nodes sharing one database:
    /// `postgres://user:password@host:5432/dbname` (or `host=... dbname=...`). Every node
    /// needs the same master key file. `database_path` is then unused; `cache_rows` applies
    /// too (other nodes' writes reach the cache through the change feed).
    pub database_url: Option<String>,
    /// Background jobs of every service.
    pub jobs: JobsConfig,
    /// Public base URL of this server, used in certificates' AIA and CRL distribution
    /// point extensions. Default: `http://<listen>`.
    pub base_url: Option<String>,
    /// Rows of certificates and directories kept in memory for repeated reads (polling
    /// DescribeCertificate, say). Only the server writes those rows, and every write
    /// refreshes them, so a read never sees an older row than the last acknowledged write.
    /// 0 turns the cache off.
    pub cache_rows: u64,
    /// SQLite: size of the `-wal` file, bytes, past which the background checkpointer
    /// restarts the WAL (a RESTART checkpoint) and to which SQLite truncates it afterwards.
    /// It bounds the file under sustained writes (about limit + 100 ms of writes).
    pub sqlite_wal_limit_bytes: u64,
    /// SQLite: page cache of each of the store's six connections, KiB (at most six times
    /// this in memory). Hot reads mostly come through the memory-mapped file instead.
    pub sqlite_cache_kib: u64,
    /// Longest a looked-up access key is trusted without asking the store again, seconds.
    /// Revocation does not wait for it (the change feed evicts a changed key at once); it
    /// bounds how stale a key can be while the feed is down.
    pub key_cache_secs: u64,
    /// Largest API request body accepted, in bytes (ACM certificate chains can be 2 MiB,
    /// base64-encoded in JSON).
    pub max_body_bytes: usize,
    /// Seconds to let in-flight requests finish after SIGTERM before closing anyway.
    pub shutdown_grace_secs: u64,
    /// Log format: `text` or `json`. The level comes from `RUST_LOG` (default `info`).
    pub log_format: String,
    /// Name of the CA shown in certificates: the common names `<name> Root CA 1`,
    /// `<name> RSA 2048 M01` and `<name> ECDSA 256 M01`, and the organisation unless
    /// `ca.organization` is set. At most 50 characters (a common name has at most 64).
    pub ca_name: String,
    /// The rest of the CA certificates' subject. Like `ca_name`, read when the CA is created
    /// (first start on an empty database); an existing CA keeps its certificates.
    pub ca: CaConfig,
    /// ACM settings.
    pub acm: AcmConfig,

    // ---- Hardening: listener bounds, credential-scope regions, CRL signing. ----
    /// Bounds on every connection of the API port and of the approval page (`[http]`,
    /// `CARAPACE_HTTP_*`; each listener counts its own `max_connections`): header, body,
    /// idle and send timeouts, connection and per-connection request limits, HTTP/2 stream
    /// and reset limits. See docs/security.md.
    pub http: carapace_net::Limits,
    /// Regions accepted in SigV4 credential scopes besides the AWS regions each service is
    /// in (private or test regions, e.g. `["local-1"]`); ARNs in them still begin `arn:aws:`.
    pub extra_regions: Vec<String>,
    /// Seconds a signed CRL is served before it is signed afresh; a revocation makes the next
    /// request sign a new one at once. 0 signs a CRL for every request.
    pub crl_refresh_secs: u64,

    // ---- Lightsail and its edge ----
    /// Lightsail settings: origins and bundles.
    pub lightsail: LightsailConfig,
    /// Edge settings (the Lightsail part: the domain distributions are named under).
    pub edge: EdgeConfig,

    // ---- Directory Service ----
    /// Directory Service settings.
    pub ds: DsConfig,

    // ---- AWS Private CA ----
    /// AWS Private CA settings.
    pub pca: PcaConfig,

    // ---- Managed renewal and events ----
    /// Where ACM's EventBridge events are delivered.
    pub events: EventsConfig,
    /// Time travel, for testing what happens months from now (renewal, expiry, events):
    /// the server's clock runs this many seconds ahead of the system clock. Never set it on
    /// a server whose certificates anyone relies on.
    pub clock_offset_secs: i64,
    /// Settings given under an old name (see [`MOVED`]), as `(old, new)` names, for a
    /// warning once logging is set up. Not a setting.
    #[serde(skip)]
    pub old_names: Vec<(String, String)>,
}

/// The subject of the CA certificates Carapace generates (`[ca]`): the attributes BR 7.1.2.10.2
/// asks of a CA certificate, besides the common names (from `ca_name`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CaConfig {
    /// `countryName`: the ISO 3166-1 alpha-2 code of the country where the CA operates, upper
    /// case. `XX` (ISO 3166's code for "unknown") says none is given.
    pub country: String,
    /// `organizationName` (at most 64 characters). Empty: `ca_name`.
    pub organization: String,
    /// `stateOrProvinceName` (at most 128 characters). Empty: omitted.
    pub state: String,
    /// `localityName` (at most 128 characters). Empty: omitted.
    pub locality: String,
}

impl Default for CaConfig {
    fn default() -> Self {
        Self { country: String::from("XX"), organization: String::new(), state: String::new(), locality: String::new() }
    }
}

/// ACM's events (`[events]`): delivered at least once to every webhook, signed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// The webhooks (`[[events.webhooks]]` with `name`, `url`, `secret`; or
    /// `CARAPACE_EVENTS_WEBHOOKS='[{name="ops", url="https://...", secret="..."}]'`). Each
    /// event is POSTed to each with an `X-Carapace-Signature` HMAC-SHA256 header (see
    /// docs/behaviour.md). None: no events are raised.
    pub webhooks: Vec<WebhookConfig>,
    /// How long one delivery may take before it counts as failed and is retried,
    /// milliseconds.
    pub timeout_ms: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self { webhooks: Vec::new(), timeout_ms: 10_000 }
    }
}

/// One webhook.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Names it in jobs and logs; unique.
    pub name: String,
    /// `http://` or `https://` URL (HTTPS is verified against the system roots and
    /// Carapace's root).
    pub url: String,
    /// The HMAC-SHA256 key (at least 16 characters).
    pub secret: String,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig").field("name", &self.name).field("url", &self.url).finish_non_exhaustive()
    }
}

impl Config {
    /// The core's event settings.
    pub fn event_settings(&self) -> carapace_acm::events::EventSettings {
        carapace_acm::events::EventSettings {
            webhooks: self
                .events
                .webhooks
                .iter()
                .map(|w| carapace_acm::events::Webhook {
                    name: w.name.clone(),
                    url: w.url.clone(),
                    secret: w.secret.clone(),
                })
                .collect(),
            timeout_ms: self.events.timeout_ms,
        }
    }
}

/// Background jobs (issuance, validation, LDAPS checks, ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Failed runs after which a job is dead-lettered: logged, counted on `/metrics`
    /// (`carapace_jobs_total{outcome="dead_lettered"}`), listed by `carapace jobs list
    /// --dead`, and never retried until an operator revives it. Failures back off from one
    /// second, doubling up to 15 minutes, so 12 failures span about an hour.
    pub max_failures: u32,
    /// Jobs each service's worker runs at once. 0: one per available core.
    pub concurrency: usize,
    /// How long a claimed job is leased, milliseconds: after a crash, jobs that were
    /// running are picked up again this long after they started. At least 1000. The old
    /// name `acm.job_lease_ms` is read as this, with a warning, when this is not given.
    pub lease_ms: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self { max_failures: 12, concurrency: 0, lease_ms: 60_000 }
    }
}

/// Directory Service settings (`[ds]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DsConfig {
    /// Port the LDAPS check connects to on every customer domain controller (636, the
    /// LDAPS port AWS probes). Tests run their LDAP server on a free loopback port.
    pub ldaps_port: u16,
    /// How long a new directory stays in each of `Requested` and `Creating`, milliseconds
    /// (at most a day). 0 makes directories `Active` at once, as moto does.
    pub stage_delay_ms: u64,
}

impl Default for DsConfig {
    fn default() -> Self {
        Self {
            ldaps_port: carapace_checks::ldaps::DEFAULT_LDAPS_PORT,
            stage_delay_ms: carapace_ds::records::DIRECTORY_STEP_MS.unsigned_abs(),
        }
    }
}

/// AWS Private CA settings (`[pca]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PcaConfig {
    /// Where the objects AWS Private CA writes to S3 buckets (CRLs, audit reports) go, as
    /// `<buckets_dir>/<bucket>/<key>`; served at `<base_url>/s3/<bucket>/<key>`. Default:
    /// `buckets` in the data directory.
    pub buckets_dir: Option<PathBuf>,
}

/// ACM settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AcmConfig {
    /// Domain names (DomainName plus SANs) allowed on one certificate. ACM's default quota
    /// is 10 and it can be raised to 100.
    pub domains_per_certificate: u32,
    /// Certificates an account can hold in one region (ACM default quota: 2,500).
    pub certificates_per_account: u32,
    /// Certificates an account can request in one region in a rolling 365 days
    /// (ACM: 5 × the account quota).
    pub certificates_per_year: u32,
    /// Days a newly issued certificate is valid. ACM issues 198-day certificates since the
    /// CA/Browser Forum's 200-day limit took effect on 15 March 2026.
    pub validity_days: u32,
    /// Managed renewal of an eligible certificate (in use, or exportable) starts this many
    /// days before its `NotAfter` (ACM: about 45). Less than `validity_days`.
    pub renewal_days_before_expiry: u32,
    /// In `--dev`, milliseconds after which a pending certificate is auto-approved.
    pub dev_auto_approve_ms: u64,
    /// Enforce ACM's documented per-operation request rates (always off in `--dev`).
    pub throttling: bool,
    /// Name servers (`ip:port`) that DNS validation asks, over UDP then TCP. Empty: the
    /// system resolvers from `/etc/resolv.conf`.
    pub name_servers: Vec<SocketAddr>,
    /// Timeout of one validation DNS query or HTTP fetch, milliseconds.
    pub dns_timeout_ms: u64,
    /// Port HTTP validation connects to when a URL names none: 80, as ACM. Another port
    /// lets a test site run without the privilege to bind port 80.
    pub http_validation_port: u16,
    /// The issuer domain name CAA records must list (`issue`/`issuewild`) for Carapace to
    /// issue; domains with CAA records not naming it fail with `CAA_ERROR`.
    pub issuer_domain: String,
    /// First delay between validation checks of a pending request, milliseconds; the delay
    /// doubles per check up to `validation_retry_max_ms`.
    pub validation_retry_min_ms: u64,
    /// Longest delay between validation checks, milliseconds.
    pub validation_retry_max_ms: u64,
    /// How long a request may stay pending before `VALIDATION_TIMED_OUT`, seconds
    /// (ACM: 72 hours).
    pub validation_timeout_secs: u64,
    /// SMTP relay host for approval mail (email validation).
    pub smtp_host: String,
    /// SMTP relay port.
    pub smtp_port: u16,
    /// Require STARTTLS on the SMTP relay connection.
    pub smtp_starttls: bool,
    /// Sender address of approval mail.
    pub smtp_from: String,
    /// Address the HTTPS approval page (email validation links) listens on.
    pub approval_listen: SocketAddr,
    /// Public base URL of the approval page used in mail links. Default:
    /// `https://<approval_listen>`.
    pub approval_base_url: String,
}

// ---- Lightsail ------------------------------------------------------------------------

/// Lightsail settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LightsailConfig {
    /// The origins distributions may pull from (`origin.name` → URL). Carapace has no
    /// Lightsail instances, buckets or load balancers, so the operator declares them. Env:
    /// `CARAPACE_LIGHTSAIL_ORIGINS="name=url,name2=url2"` (available to every account and
    /// region, resource type `Instance`).
    pub origins: Vec<OriginConfig>,
    /// GetDistributionBundles' table (default: `small_1_0`, `medium_1_0`, `large_1_0`).
    pub bundles: Vec<BundleConfig>,
    /// Days after UpdateDistributionBundle before the bundle may change again (Lightsail:
    /// once per monthly billing cycle).
    pub bundle_change_interval_days: u32,
}

/// One declared origin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    /// What `origin.name` says (Lightsail's resource-name pattern: `\w[\w\-]*\w`).
    pub name: String,
    /// Where the edge fetches from: `http://host[:port]` or `https://host[:port]`.
    pub url: String,
    /// Only this account may use it (default: every account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The origin's region, which `origin.regionName` must name (default: any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The Lightsail resource type shown for it: `Instance` (default), `Bucket`,
    /// `LoadBalancer` or `ContainerService`.
    #[serde(default = "default_origin_type")]
    pub resource_type: String,
}

fn default_origin_type() -> String {
    String::from("Instance")
}

/// One distribution bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BundleConfig {
    /// `bundleId`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Monthly price, USD.
    pub price: f32,
    /// Monthly transfer quota, GB.
    pub transfer_per_month_in_gb: i32,
    /// Whether new and existing distributions may choose it.
    #[serde(default = "yes")]
    pub is_active: bool,
}

fn yes() -> bool {
    true
}

/// Edge settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// The domain distributions are named under: default domains `d<13>.<domain>` (the
    /// counterpart of `d111111abcdef8.cloudfront.net`) and subdomains `<name>.<domain>`.
    pub domain: String,
    /// Run the edge beside the API (`carapace serve`). `false`: no edge listeners.
    pub enabled: bool,
    /// Viewer HTTPS address (flag `--edge-https-listen`). Port 0 picks a free port (printed
    /// at start-up). A port that cannot be bound is logged and the server runs without the
    /// edge, as for the approval page.
    pub https_listen: SocketAddr,
    /// Viewer HTTP address, answered with 301 to HTTPS (flag `--edge-http-listen`).
    pub http_listen: SocketAddr,
    /// Memory budget of the edge cache, bytes (bodies, headers and keys).
    pub cache_bytes: u64,
    /// A directory for the cache's disk tier: cached objects are also written there and
    /// survive a restart. Empty: memory only. Each edge process needs its own directory.
    pub cache_dir: String,
    /// Disk budget of the disk tier, bytes; the oldest objects are removed first.
    pub cache_dir_bytes: u64,
    /// Largest response body the cache stores, bytes; larger ones stream through uncached.
    pub max_object_bytes: u64,
    /// Bytes of responses being copied into the cache at once, across the edge: misses stream
    /// to their viewers while a copy fills the cache, and a copy that would pass this stops
    /// (the response streams on uncached).
    pub fill_bytes: u64,
    /// How long a request waits for another request's fetch of the same object before it
    /// fetches on its own, milliseconds.
    pub cache_lock_timeout_ms: u64,
    /// Time to open a connection to an origin, milliseconds (CloudFront's default origin
    /// connection timeout is 10 s).
    pub origin_connect_timeout_ms: u64,
    /// Origin connections open at once across every origin (lowered at start when the
    /// process's descriptor limit could not hold it beside the viewer connections).
    pub origin_max_connections: u64,
    /// Origin connections open at once to one origin (`scheme://host:port`), so that one
    /// slow origin cannot take the connections other distributions need.
    pub origin_max_connections_per_origin: u64,
    /// A PEM file of extra CA certificates HTTPS origins are verified against, besides the
    /// system roots and Carapace's root. Empty: none.
    pub origin_ca_file: String,
    /// `carapace edge` only: the plain-HTTP admin address serving `/health` and `/metrics`
    /// (port 0 picks a free port).
    pub admin_listen: SocketAddr,
    /// Bounds on every viewer connection of the HTTPS and the HTTP listener (`[edge.http]`,
    /// `CARAPACE_EDGE_HTTP_*`; each listener counts its own `max_connections`), the same
    /// fields as `[http]`. A field left out keeps the edge's default
    /// (`carapace_edge::EdgeConfig::default_limits`: 20 KiB heads, 10,000 connections, 64 per
    /// client, 10 s idle), not the API's. See docs/security.md.
    #[serde(deserialize_with = "edge_http_limits")]
    pub http: carapace_net::Limits,
}

/// `[edge.http]` over the edge's defaults: the fields given replace those defaults, field by
/// field (`Limits`' own serde default would fill the rest with the API's).
fn edge_http_limits<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<carapace_net::Limits, D::Error> {
    use serde::de::Error as _;
    let given = toml::Table::deserialize(deserializer)?;
    let mut merged = toml::Table::try_from(carapace_edge::EdgeConfig::default_limits()).map_err(D::Error::custom)?;
    merged.extend(given);
    toml::Value::Table(merged).try_into().map_err(D::Error::custom)
}

impl Default for LightsailConfig {
    fn default() -> Self {
        let defaults = carapace_lightsail::Bundle::defaults();
        Self {
            origins: Vec::new(),
            bundles: defaults
                .into_iter()
                .map(|b| BundleConfig {
                    id: b.id,
                    name: b.name,
                    price: b.price,
                    transfer_per_month_in_gb: b.transfer_per_month_in_gb,
                    is_active: b.is_active,
                })
                .collect(),
            bundle_change_interval_days: 30,
        }
    }
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            domain: String::from("cdn.carapace.internal"),
            enabled: true,
            https_listen: SocketAddr::from(([127, 0, 0, 1], 4443)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 4480)),
            cache_bytes: 256 << 20,
            cache_dir: String::new(),
            cache_dir_bytes: 1 << 30,
            max_object_bytes: 16 << 20,
            fill_bytes: 64 << 20,
            cache_lock_timeout_ms: 3_000,
            origin_connect_timeout_ms: 10_000,
            origin_max_connections: 4_096,
            origin_max_connections_per_origin: 256,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 4481)),
            origin_ca_file: String::new(),
            http: carapace_edge::EdgeConfig::default_limits(),
        }
    }
}

impl Config {
    /// The core's Lightsail settings.
    pub fn lightsail_settings(&self) -> carapace_lightsail::LightsailSettings {
        carapace_lightsail::LightsailSettings {
            edge_domain: self.edge.domain.to_ascii_lowercase(),
            origins: self
                .lightsail
                .origins
                .iter()
                .map(|o| carapace_lightsail::DeclaredOrigin {
                    name: o.name.clone(),
                    url: o.url.clone(),
                    account: o.account.clone(),
                    region: o.region.clone(),
                    resource_type: o.resource_type.clone(),
                })
                .collect(),
            bundles: self
                .lightsail
                .bundles
                .iter()
                .map(|b| carapace_lightsail::Bundle {
                    id: b.id.clone(),
                    name: b.name.clone(),
                    price: b.price,
                    transfer_per_month_in_gb: b.transfer_per_month_in_gb,
                    is_active: b.is_active,
                })
                .collect(),
            bundle_change_interval_ms: i64::from(self.lightsail.bundle_change_interval_days) * 86_400_000,
        }
    }

    fn validate_lightsail(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: String| Err(ConfigError::Invalid { field, reason });
        let name_ok = |n: &str| {
            n.len() >= 2
                && n.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                && !n.starts_with('-')
                && !n.ends_with('-')
        };
        for (i, o) in self.lightsail.origins.iter().enumerate() {
            if !name_ok(&o.name) {
                return invalid("lightsail.origins", format!(r"origin name {:?} must match \w[\w\-]*\w", o.name));
            }
            if !(o.url.starts_with("http://") || o.url.starts_with("https://")) || o.url.contains(char::is_whitespace) {
                return invalid(
                    "lightsail.origins",
                    format!("origin {} url must start with http:// or https://", o.name),
                );
            }
            let clash = self.lightsail.origins[..i]
                .iter()
                .any(|p| p.name == o.name && p.account == o.account && p.region == o.region);
            if clash {
                return invalid("lightsail.origins", format!("origin {} is declared twice", o.name));
            }
            if !["Instance", "Bucket", "LoadBalancer", "ContainerService"].contains(&o.resource_type.as_str()) {
                return invalid(
                    "lightsail.origins",
                    format!(
                        "origin {} resource_type must be Instance, Bucket, LoadBalancer or ContainerService",
                        o.name
                    ),
                );
            }
        }
        if self.lightsail.bundles.is_empty() {
            return invalid("lightsail.bundles", "must list at least one bundle".into());
        }
        for (i, b) in self.lightsail.bundles.iter().enumerate() {
            if b.id.is_empty() || self.lightsail.bundles[..i].iter().any(|p| p.id == b.id) {
                return invalid("lightsail.bundles", format!("bundle id {:?} is empty or listed twice", b.id));
            }
        }
        let d = &self.edge.domain;
        let label_ok =
            |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if d.len() > 200 || !d.contains('.') || !d.split('.').all(label_ok) {
            return invalid("edge.domain", format!("{d:?} must be a DNS name such as cdn.example.com"));
        }
        Ok(())
    }
}

/// `CARAPACE_LIGHTSAIL_ORIGINS="name=url,name2=url2"` as the `lightsail.origins` table.
fn origins_from_env(raw: &str) -> Result<toml::Value, ConfigError> {
    let mut list = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, url) = item
            .split_once('=')
            .ok_or_else(|| ConfigError::Parse(format!("CARAPACE_LIGHTSAIL_ORIGINS: {item:?} is not name=url")))?;
        let mut t = toml::Table::new();
        t.insert("name".into(), toml::Value::String(name.trim().to_owned()));
        t.insert("url".into(), toml::Value::String(url.trim().to_owned()));
        list.push(toml::Value::Table(t));
    }
    Ok(toml::Value::Array(list))
}

// ---- end of Lightsail ------------------------------------------------------------------

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./carapace-data"),
            listen: DEFAULT_LISTEN.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 4566))),
            dev: false,
            master_key_file: None,
            database_path: None,
            database_url: None,
            jobs: JobsConfig::default(),
            base_url: None,
            cache_rows: 10_000,
            sqlite_wal_limit_bytes: carapace_store::sqlite::DEFAULT_WAL_LIMIT_BYTES,
            sqlite_cache_kib: carapace_store::sqlite::SqliteOptions::default().cache_kib,
            key_cache_secs: 5,
            max_body_bytes: 4 << 20,
            shutdown_grace_secs: 30,
            log_format: String::from("text"),
            ca_name: String::from("Carapace"),
            ca: CaConfig::default(),
            acm: AcmConfig::default(),
            http: carapace_net::Limits::default(),
            extra_regions: Vec::new(),
            crl_refresh_secs: 3_600,
            lightsail: LightsailConfig::default(),
            edge: EdgeConfig::default(),
            ds: DsConfig::default(),
            pca: PcaConfig::default(),
            events: EventsConfig::default(),
            clock_offset_secs: 0,
            old_names: Vec::new(),
        }
    }
}

impl Default for AcmConfig {
    fn default() -> Self {
        Self {
            domains_per_certificate: 10,
            certificates_per_account: 2_500,
            certificates_per_year: 12_500,
            validity_days: 198,
            renewal_days_before_expiry: 45,
            dev_auto_approve_ms: 500,
            throttling: true,
            name_servers: Vec::new(),
            dns_timeout_ms: 5_000,
            http_validation_port: 80,
            issuer_domain: String::from("carapace.internal"),
            validation_retry_min_ms: 2_000,
            validation_retry_max_ms: 300_000,
            validation_timeout_secs: 72 * 3_600,
            smtp_host: String::from("127.0.0.1"),
            smtp_port: 25,
            smtp_starttls: false,
            smtp_from: String::from("no-reply@carapace.internal"),
            approval_listen: SocketAddr::from(([127, 0, 0, 1], 4567)),
            approval_base_url: String::new(),
        }
    }
}

/// A configuration that cannot be used, naming the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file or an environment variable does not parse into the config.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// A field has a value out of range.
    #[error("invalid configuration: field `{field}`: {reason}")]
    Invalid {
        /// Dotted field path.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl Config {
    /// Reads the file (if any) and applies `CARAPACE_*` variables from `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                text.parse::<toml::Table>().map_err(|e| ConfigError::Parse(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let defaults = toml::Table::try_from(Config::default()).map_err(|e| ConfigError::Parse(e.to_string()))?;
        let mut env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("CARAPACE_")).collect();
        // A list in its own short syntax, not TOML: applied here, not by `overlay_env`.
        if let Some(i) = env.iter().position(|(k, _)| k == "CARAPACE_LIGHTSAIL_ORIGINS") {
            let (_, raw) = env.remove(i);
            let entry = table.entry("lightsail").or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(lightsail) = entry {
                lightsail.insert("origins".into(), origins_from_env(&raw)?);
            }
        }
        let old_names = move_old_names(&mut table, &mut env);
        overlay_env(&mut table, &defaults, "CARAPACE", &env)?;
        let mut config: Config =
            toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        config.old_names = old_names;
        Ok(config)
    }

    /// Logs a warning for each setting given under an old name. Called once logging is set
    /// up (the log format is itself a setting).
    pub fn warn_old_names(&self) {
        for (old, new) in &self.old_names {
            tracing::warn!("configuration: `{old}` is an old name that will stop working; use `{new}`");
        }
    }

    /// The Directory Service handler's settings.
    pub fn ds_settings(&self) -> carapace_ds_api::DsSettings {
        carapace_ds_api::DsSettings {
            probe: carapace_checks::ldaps::ProbeSettings {
                port: self.ds.ldaps_port,
                ..carapace_checks::ldaps::ProbeSettings::default()
            },
            directory_step_ms: i64::try_from(self.ds.stage_delay_ms).unwrap_or(i64::MAX),
        }
    }

    /// Checks ranges and relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| Err(ConfigError::Invalid { field, reason: reason.to_owned() });
        if let Some(url) = &self.database_url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://") || url.contains('='))
        {
            return invalid("database_url", "must be a PostgreSQL URL (postgres://...) or key=value string");
        }
        if self.sqlite_wal_limit_bytes < 1 << 20 {
            return invalid("sqlite_wal_limit_bytes", "must be at least 1048576 (1 MiB)");
        }
        if self.sqlite_cache_kib < 256 {
            return invalid("sqlite_cache_kib", "must be at least 256");
        }
        if self.max_body_bytes < 1024 {
            return invalid("max_body_bytes", "must be at least 1024");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return invalid("log_format", "must be \"text\" or \"json\"");
        }
        if self.ca_name.trim().is_empty() || self.ca_name.chars().count() > 50 {
            return invalid("ca_name", "must be 1 to 50 characters");
        }
        if self.ca.country.len() != 2 || !self.ca.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return invalid("ca.country", "must be an ISO 3166-1 alpha-2 code: two upper-case letters (XX for none)");
        }
        if self.ca.organization.chars().count() > 64 {
            return invalid("ca.organization", "must be at most 64 characters");
        }
        if self.ca.state.chars().count() > 128 {
            return invalid("ca.state", "must be at most 128 characters");
        }
        if self.ca.locality.chars().count() > 128 {
            return invalid("ca.locality", "must be at most 128 characters");
        }
        if let Some(url) = &self.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return invalid("base_url", "must start with http:// or https://");
        }
        if !(1..=100).contains(&self.acm.domains_per_certificate) {
            return invalid("acm.domains_per_certificate", "must be between 1 and 100 (ACM's maximum)");
        }
        if self.acm.certificates_per_account == 0 {
            return invalid("acm.certificates_per_account", "must be at least 1");
        }
        if self.acm.certificates_per_year < self.acm.certificates_per_account {
            return invalid("acm.certificates_per_year", "must be at least acm.certificates_per_account");
        }
        if !(1..=825).contains(&self.acm.validity_days) {
            return invalid("acm.validity_days", "must be between 1 and 825");
        }
        if self.acm.renewal_days_before_expiry == 0 || self.acm.renewal_days_before_expiry >= self.acm.validity_days {
            return invalid("acm.renewal_days_before_expiry", "must be at least 1 and less than acm.validity_days");
        }
        for (i, w) in self.events.webhooks.iter().enumerate() {
            if w.name.is_empty() || !w.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return invalid("events.webhooks.name", "must be letters, digits, '-' or '_'");
            }
            if self.events.webhooks[..i].iter().any(|o| o.name == w.name) {
                return invalid("events.webhooks.name", "must be unique");
            }
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) || w.url.parse::<http::Uri>().is_err() {
                return invalid("events.webhooks.url", "must be an http:// or https:// URL");
            }
            if w.secret.len() < 16 {
                return invalid("events.webhooks.secret", "must be at least 16 characters");
            }
        }
        if self.events.timeout_ms == 0 {
            return invalid("events.timeout_ms", "must be at least 1");
        }
        if self.acm.validation_retry_min_ms == 0 || self.acm.validation_retry_max_ms < self.acm.validation_retry_min_ms
        {
            return invalid(
                "acm.validation_retry_min_ms",
                "must be at least 1 and at most acm.validation_retry_max_ms",
            );
        }
        if self.acm.validation_timeout_secs == 0 {
            return invalid("acm.validation_timeout_secs", "must be at least 1");
        }
        if self.jobs.max_failures == 0 {
            return invalid("jobs.max_failures", "must be at least 1");
        }
        if self.jobs.lease_ms < 1_000 {
            return invalid("jobs.lease_ms", "must be at least 1000");
        }
        if self.ds.ldaps_port == 0 {
            return invalid("ds.ldaps_port", "must be a port number from 1 to 65535");
        }
        if self.ds.stage_delay_ms > 86_400_000 {
            return invalid("ds.stage_delay_ms", "must be at most 86400000 (a day)");
        }
        if !self.acm.approval_base_url.is_empty() && !self.acm.approval_base_url.starts_with("https://") {
            return invalid("acm.approval_base_url", "must start with https://");
        }
        self.validate_hardening()?;
        self.validate_lightsail()
    }

    /// The checks of the hardening section.
    fn validate_hardening(&self) -> Result<(), ConfigError> {
        if let Err(e) = self.http.validate() {
            return Err(ConfigError::Invalid { field: "http", reason: e.to_string() });
        }
        for (field, value) in [
            ("edge.max_object_bytes", self.edge.max_object_bytes),
            ("edge.fill_bytes", self.edge.fill_bytes),
            ("edge.cache_lock_timeout_ms", self.edge.cache_lock_timeout_ms),
            ("edge.origin_connect_timeout_ms", self.edge.origin_connect_timeout_ms),
            ("edge.origin_max_connections", self.edge.origin_max_connections),
            ("edge.origin_max_connections_per_origin", self.edge.origin_max_connections_per_origin),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid { field, reason: "must be at least 1".into() });
            }
        }
        if let Err(e) = self.edge.http.validate() {
            return Err(ConfigError::Invalid { field: "edge.http", reason: e.to_string() });
        }
        let region_like = |r: &String| {
            (1..=32).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        };
        if !self.extra_regions.iter().all(region_like) {
            return Err(ConfigError::Invalid {
                field: "extra_regions",
                reason: "each must be 1 to 32 characters of a-z, 0-9 and '-'".to_owned(),
            });
        }
        Ok(())
    }

    /// What a CA created now would say about itself, its URLs under `base_url`.
    pub fn ca_profile(&self, base_url: &str) -> carapace_kernel::ca::CaProfile {
        let given = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        carapace_kernel::ca::CaProfile {
            name: self.ca_name.trim().to_owned(),
            country: self.ca.country.clone(),
            organization: given(&self.ca.organization).unwrap_or_else(|| self.ca_name.trim().to_owned()),
            state: given(&self.ca.state),
            locality: given(&self.ca.locality),
            base_url: base_url.to_owned(),
        }
    }

    /// The public base URL for a server whose API listens on `listen`: `base_url`, else
    /// `http://<listen>`.
    pub fn public_base_url(&self, listen: SocketAddr) -> String {
        self.base_url.clone().unwrap_or_else(|| format!("http://{listen}"))
    }

    /// The master key file, defaulting into the data directory.
    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file.clone().unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// AWS Private CA's settings.
    pub fn pca_settings(&self) -> carapace_pca::PcaSettings {
        carapace_pca::PcaSettings { buckets_dir: self.buckets_dir() }
    }

    /// Where AWS Private CA's bucket objects go, defaulting into the data directory.
    pub fn buckets_dir(&self) -> PathBuf {
        self.pca.buckets_dir.clone().unwrap_or_else(|| self.data_dir.join("buckets"))
    }

    /// The SQLite file, defaulting into the data directory.
    pub fn database_file(&self) -> PathBuf {
        self.database_path.clone().unwrap_or_else(|| self.data_dir.join("carapace.db"))
    }
}

/// Settings that moved, as `(old, new)` paths (`section.field`). The old name is still
/// read, from the file and from its environment variable, when the new one is not given in
/// the same place; [`Config::warn_old_names`] says which old names were used.
const MOVED: &[(&str, &str)] = &[("acm.job_lease_ms", "jobs.lease_ms")];

/// The environment variable of a `section.field` path.
fn env_name(path: &str) -> String {
    format!("CARAPACE_{}", path.replace('.', "_").to_uppercase())
}

/// Renames the [`MOVED`] settings in `table` and `env` to their new names, returning the
/// `(old, new)` names that were used.
fn move_old_names(table: &mut toml::Table, env: &mut Vec<(String, String)>) -> Vec<(String, String)> {
    let mut used = Vec::new();
    for (old, new) in MOVED {
        let (old_var, new_var) = (env_name(old), env_name(new));
        if let Some(i) = env.iter().position(|(k, _)| *k == old_var) {
            let (_, value) = env.remove(i);
            if !env.iter().any(|(k, _)| *k == new_var) {
                env.push((new_var.clone(), value));
            }
            used.push((old_var, new_var));
        }
        let (Some((old_section, old_field)), Some((new_section, new_field))) =
            (old.split_once('.'), new.split_once('.'))
        else {
            continue;
        };
        let Some(value) =
            table.get_mut(old_section).and_then(toml::Value::as_table_mut).and_then(|t| t.remove(old_field))
        else {
            continue;
        };
        let section = table.entry(new_section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(section) = section {
            section.entry(new_field).or_insert(value);
        }
        used.push(((*old).to_owned(), (*new).to_owned()));
    }
    used
}

/// Applies `PREFIX_FIELD` variables over `table`, using `defaults` to know the field names
/// and types. Values are read as TOML when they parse as the field's type, else as strings.
fn overlay_env(
    table: &mut toml::Table,
    defaults: &toml::Table,
    prefix: &str,
    env: &[(String, String)],
) -> Result<(), ConfigError> {
    for (name, default) in defaults {
        let var = format!("{prefix}_{}", name.to_uppercase());
        if let toml::Value::Table(sub_defaults) = default {
            let entry = table.entry(name.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(sub) = entry {
                overlay_env(sub, sub_defaults, &var, env)?;
            }
            continue;
        }
        if let Some((_, raw)) = env.iter().find(|(k, _)| *k == var) {
            let value =
                match default {
                    toml::Value::String(_) => toml::Value::String(raw.clone()),
                    _ => format!("v = {raw}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v")).ok_or_else(
                        || ConfigError::Parse(format!("{var}={raw:?} is not a valid value for `{name}`")),
                    )?,
                };
            table.insert(name.clone(), value);
        }
    }
    // Optional fields have no default to learn their names from.
    for name in ["master_key_file", "database_path", "database_url", "base_url"] {
        let var = format!("{prefix}_{}", name.to_uppercase());
        if prefix == "CARAPACE"
            && let Some((_, raw)) = env.iter().find(|(k, _)| *k == var)
        {
            table.insert(name.to_owned(), toml::Value::String(raw.clone()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c, Config::default());
        c.validate().unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\n[acm]\ndomains_per_certificate = 20\n").unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("CARAPACE_ACM_DOMAINS_PER_CERTIFICATE", "30"),
                ("CARAPACE_DEV", "true"),
                ("CARAPACE_DATA_DIR", "/tmp/x"),
                ("CARAPACE_BASE_URL", "https://certs.example.com"),
            ]),
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.acm.domains_per_certificate, 30);
        assert!(c.dev);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.base_url.as_deref(), Some("https://certs.example.com"));
    }

    #[test]
    fn database_url_and_cache_from_env() {
        let url = "postgres://carapace@db.internal:5432/carapace";
        let c = Config::load(None, env(&[("CARAPACE_DATABASE_URL", url), ("CARAPACE_CACHE_ROWS", "0")])).unwrap();
        assert_eq!((c.database_url.as_deref(), c.cache_rows), (Some(url), 0));
        c.validate().unwrap();
        let c = Config::load(None, env(&[("CARAPACE_DATABASE_URL", "mysql://x")])).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("database_url"), "{err}");
    }

    #[test]
    fn hardening_section_from_env_and_checked() {
        let c = Config::load(
            None,
            env(&[
                ("CARAPACE_HTTP_HEADER_TIMEOUT_MS", "2500"),
                ("CARAPACE_HTTP_MAX_CONNECTIONS", "64"),
                ("CARAPACE_EXTRA_REGIONS", r#"["local-1"]"#),
                ("CARAPACE_CRL_REFRESH_SECS", "0"),
            ]),
        )
        .unwrap();
        assert_eq!((c.http.header_timeout_ms, c.http.max_connections), (2_500, 64));
        assert_eq!((c.extra_regions.clone(), c.crl_refresh_secs), (vec!["local-1".to_owned()], 0));
        c.validate().unwrap();
        let c = Config::load(None, env(&[("CARAPACE_HTTP_IDLE_TIMEOUT_MS", "0")])).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("http") && err.contains("idle_timeout_ms"), "{err}");
        let c = Config::load(None, env(&[("CARAPACE_EXTRA_REGIONS", r#"["us-east-1:999999999999"]"#)])).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("extra_regions"));
    }

    #[test]
    fn edge_http_keeps_the_edge_defaults_for_fields_not_given_and_is_checked() {
        let edge = carapace_edge::EdgeConfig::default_limits();
        assert_eq!(Config::default().edge.http, edge);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[edge.http]\nidle_timeout_ms = 5000\n").unwrap();
        let c = Config::load(Some(&path), env(&[("CARAPACE_EDGE_HTTP_MAX_CONNECTIONS_PER_IP", "16")])).unwrap();
        c.validate().unwrap();
        let expected = carapace_net::Limits { idle_timeout_ms: 5_000, max_connections_per_ip: 16, ..edge.clone() };
        assert_eq!(c.edge.http, expected);
        assert_eq!(c.http, carapace_net::Limits::default(), "the API's section is its own");
        let c = Config::load(None, env(&[("CARAPACE_EDGE_HTTP_MAX_CONNECTIONS_PER_IP", "0")])).unwrap();
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("edge.http") && err.contains("max_connections_per_ip"), "{err}");
        std::fs::write(&path, "[edge.http]\nidle_timeout = 5000\n").unwrap();
        assert!(Config::load(Some(&path), env(&[])).is_err(), "unknown fields are refused");
    }

    #[test]
    fn lightsail_origins_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[edge]\ndomain = \"cdn.example.com\"\n[[lightsail.origins]]\nname = \"web\"\nurl = \"https://origin.example.com\"\naccount = \"111111111111\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&path), env(&[])).unwrap();
        c.validate().unwrap();
        assert_eq!(c.edge.domain, "cdn.example.com");
        assert_eq!(c.lightsail.origins[0].resource_type, "Instance");
        assert_eq!(c.lightsail.origins[0].account.as_deref(), Some("111111111111"));
        assert_eq!(c.lightsail.bundles.len(), 3);
        let c = Config::load(
            Some(&path),
            env(&[
                ("CARAPACE_LIGHTSAIL_ORIGINS", "a1=http://127.0.0.1:8080, b2=https://b.example"),
                ("CARAPACE_EDGE_DOMAIN", "edge.test"),
            ]),
        )
        .unwrap();
        c.validate().unwrap();
        let names: Vec<_> = c.lightsail.origins.iter().map(|o| (o.name.as_str(), o.url.as_str())).collect();
        assert_eq!(names, [("a1", "http://127.0.0.1:8080"), ("b2", "https://b.example")]);
        assert_eq!(c.lightsail_settings().edge_domain, "edge.test");
        let err = Config::load(None, env(&[("CARAPACE_LIGHTSAIL_ORIGINS", "nourl")])).unwrap_err().to_string();
        assert!(err.contains("CARAPACE_LIGHTSAIL_ORIGINS"), "{err}");
        let c = Config::load(None, env(&[("CARAPACE_LIGHTSAIL_ORIGINS", "x=ftp://a")])).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("lightsail.origins"));
    }

    #[test]
    fn the_ca_subject_from_file_and_env_is_checked() {
        let c = Config::load(None, env(&[])).unwrap();
        let profile = c.ca_profile("http://pki.example.com");
        assert_eq!((profile.country.as_str(), profile.organization.as_str()), ("XX", "Carapace"));
        assert_eq!((profile.state, profile.locality), (None, None));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "ca_name = \"Example\"\n[ca]\ncountry = \"DE\"\nstate = \"Berlin\"\n").unwrap();
        let c = Config::load(Some(&path), env(&[("CARAPACE_CA_ORGANIZATION", "Example GmbH")])).unwrap();
        c.validate().unwrap();
        let profile = c.ca_profile("http://pki.example.com");
        assert_eq!(profile.name, "Example");
        assert_eq!((profile.country.as_str(), profile.organization.as_str()), ("DE", "Example GmbH"));
        assert_eq!((profile.state.as_deref(), profile.locality), (Some("Berlin"), None));
        assert_eq!(profile.base_url, "http://pki.example.com");
        for (var, value, field) in [
            ("CARAPACE_CA_COUNTRY", "de", "ca.country"),
            ("CARAPACE_CA_COUNTRY", "DEU", "ca.country"),
            ("CARAPACE_CA_NAME", "n123456789n123456789n123456789n123456789n123456789n", "ca_name"),
        ] {
            let c = Config::load(None, env(&[(var, value)])).unwrap();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{var}={value}: {err}");
        }
    }

    #[test]
    fn bad_values_name_the_field() {
        let err = Config::load(None, env(&[("CARAPACE_LISTEN", "nope")])).unwrap_err().to_string();
        assert!(err.contains("listen"), "{err}");
        let err = Config::load(None, env(&[("CARAPACE_ACM_VALIDITY_DAYS", "many")])).unwrap_err().to_string();
        assert!(err.contains("validity_days"), "{err}");
        let mut c = Config::default();
        c.acm.domains_per_certificate = 101;
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("acm.domains_per_certificate"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
    }

    /// Loads `text` as the config file, with `vars` as the environment.
    fn load_toml(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), env(vars))
    }

    #[test]
    fn the_ds_section_from_file_and_env_is_checked() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!((c.ds.ldaps_port, c.ds.stage_delay_ms), (636, 150));
        assert_eq!((c.ds_settings().probe.port, c.ds_settings().directory_step_ms), (636, 150));
        let file = "[ds]\nldaps_port = 1636\nstage_delay_ms = 0\n";
        let c = load_toml(file, &[]).unwrap();
        c.validate().unwrap();
        assert_eq!((c.ds_settings().probe.port, c.ds_settings().directory_step_ms), (1636, 0));
        let c =
            load_toml(file, &[("CARAPACE_DS_LDAPS_PORT", "10636"), ("CARAPACE_DS_STAGE_DELAY_MS", "2000")]).unwrap();
        c.validate().unwrap();
        assert_eq!((c.ds.ldaps_port, c.ds.stage_delay_ms), (10636, 2000));
        for (var, value, field) in [
            ("CARAPACE_DS_LDAPS_PORT", "0", "ds.ldaps_port"),
            ("CARAPACE_DS_STAGE_DELAY_MS", "86400001", "ds.stage_delay_ms"),
        ] {
            let c = Config::load(None, env(&[(var, value)])).unwrap();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{var}={value}: {err}");
        }
        for (var, value, named) in [
            ("CARAPACE_DS_LDAPS_PORT", "70000", "ds.ldaps_port"),
            ("CARAPACE_DS_STAGE_DELAY_MS", "soon", "CARAPACE_DS_STAGE_DELAY_MS"),
        ] {
            let err = Config::load(None, env(&[(var, value)])).unwrap_err().to_string();
            assert!(err.contains(named), "{var}={value}: {err}");
        }
    }

    #[test]
    fn the_job_lease_from_file_and_env_is_checked() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.jobs.lease_ms, 60_000);
        assert!(c.old_names.is_empty());
        let file = "[jobs]\nlease_ms = 5000\n";
        let c = load_toml(file, &[]).unwrap();
        c.validate().unwrap();
        assert_eq!(c.jobs.lease_ms, 5_000);
        assert_eq!(load_toml(file, &[("CARAPACE_JOBS_LEASE_MS", "2000")]).unwrap().jobs.lease_ms, 2_000);
        let c = Config::load(None, env(&[("CARAPACE_JOBS_LEASE_MS", "999")])).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("jobs.lease_ms"));
    }

    #[test]
    fn the_old_job_lease_name_still_works_and_is_reported() {
        let c = load_toml("[acm]\njob_lease_ms = 4000\n", &[]).unwrap();
        c.validate().unwrap();
        assert_eq!(c.jobs.lease_ms, 4_000);
        assert_eq!(c.old_names, [("acm.job_lease_ms".to_owned(), "jobs.lease_ms".to_owned())]);
        let c = Config::load(None, env(&[("CARAPACE_ACM_JOB_LEASE_MS", "3000")])).unwrap();
        assert_eq!(c.jobs.lease_ms, 3_000);
        assert_eq!(c.old_names, [("CARAPACE_ACM_JOB_LEASE_MS".to_owned(), "CARAPACE_JOBS_LEASE_MS".to_owned())]);
        // The new name wins where both are given in one place; the environment beats the file.
        let both = "[acm]\njob_lease_ms = 4000\n[jobs]\nlease_ms = 5000\n";
        assert_eq!(load_toml(both, &[]).unwrap().jobs.lease_ms, 5_000);
        let vars = env(&[("CARAPACE_ACM_JOB_LEASE_MS", "3000"), ("CARAPACE_JOBS_LEASE_MS", "2000")]);
        assert_eq!(Config::load(None, vars).unwrap().jobs.lease_ms, 2_000);
        assert_eq!(load_toml(both, &[("CARAPACE_ACM_JOB_LEASE_MS", "3000")]).unwrap().jobs.lease_ms, 3_000);
        // The old name is checked under the new one.
        let c = Config::load(None, env(&[("CARAPACE_ACM_JOB_LEASE_MS", "10")])).unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("jobs.lease_ms"));
    }
}
