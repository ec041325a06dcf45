//! What Lightsail stores. These rows are also the edge's contract: it reads distributions,
//! domain claims, certificates and cache resets, and writes metric counters and its own
//! node report. Bodies are JSON with a `schema` number; a reader meeting a newer schema
//! refuses the row instead of misreading it.
//!
//! | kind | scope | id | body |
//! |---|---|---|---|
//! | [`CERTIFICATE_KIND`] | `<account>/<region>` | certificate name | [`CertificateRecord`] (points at the ACM record) |
//! | [`DISTRIBUTION_KIND`] | `""` | `<account>/<distribution name>` | [`DistributionRecord`] |
//! | [`DOMAIN_KIND`] | `""` | a host name | [`DomainClaim`]: which distribution serves it |
//! | [`OPERATION_KIND`] | `<account>/<region>` | operation id | [`OperationRecord`] |
//! | [`RESOURCE_OPERATION_KIND`] | `<account>/<region>` | `<resource name>/<operation id>` | the same [`OperationRecord`] |
//! | [`CACHE_RESET_KIND`] | `""` | `<account>/<distribution name>` | [`CacheResetRecord`] (the latest) |
//! | [`METRICS_KIND`] | `""` | `<distribution id>/<minute ms, 13 digits>/<node>` | [`MinuteCounters`]; `created_ms` = the minute |
//! | [`EDGE_NODE_KIND`] | `""` | node id | [`EdgeNodeReport`] |
//!
//! Distributions live in the global scope (not per account) because the edge serves every
//! account's distributions from one snapshot and host names are global.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cache::{Behavior, CacheSettings, CustomErrorResponse, PathBehavior};
use carapace_acm::Tag;
use carapace_kernel::stored::{self, RecordError};

/// Lightsail certificates (the name → ACM certificate mapping and Lightsail's own fields).
pub const CERTIFICATE_KIND: &str = "lightsail.certificate";
/// Distributions.
pub const DISTRIBUTION_KIND: &str = "lightsail.distribution";
/// Host names claimed by a distribution (default domain, subdomain, alternative names).
pub const DOMAIN_KIND: &str = "lightsail.domain";
/// Operations by id.
pub const OPERATION_KIND: &str = "lightsail.operation";
/// Operations by resource name (the same records, for GetOperationsForResource).
pub const RESOURCE_OPERATION_KIND: &str = "lightsail.resource-operation";
/// The latest cache reset of each distribution.
pub const CACHE_RESET_KIND: &str = "lightsail.cache-reset";
/// Per-minute, per-edge-node request counters of each distribution.
pub const METRICS_KIND: &str = "lightsail.metrics";
/// What each running edge has applied.
pub const EDGE_NODE_KIND: &str = "lightsail.edge-node";
/// Lightsail's row kinds that only the API server writes, so its store may serve them from
/// memory. Edge reports and metric counters are written by every edge node and are not
/// among them.
pub const SERVER_OWNED_KINDS: &[&str] =
    &[CERTIFICATE_KIND, DISTRIBUTION_KIND, DOMAIN_KIND, OPERATION_KIND, RESOURCE_OPERATION_KIND, CACHE_RESET_KIND];
/// The kinds of resource Lightsail's operations here act on (`resourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceType {
    /// A content delivery network distribution.
    Distribution,
    /// An SSL/TLS certificate.
    Certificate,
}

impl ResourceType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Distribution => "Distribution",
            Self::Certificate => "Certificate",
        }
    }
}

/// The operations whose records Lightsail keeps (`operationType`), stored by their wire
/// names. TagResource and UntagResource are outside the model's `OperationType` enum, but
/// they are what the AWS CLI's example outputs show, so the wire member is a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OperationType {
    /// CreateDistribution.
    CreateDistribution,
    /// UpdateDistribution.
    UpdateDistribution,
    /// UpdateDistributionBundle.
    UpdateDistributionBundle,
    /// AttachCertificateToDistribution.
    AttachCertificateToDistribution,
    /// DetachCertificateFromDistribution.
    DetachCertificateFromDistribution,
    /// DeleteDistribution.
    DeleteDistribution,
    /// ResetDistributionCache.
    ResetDistributionCache,
    /// CreateCertificate.
    CreateCertificate,
    /// DeleteCertificate.
    DeleteCertificate,
    /// TagResource.
    TagResource,
    /// UntagResource.
    UntagResource,
}

impl OperationType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateDistribution => "CreateDistribution",
            Self::UpdateDistribution => "UpdateDistribution",
            Self::UpdateDistributionBundle => "UpdateDistributionBundle",
            Self::AttachCertificateToDistribution => "AttachCertificateToDistribution",
            Self::DetachCertificateFromDistribution => "DetachCertificateFromDistribution",
            Self::DeleteDistribution => "DeleteDistribution",
            Self::ResetDistributionCache => "ResetDistributionCache",
            Self::CreateCertificate => "CreateCertificate",
            Self::DeleteCertificate => "DeleteCertificate",
            Self::TagResource => "TagResource",
            Self::UntagResource => "UntagResource",
        }
    }
}

/// `origin.protocolPolicy` (the model's `OriginProtocolPolicyEnum`): the scheme the edge
/// uses towards the origin. Stored by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OriginProtocolPolicy {
    /// `http-only`.
    #[serde(rename = "http-only")]
    HttpOnly,
    /// `https-only`: the edge verifies the origin's certificate.
    #[serde(rename = "https-only")]
    HttpsOnly,
}

impl OriginProtocolPolicy {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpOnly => "http-only",
            Self::HttpsOnly => "https-only",
        }
    }
}

/// `viewerMinimumTlsProtocolVersion` (the model's `ViewerMinimumTlsProtocolVersionEnum`):
/// the oldest TLS version and ciphers a viewer may use. Stored by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ViewerMinimumTls {
    /// `TLSv1.1_2016`.
    #[serde(rename = "TLSv1.1_2016")]
    Tls11_2016,
    /// `TLSv1.2_2018`.
    #[serde(rename = "TLSv1.2_2018")]
    Tls12_2018,
    /// `TLSv1.2_2019`.
    #[serde(rename = "TLSv1.2_2019")]
    Tls12_2019,
    /// `TLSv1.2_2021`, Lightsail's default.
    #[serde(rename = "TLSv1.2_2021")]
    Tls12_2021,
}

impl ViewerMinimumTls {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls11_2016 => "TLSv1.1_2016",
            Self::Tls12_2018 => "TLSv1.2_2018",
            Self::Tls12_2019 => "TLSv1.2_2019",
            Self::Tls12_2021 => "TLSv1.2_2021",
        }
    }
}

/// `ipAddressType` of a distribution (the model's `IpAddressType`) and of its origin
/// (`OriginIpAddressTypeEnum`, the same three values). Stored by its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpAddressType {
    /// `dualstack`: IPv4 and IPv6, Lightsail's default for a distribution.
    #[serde(rename = "dualstack")]
    Dualstack,
    /// `ipv4`.
    #[serde(rename = "ipv4")]
    Ipv4,
    /// `ipv6`.
    #[serde(rename = "ipv6")]
    Ipv6,
}

impl IpAddressType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dualstack => "dualstack",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
        }
    }
}

/// The body schema this build writes.
pub const SCHEMA: u32 = 1;

/// Decodes a stored body of any Lightsail kind.
pub fn decode<T: serde::de::DeserializeOwned + Versioned>(body: &[u8]) -> Result<T, RecordError> {
    let v: T = stored::decode(T::WHAT, body)?;
    stored::check_schema(T::WHAT, v.schema(), SCHEMA)?;
    Ok(v)
}

/// Encodes for storage. A record that does not encode is an error, never an empty body.
pub fn encode<T: Serialize + Versioned>(v: &T) -> Result<Vec<u8>, RecordError> {
    stored::encode(T::WHAT, v)
}

/// A stored body with a schema number.
pub trait Versioned {
    /// What it is, for error messages.
    const WHAT: &'static str;
    /// Its schema.
    fn schema(&self) -> u32;
}

macro_rules! versioned {
    ($t:ty, $what:literal) => {
        impl Versioned for $t {
            const WHAT: &'static str = $what;
            fn schema(&self) -> u32 {
                self.schema
            }
        }
    };
}

/// A Lightsail certificate (row kind [`CERTIFICATE_KIND`]). Status, names, validation and
/// the key material are the ACM record's (`acm.certificate` / `acm.certificate-material`
/// in the same scope, id [`CertificateRecord::acm_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// [`SCHEMA`].
    pub schema: u32,
    /// `certificateName`.
    pub name: String,
    /// `arn:aws:lightsail:<region>:<account>:Certificate/<uuid>`.
    pub arn: String,
    /// The ACM record's id.
    pub acm_id: String,
    /// The ACM record's ARN (what `InUseBy` marks are set on).
    pub acm_arn: String,
    /// `domainName` (for summaries without reading the ACM record).
    pub domain_name: String,
    /// `supportCode`.
    pub support_code: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// Lightsail tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}
versioned!(CertificateRecord, "lightsail certificate");

/// The origin a distribution pulls from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginRecord {
    /// `origin.name` (a declared origin).
    pub name: String,
    /// `origin.regionName`.
    pub region: String,
    /// `origin.resourceType`.
    pub resource_type: String,
    /// The declared URL the edge fetches from.
    pub url: String,
    /// `originPublicDNS`: the URL's host.
    pub public_dns: String,
    /// `protocolPolicy`: the scheme the edge uses towards the origin.
    pub protocol_policy: OriginProtocolPolicy,
    /// Seconds the edge waits for the origin (1–60).
    pub response_timeout_secs: i32,
    /// `origin.ipAddressType`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address_type: Option<IpAddressType>,
}

/// The certificate attached to a distribution, as the edge finds its material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedCertificate {
    /// `certificateName`.
    pub name: String,
    /// The ACM scope (`<account>/us-east-1`).
    pub scope: String,
    /// The ACM id: the leaf, chain and sealed key are in `acm.certificate-material`
    /// `(scope, acm_id)`, the key sealed with the master key (aad = [`Self::acm_arn`]).
    pub acm_id: String,
    /// The ACM ARN.
    pub acm_arn: String,
}

/// The Lightsail subdomain of a distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubdomainRecord {
    /// The label (`mysite`).
    pub name: String,
    /// The host it serves (`mysite.<edge domain>`).
    pub host: String,
}

/// A distribution (row kind [`DISTRIBUTION_KIND`], id `<account>/<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DistributionRecord {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The uuid in the ARN; metrics and edge reports key on it (a re-created name is a new
    /// distribution).
    pub id: String,
    /// Owner account.
    pub account: String,
    /// `name`.
    pub name: String,
    /// `arn:aws:lightsail:us-east-1:<account>:Distribution/<id>`.
    pub arn: String,
    /// `supportCode`.
    pub support_code: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// Last configuration change, Unix milliseconds.
    pub changed_ms: i64,
    /// Grows by one with every change the edge must apply; the edge reports the version it
    /// applied ([`EdgeNodeReport::applied`]) and the status is `Deployed` once every live
    /// edge has reached it.
    pub config_version: u64,
    /// `domainName`: `d<13 letters and digits>.<edge domain>`.
    pub domain_name: String,
    /// The Lightsail subdomain, if one was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<SubdomainRecord>,
    /// `bundleId`.
    pub bundle_id: String,
    /// When UpdateDistributionBundle last changed the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_changed_ms: Option<i64>,
    /// `isEnabled`.
    pub is_enabled: bool,
    /// The origin.
    pub origin: OriginRecord,
    /// `defaultCacheBehavior`.
    pub default_behavior: Behavior,
    /// `cacheBehaviorSettings`.
    pub cache_settings: CacheSettings,
    /// `cacheBehaviors`, in the order given (the edge picks the first match).
    #[serde(default)]
    pub cache_behaviors: Vec<PathBehavior>,
    /// `ipAddressType`.
    pub ip_address_type: IpAddressType,
    /// `viewerMinimumTlsProtocolVersion`.
    pub viewer_minimum_tls: ViewerMinimumTls,
    /// `defaultRootObject`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_root_object: Option<String>,
    /// `customErrorResponses`.
    #[serde(default)]
    pub custom_error_responses: Vec<CustomErrorResponse>,
    /// The attached certificate; `None`: the default certificate (the edge's wildcard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<AttachedCertificate>,
    /// `alternativeDomainNames`: the attached certificate's domains.
    #[serde(default)]
    pub alternative_domain_names: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}
versioned!(DistributionRecord, "lightsail distribution");

impl DistributionRecord {
    /// Every host name the distribution answers for: default domain, subdomain, alternative
    /// domain names.
    pub fn hosts(&self) -> Vec<String> {
        let mut out = vec![self.domain_name.clone()];
        out.extend(self.subdomain.iter().map(|s| s.host.clone()));
        out.extend(self.alternative_domain_names.iter().cloned());
        out
    }
}

/// Which distribution serves a host name (row kind [`DOMAIN_KIND`], id = the host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainClaim {
    /// [`SCHEMA`].
    pub schema: u32,
    /// Owner account.
    pub account: String,
    /// Distribution name.
    pub distribution: String,
    /// Distribution id.
    pub distribution_id: String,
}
versioned!(DomainClaim, "lightsail domain claim");

/// An operation's status as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoredStatus {
    /// In progress.
    Started,
    /// Done.
    Succeeded,
    /// Failed (see the error code and details).
    Failed,
}

/// An operation (row kinds [`OPERATION_KIND`] and [`RESOURCE_OPERATION_KIND`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    /// [`SCHEMA`].
    pub schema: u32,
    /// `id`.
    pub id: String,
    /// `resourceName`.
    pub resource_name: String,
    /// `resourceType`.
    pub resource_type: ResourceType,
    /// `createdAt`, Unix milliseconds.
    pub created_ms: i64,
    /// `location.regionName`.
    pub region: String,
    /// `operationType`.
    pub operation_type: OperationType,
    /// `operationDetails`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// `status`.
    pub status: StoredStatus,
    /// `statusChangedAt`, Unix milliseconds.
    pub status_changed_ms: i64,
    /// `errorCode` of a failed operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// `errorDetails` of a failed operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_details: Option<String>,
    /// The distribution configuration this operation produced, for the operations that
    /// change what the edge serves: the operation fails when an edge cannot apply it
    /// ([`EdgeNodeReport::failed`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ConfigChange>,
}
versioned!(OperationRecord, "lightsail operation");

/// A distribution's configuration version, as an operation produced it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigChange {
    /// [`DistributionRecord::id`].
    pub distribution_id: String,
    /// [`DistributionRecord::config_version`] after the operation.
    pub config_version: u64,
}

/// A distribution's latest cache reset (row kind [`CACHE_RESET_KIND`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheResetRecord {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The reset's id (the operation id). The edge purges the distribution's cache, then
    /// reports this id in [`EdgeNodeReport::purged`].
    pub id: String,
    /// The distribution's id.
    pub distribution_id: String,
    /// `createTime`, Unix milliseconds.
    pub created_ms: i64,
}
versioned!(CacheResetRecord, "lightsail cache reset");

/// One edge node's counters for one distribution and one minute (row kind
/// [`METRICS_KIND`]). The edge adds to its own row (read, add, write at the version read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteCounters {
    /// [`SCHEMA`].
    #[serde(default)]
    pub schema: u32,
    /// Viewer requests (every method, HTTP and HTTPS).
    pub requests: u64,
    /// Bytes sent to viewers for GET, HEAD and OPTIONS requests.
    pub bytes_downloaded: u64,
    /// Bytes of POST and PUT bodies sent on to the origin.
    pub bytes_uploaded: u64,
    /// Responses with a 4xx status.
    pub status_4xx: u64,
    /// Responses with a 5xx status.
    pub status_5xx: u64,
}
versioned!(MinuteCounters, "lightsail minute counters");

impl MinuteCounters {
    /// Adds another node's (or flush's) counts.
    pub fn add(&mut self, o: &MinuteCounters) {
        self.requests += o.requests;
        self.bytes_downloaded += o.bytes_downloaded;
        self.bytes_uploaded += o.bytes_uploaded;
        self.status_4xx += o.status_4xx;
        self.status_5xx += o.status_5xx;
    }
}

/// What one running edge has applied (row kind [`EDGE_NODE_KIND`], id = node id). The
/// edge rewrites it after applying a snapshot or purging, and at least every
/// [`super::edge::EDGE_NODE_TTL_MS`]/3 as a heartbeat; a node silent for longer no longer
/// counts as running.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeNodeReport {
    /// [`SCHEMA`].
    #[serde(default)]
    pub schema: u32,
    /// Last report, Unix milliseconds.
    pub heartbeat_ms: i64,
    /// Distribution id → the `config_version` the node serves.
    #[serde(default)]
    pub applied: BTreeMap<String, u64>,
    /// Distribution id → the id of the latest cache reset the node has purged for.
    #[serde(default)]
    pub purged: BTreeMap<String, String>,
    /// Distribution id → the latest `config_version` the node could not apply, and why. The
    /// node keeps serving the version in [`EdgeNodeReport::applied`], if any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed: BTreeMap<String, FailedChange>,
}
versioned!(EdgeNodeReport, "lightsail edge node report");

/// A distribution configuration an edge refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedChange {
    /// The refused [`DistributionRecord::config_version`].
    pub config_version: u64,
    /// Why, in words for the operation's `errorDetails`.
    pub reason: String,
    /// When the edge first refused it, Unix milliseconds.
    pub at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each enum's wire name is the name it is stored by.
    #[test]
    fn enums_are_stored_by_their_wire_names() {
        fn stored<T: Serialize>(v: T) -> String {
            serde_json::to_value(v).unwrap().as_str().unwrap().to_owned()
        }
        for p in [OriginProtocolPolicy::HttpOnly, OriginProtocolPolicy::HttpsOnly] {
            assert_eq!(stored(p), p.as_str());
        }
        for t in [ViewerMinimumTls::Tls11_2016, ViewerMinimumTls::Tls12_2018, ViewerMinimumTls::Tls12_2019] {
            assert_eq!(stored(t), t.as_str());
        }
        assert_eq!(stored(ViewerMinimumTls::Tls12_2021), ViewerMinimumTls::Tls12_2021.as_str());
        for t in [IpAddressType::Dualstack, IpAddressType::Ipv4, IpAddressType::Ipv6] {
            assert_eq!(stored(t), t.as_str());
        }
    }

    /// A distribution stored with these members as strings loads into the enums; a value
    /// outside them is refused, not guessed.
    #[test]
    fn stored_distributions_load_into_the_enums() {
        let mut body = serde_json::to_value(crate::tests::sample_distribution()).unwrap();
        assert_eq!(body["origin"]["protocol_policy"], "http-only");
        assert_eq!(body["viewer_minimum_tls"], "TLSv1.2_2021");
        assert_eq!(body["ip_address_type"], "dualstack");
        body["origin"]["protocol_policy"] = "https-only".into();
        body["origin"]["ip_address_type"] = "ipv6".into();
        body["viewer_minimum_tls"] = "TLSv1.1_2016".into();
        body["ip_address_type"] = "ipv4".into();
        let d: DistributionRecord = decode(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(d.origin.protocol_policy, OriginProtocolPolicy::HttpsOnly);
        assert_eq!(d.origin.ip_address_type, Some(IpAddressType::Ipv6));
        assert_eq!(d.viewer_minimum_tls, ViewerMinimumTls::Tls11_2016);
        assert_eq!(d.ip_address_type, IpAddressType::Ipv4);
        body["origin"]["protocol_policy"] = "gopher-only".into();
        assert!(decode::<DistributionRecord>(&serde_json::to_vec(&body).unwrap()).is_err());
    }
}
