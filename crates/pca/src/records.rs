//! What is stored: certificate authorities and the certificates they sign, as closed types
//! stored by their API names.

use carapace_kernel::ca::{KeyAlgorithm, NameAttribute, SigningAlgorithm, Subject};
use serde::{Deserialize, Serialize};

use crate::PcaError;

/// `ROOT` or `SUBORDINATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaType {
    /// Signs its own certificate.
    Root,
    /// Its certificate comes from another CA.
    Subordinate,
}

/// A CA's status as stored; [`CaRecord::status_at`] adds `EXPIRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaStatus {
    /// Has a key and a request, waits for its certificate.
    PendingCertificate,
    /// Signs.
    Active,
    /// Signs nothing until enabled again.
    Disabled,
    /// Its certificate has lapsed (derived, never stored).
    Expired,
    /// Deleted, restorable until `restorable_until_ms`.
    Deleted,
}

impl CaStatus {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingCertificate => "PENDING_CERTIFICATE",
            Self::Active => "ACTIVE",
            Self::Disabled => "DISABLED",
            Self::Expired => "EXPIRED",
            Self::Deleted => "DELETED",
        }
    }
}

/// `GENERAL_PURPOSE` or `SHORT_LIVED_CERTIFICATE` (at most seven days per certificate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UsageMode {
    /// Any validity the CA's own allows.
    #[default]
    GeneralPurpose,
    /// Certificates of at most seven days.
    ShortLivedCertificate,
}

/// The CA's subject as the API gives it (`ASN1Subject`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaSubject {
    /// `Country`.
    pub country: Option<String>,
    /// `Organization`.
    pub organization: Option<String>,
    /// `OrganizationalUnit`.
    pub organizational_unit: Option<String>,
    /// `DistinguishedNameQualifier`.
    pub distinguished_name_qualifier: Option<String>,
    /// `State`.
    pub state: Option<String>,
    /// `CommonName`.
    pub common_name: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `Locality`.
    pub locality: Option<String>,
    /// `Title`.
    pub title: Option<String>,
    /// `Surname`.
    pub surname: Option<String>,
    /// `GivenName`.
    pub given_name: Option<String>,
    /// `Initials`.
    pub initials: Option<String>,
    /// `Pseudonym`.
    pub pseudonym: Option<String>,
    /// `GenerationQualifier`.
    pub generation_qualifier: Option<String>,
    /// `CustomAttributes`: `(ObjectIdentifier, Value)`.
    #[serde(default)]
    pub custom_attributes: Vec<(String, String)>,
}

impl CaSubject {
    /// The subject to sign: the standard attributes in X.500's usual order (country first,
    /// common name after the organisation), or the custom ones in the order given. AWS
    /// Private CA takes either kind, never both.
    pub fn to_pki(&self) -> Result<Subject, PcaError> {
        let invalid = |e: carapace_kernel::ca::CaError| PcaError::InvalidArgs(format!("Subject: {e}"));
        let mut subject = Subject::new();
        let standard = [
            (NameAttribute::Country, &self.country),
            (NameAttribute::State, &self.state),
            (NameAttribute::Locality, &self.locality),
            (NameAttribute::Organization, &self.organization),
            (NameAttribute::OrganizationalUnit, &self.organizational_unit),
            (NameAttribute::DistinguishedNameQualifier, &self.distinguished_name_qualifier),
            (NameAttribute::SerialNumber, &self.serial_number),
            (NameAttribute::CommonName, &self.common_name),
            (NameAttribute::Title, &self.title),
            (NameAttribute::Surname, &self.surname),
            (NameAttribute::GivenName, &self.given_name),
            (NameAttribute::Initials, &self.initials),
            (NameAttribute::Pseudonym, &self.pseudonym),
            (NameAttribute::GenerationQualifier, &self.generation_qualifier),
        ];
        for (attribute, value) in standard {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                subject.push(attribute, value).map_err(invalid)?;
            }
        }
        if !self.custom_attributes.is_empty() {
            if !subject.is_empty() {
                return Err(PcaError::InvalidArgs(
                    "Subject: CustomAttributes cannot be combined with the standard attributes.".into(),
                ));
            }
            for (oid, value) in &self.custom_attributes {
                subject.push_custom(oid, value).map_err(invalid)?;
            }
        }
        if subject.is_empty() {
            return Err(PcaError::InvalidArgs("Subject: at least one attribute is required.".into()));
        }
        Ok(subject)
    }
}

/// `CrlConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrlConfig {
    /// Whether the CA publishes a CRL.
    pub enabled: bool,
    /// How long each CRL is valid, in days (`ExpirationInDays`, default 7).
    pub expiration_days: Option<i32>,
    /// The host name issued certificates' CRL distribution point names instead of the bucket's.
    pub custom_cname: Option<String>,
    /// The bucket the CRL is written to.
    pub bucket: Option<String>,
    /// `S3ObjectAcl`, recorded and shown (Carapace's buckets are directories).
    pub object_acl: Option<String>,
    /// `CrlDistributionPointExtensionConfiguration.OmitExtension`: issued certificates carry
    /// no CRL distribution point.
    pub omit_extension: bool,
    /// The object key's folder instead of `crl` (`CustomPath`).
    pub custom_path: Option<String>,
}

/// `OcspConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OcspConfig {
    /// Whether Carapace's responder answers for the CA.
    pub enabled: bool,
    /// The host name issued certificates name for the responder instead of Carapace's URL.
    pub custom_cname: Option<String>,
}

/// `RevocationConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// The CRL, if configured.
    pub crl: Option<CrlConfig>,
    /// OCSP, if configured.
    #[serde(default)]
    pub ocsp: Option<OcspConfig>,
}

impl Revocation {
    /// The enabled CRL configuration, if any.
    pub fn crl(&self) -> Option<&CrlConfig> {
        self.crl.as_ref().filter(|c| c.enabled)
    }
}

/// A certificate authority.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaRecord {
    /// The id in the ARN (a UUID).
    pub id: String,
    /// The ARN.
    pub arn: String,
    /// The owning account.
    pub account: String,
    /// Root or subordinate.
    pub ca_type: CaType,
    /// The stored status.
    pub status: CaStatus,
    /// The status before deletion, restored by RestoreCertificateAuthority.
    pub status_before_delete: Option<CaStatus>,
    /// Creation time, Unix ms.
    pub created_ms: i64,
    /// Last status change, Unix ms.
    pub last_state_change_ms: i64,
    /// The key's algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// What the CA signs with.
    pub signing_algorithm: SigningAlgorithm,
    /// The subject.
    pub subject: CaSubject,
    /// The private key, PKCS #8, sealed with the master key (additional data: the ARN),
    /// base64.
    pub key_sealed: String,
    /// The CA's certificate signing request, PEM.
    pub csr_pem: String,
    /// The installed certificate, PEM.
    pub certificate_pem: Option<String>,
    /// The installed certificate's chain (issuer first), PEM; `None` for a root.
    pub chain_pem: Option<String>,
    /// The installed certificate's serial, colon-separated hex.
    pub serial: Option<String>,
    /// The installed certificate's validity, Unix ms.
    pub not_before_ms: Option<i64>,
    /// The installed certificate's validity end, Unix ms.
    pub not_after_ms: Option<i64>,
    /// The installed certificate's path length constraint.
    pub path_len: Option<u8>,
    /// Revocation configuration.
    pub revocation: Revocation,
    /// Usage mode.
    pub usage_mode: UsageMode,
    /// `KeyStorageSecurityStandard` as asked (shown back).
    pub key_storage: String,
    /// When a deleted CA is gone for good, Unix ms.
    pub restorable_until_ms: Option<i64>,
    /// Tags, in order.
    pub tags: Vec<(String, Option<String>)>,
    /// The number of the last CRL published.
    pub crl_number: u64,
    /// Permissions granted to ACM.
    #[serde(default)]
    pub permissions: Vec<crate::permissions::Permission>,
    /// The resource policy, as given.
    #[serde(default)]
    pub policy: Option<String>,
}

impl CaRecord {
    /// The status at `now_ms`: an installed certificate that has lapsed makes an active or
    /// disabled CA `EXPIRED`.
    pub fn status_at(&self, now_ms: i64) -> CaStatus {
        match self.status {
            CaStatus::Active | CaStatus::Disabled if self.not_after_ms.is_some_and(|t| t < now_ms) => CaStatus::Expired,
            s => s,
        }
    }

    /// Whether a deleted CA's restoration window has passed: it no longer exists.
    pub fn is_gone(&self, now_ms: i64) -> bool {
        self.status == CaStatus::Deleted && self.restorable_until_ms.is_some_and(|t| t <= now_ms)
    }
}

/// Where a signed certificate stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Issuance {
    /// Waiting for the worker; holds the request (DER, base64).
    Pending {
        /// The request.
        csr: String,
    },
    /// Signed.
    Issued {
        /// The certificate, PEM.
        pem: String,
        /// When it was signed, Unix ms.
        issued_ms: i64,
    },
    /// The CA could not sign it.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revoked {
    /// When, Unix ms.
    pub at_ms: i64,
    /// The RFC 5280 CRLReason code.
    pub reason: u8,
}

/// A certificate a CA signs (or is signing).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    /// The signing CA's id.
    pub ca_id: String,
    /// The serial, lower-case hex of its DER INTEGER content (no colons).
    pub serial: String,
    /// The template's ARN.
    pub template_arn: String,
    /// Start of validity, Unix ms.
    pub not_before_ms: i64,
    /// End of validity, Unix ms.
    pub not_after_ms: i64,
    /// What it is signed with.
    pub signing_algorithm: SigningAlgorithm,
    /// Where the signing stands.
    pub issuance: Issuance,
    /// Its revocation, if revoked.
    pub revoked: Option<Revoked>,
}
