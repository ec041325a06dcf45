//! The CA itself: its stored form, generation, import, loading, and leaf and CRL issuance.

use std::sync::Arc;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, CustomExtension,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use x509_cert::der::Encode as _;
use x509_cert::der::asn1::{Ia5String, ObjectIdentifier};
use x509_cert::der::oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax, CertificatePolicies};
use x509_parser::certificate::X509Certificate;
use x509_parser::x509::X509Name;

use super::CaError;
use super::der;
use super::keys::{KeyAlgorithm, KeyFamily, PrivateKey, Signer, generate_key};
use super::parse::{certificate_pem, certificates_der, colon_hex, display_issuer, verify_signed_by, x509};
use crate::crypto::MasterKey;

mod n2;
mod private_ca;
use n2::N2;
pub use n2::{Hierarchy, LeafUsage, N2Material};
pub use private_ca::{
    CaCertificateProblem, Csr, NameAttribute, PrivateCertificate, PrivateIssue, PrivateSigner, Subject, Template,
    ca_csr, certificate_public_key, check_ca_certificate, leaf_csr,
};

/// Version of the [`CaMaterial`] layout.
const MATERIAL_VERSION: u32 = 1;

/// Root lifetime: 20 years (Amazon Root CA 1 runs 2015–2038).
const ROOT_VALIDITY: Duration = Duration::days(20 * 365 + 5);
/// Intermediate lifetime: 10 years.
const INTERMEDIATE_VALIDITY: Duration = Duration::days(10 * 365 + 2);
/// CA certificates start an hour before their creation so a node whose clock is slightly
/// behind the creating node's still sees them as valid.
const CA_BACKDATE: Duration = Duration::hours(1);

/// RFC 5280 upper bound for a common name (ub-common-name).
const MAX_COMMON_NAME: usize = 64;
/// RFC 5280 upper bound for an organization name (ub-organization-name).
const MAX_ORGANIZATION_NAME: usize = 64;
/// RFC 5280 upper bound for a state or province and for a locality name (ub-state-name,
/// ub-locality-name).
const MAX_PLACE_NAME: usize = 128;
/// Longest DNS name (RFC 1035 §2.3.4, textual form).
const MAX_DNS_NAME: usize = 253;

/// The stored (serde) form of the CA: certificates as PEM, private keys sealed with the
/// master key and base64-encoded. Safe to keep in the database; useless without the master key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaMaterial {
    /// Layout version (1).
    pub version: u32,
    /// The root certificate, PEM.
    pub root_certificate_pem: String,
    /// The root's private key, sealed. `None` for an imported CA whose root key stays with its
    /// owner.
    pub root_private_key_sealed: Option<String>,
    /// The intermediate that signs RSA leaves.
    pub rsa_intermediate: IntermediateMaterial,
    /// The intermediate that signs EC leaves (the same as `rsa_intermediate` for an imported CA).
    pub ecdsa_intermediate: IntermediateMaterial,
    /// The second hierarchy, for ACM's Amazon N2 certificates (`RootHierarchyType`); added to
    /// stored material by [`CertificateAuthority::add_n2`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n2: Option<N2Material>,
}

/// What the CA certificates Carapace generates say about their owner, and where their
/// extensions point: the subject of BR 7.1.2.10.2 ("CA Certificate Naming") and the base URL of
/// the root's CRL and certificate, which the intermediates' CRL distribution point and AIA name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaProfile {
    /// The CA's name: the common names are `<name> Root CA 1`, `<name> RSA 2048 M01` and
    /// `<name> ECDSA 256 M01`, so at most 50 characters.
    pub name: String,
    /// `countryName`: an ISO 3166-1 alpha-2 code, upper case (`XX`: no country stated).
    pub country: String,
    /// `organizationName` (at most 64 characters).
    pub organization: String,
    /// `stateOrProvinceName`, omitted when `None` (at most 128 characters).
    pub state: Option<String>,
    /// `localityName`, omitted when `None` (at most 128 characters).
    pub locality: Option<String>,
    /// The service's base URL (e.g. `http://pki.example.com`): the intermediates' CRL
    /// distribution point is `<base_url>/crl/<root id>.crl` and their caIssuers
    /// `<base_url>/ca/<root id>.crt`.
    pub base_url: String,
}

impl CaProfile {
    /// A profile with organization `name`, country `XX` and no state or locality.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        let name = name.into();
        Self {
            organization: name.clone(),
            name,
            country: String::from("XX"),
            state: None,
            locality: None,
            base_url: base_url.into(),
        }
    }

    /// The subject of a CA certificate named `common_name`: countryName, stateOrProvinceName,
    /// localityName, organizationName, commonName, in the order BR 7.1.4.1 prescribes, with
    /// countryName a PrintableString (RFC 5280 Appendix A, X520countryName).
    fn subject(&self, common_name: &str) -> Result<rcgen::DistinguishedName, CaError> {
        let invalid = |why: String| CaError::InvalidRequest(format!("CA subject: {why}"));
        let bounded = |field: &str, value: &str, max: usize| {
            if value.trim().is_empty() || value.chars().count() > max {
                Err(invalid(format!("{field} must be 1 to {max} characters")))
            } else {
                Ok(value.to_owned())
            }
        };
        if self.country.len() != 2 || !self.country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(invalid(format!("country {:?} is not an ISO 3166-1 alpha-2 code", self.country)));
        }
        let country = rcgen::string::PrintableString::try_from(self.country.as_str())
            .map_err(|_| invalid(format!("country {:?} is not printable", self.country)))?;
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(DnType::CountryName, DnValue::PrintableString(country));
        if let Some(state) = &self.state {
            dn.push(DnType::StateOrProvinceName, bounded("state", state, MAX_PLACE_NAME)?);
        }
        if let Some(locality) = &self.locality {
            dn.push(DnType::LocalityName, bounded("locality", locality, MAX_PLACE_NAME)?);
        }
        dn.push(DnType::OrganizationName, bounded("organization", &self.organization, MAX_ORGANIZATION_NAME)?);
        dn.push(DnType::CommonName, bounded("common name", common_name, MAX_COMMON_NAME)?);
        Ok(dn)
    }
}

/// A CA certificate and its sealed private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntermediateMaterial {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The private key (PKCS#8 DER), sealed with the master key and base64-encoded. The
    /// sealing is bound to the certificate, so keys cannot be swapped between certificates.
    pub private_key_sealed: String,
}

/// What to put in a leaf certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafRequest {
    /// The subject common name: ACM's `DomainName` (at most 64 characters).
    pub common_name: String,
    /// DNS subject alternative names, wildcards allowed. The common name is always included
    /// (first), as ACM does; duplicates (case-insensitive) are dropped.
    pub sans: Vec<String>,
    /// IP address subject alternative names. ACM certificates name domains only; Carapace's
    /// own HTTPS endpoints (the approval page) also answer on addresses.
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity (ACM issues 395 days). Clamped to the issuing intermediate's expiry:
    /// a CA never vouches for longer than it is itself valid.
    pub not_after: OffsetDateTime,
    /// The serial number (big-endian, positive); `None` for a random 128-bit serial.
    pub serial: Option<[u8; 16]>,
    /// The service's own base URL (e.g. `http://127.0.0.1:4566`), for the AIA and CRL URLs.
    pub base_url: String,
}

/// A freshly issued leaf certificate and the facts ACM reports about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The leaf, PEM.
    pub certificate_pem: String,
    /// The issuing intermediate then the root, PEM (ACM's `CertificateChain`).
    pub chain_pem: String,
    /// Serial as ACM shows it: `0a:1b:...` (the DER INTEGER's bytes).
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity (after clamping to the intermediate's expiry).
    pub not_after: OffsetDateTime,
    /// ACM key usage names: `DIGITAL_SIGNATURE`, and `KEY_ENCIPHERMENT` for RSA keys.
    pub key_usages: Vec<String>,
    /// ACM extended key usage names: `TLS_WEB_SERVER_AUTHENTICATION`.
    pub extended_key_usages: Vec<String>,
    /// ACM-style signature algorithm: `SHA256WITHRSA`, `SHA256WITHECDSA`, ...
    pub signature_algorithm: String,
    /// ACM's `Issuer`: the issuing CA's organisation (e.g. `Carapace`).
    pub issuer: String,
    /// The subject, e.g. `CN=example.com`.
    pub subject: String,
    /// DNS names in the certificate, in order (ACM's `SubjectAlternativeNames`).
    pub subject_alternative_names: Vec<String>,
    /// Id of the issuing intermediate (see [`CertificateAuthority::intermediate_by_id`]).
    pub intermediate_id: String,
}

/// A revoked certificate, for [`CertificateAuthority::sign_crl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSerial {
    /// The serial number's bytes (as in the certificate).
    pub serial: Vec<u8>,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// RFC 5280 §5.3.1 reason code (0–10, 7 unused); `None` omits the extension.
    pub reason_code: Option<u8>,
}

/// A public view of one intermediate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntermediateInfo {
    /// Its id: the hex of its subject key identifier. Equal to the authority key identifier
    /// of every leaf it signs, and used in the AIA/CRL URLs.
    pub id: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// Which leaf key families it signs.
    pub families: Vec<KeyFamily>,
}

/// A loaded intermediate, ready to sign.
struct Intermediate {
    id: String,
    pem: String,
    der: Vec<u8>,
    signer: Signer,
    /// Issuer name and key identifier rcgen writes into what this intermediate signs.
    issuer_params: CertificateParams,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    /// ACM's `Issuer` for its leaves.
    display_name: String,
}

/// The certificate authority: a root and the intermediates that sign leaves.
pub struct CertificateAuthority {
    root_pem: String,
    root_der: Vec<u8>,
    /// The hex of the root's subject key identifier: its id in `/ca/<id>.crt` and
    /// `/crl/<id>.crl`.
    root_id: String,
    /// Kept so the root's CRL and a future intermediate rotation can be signed; `None` for
    /// imported CAs.
    root_signer: Option<Signer>,
    /// Issuer name and key identifier rcgen writes into what the root signs (its CRL); `None`
    /// without the root key.
    root_issuer_params: Option<CertificateParams>,
    rsa: Arc<Intermediate>,
    ecdsa: Arc<Intermediate>,
    /// The second hierarchy (ACM's Amazon N2 roots), once generated.
    n2: Option<N2>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("rsa_intermediate", &self.rsa.id)
            .field("ecdsa_intermediate", &self.ecdsa.id)
            .field("has_root_key", &self.root_signer.is_some())
            .field("n2_root", &self.n2.as_ref().map(|n2| &n2.root_id))
            .finish_non_exhaustive()
    }
}

/// The AAD a CA key is sealed with: binds the key to its certificate.
fn key_aad(cert_der: &[u8]) -> Vec<u8> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert_der);
    let mut aad = b"carapace/ca-key/v1/".to_vec();
    aad.extend_from_slice(digest.as_ref());
    aad
}

fn seal_key(key: &PrivateKey, cert_der: &[u8], master_key: &MasterKey) -> Result<String, CaError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(master_key.seal(key.pkcs8_der(), &key_aad(cert_der))?))
}

fn unseal_key(sealed_b64: &str, cert_der: &[u8], master_key: &MasterKey) -> Result<PrivateKey, CaError> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(sealed_b64)
        .map_err(|_| CaError::Material("a sealed key is not valid base64".into()))?;
    let pkcs8 = master_key.open(&sealed, &key_aad(cert_der))?;
    PrivateKey::from_pkcs8_der(&pkcs8)
}

/// A root's sealed key, unsealed and checked against the root certificate, as the signer and
/// the issuer parameters of what it signs.
fn unseal_root_key(
    sealed_b64: &str,
    root_der: &[u8],
    root: &X509Certificate<'_>,
    master_key: &MasterKey,
    what: &str,
) -> Result<(Signer, CertificateParams), CaError> {
    let key = unseal_key(sealed_b64, root_der, master_key)?;
    if root.public_key().raw != key.public_key_der() {
        return Err(CaError::Material(format!("the {what} private key does not match its certificate")));
    }
    let signer = Signer::new(&key)?;
    let params = issuer_params(root, &signer)?;
    Ok((signer, params))
}

/// The single certificate in a PEM field of stored material or an import.
fn single_certificate_der(pem_text: &str, what: &str) -> Result<Vec<u8>, CaError> {
    certificates_der(pem_text)?
        .into_iter()
        .next()
        .ok_or_else(|| CaError::InvalidCertificate(format!("{what}: no PEM CERTIFICATE block found")))
}

/// 16 random bytes as a positive serial that always encodes in exactly 16 bytes: the top bit
/// is cleared (positive) and the next one set (no leading zero byte), leaving 126 random bits
/// — well above the CA/Browser Forum's 64.
pub fn random_serial() -> Result<[u8; 16], CaError> {
    let mut serial = [0u8; 16];
    aws_lc_rs::rand::fill(&mut serial).map_err(|_| CaError::Signing(rcgen::Error::RingUnspecified))?;
    serial[0] = (serial[0] & 0x3f) | 0x40;
    Ok(serial)
}

/// The bytes of a DER INTEGER holding the positive number `magnitude`.
fn der_integer_bytes(magnitude: &[u8]) -> Vec<u8> {
    let m = der::unsigned_magnitude(magnitude);
    match m.first() {
        None => vec![0],
        Some(first) if first & 0x80 != 0 => [&[0u8][..], m].concat(),
        Some(_) => m.to_vec(),
    }
}

/// Rebuilds an rcgen `DistinguishedName` from a parsed name, keeping each value's string type,
/// so what rcgen writes as the issuer of a leaf is byte-identical to the CA's subject (callers
/// verify this). Multi-valued RDNs and repeated attribute types cannot be represented by rcgen
/// and are refused.
fn distinguished_name(name: &X509Name<'_>) -> Result<rcgen::DistinguishedName, CaError> {
    use x509_parser::der_parser::asn1_rs::Tag;
    let unsupported = |why: &str| CaError::Import(format!("unsupported CA subject name ({why})"));
    let mut dn = rcgen::DistinguishedName::new();
    let mut seen = Vec::new();
    for rdn in name.iter() {
        let mut attrs = rdn.iter();
        let (Some(attr), None) = (attrs.next(), attrs.next()) else {
            return Err(unsupported("multi-valued or empty relative distinguished name"));
        };
        let arcs: Vec<u64> = attr.attr_type().iter().ok_or_else(|| unsupported("attribute type"))?.collect();
        if seen.contains(&arcs) {
            return Err(unsupported("repeated attribute type"));
        }
        seen.push(arcs.clone());
        let value = attr.attr_value();
        let text = || std::str::from_utf8(value.data).map_err(|_| unsupported("attribute value is not text"));
        let bad_value = |_| unsupported("attribute value");
        let dn_value = match value.header.tag() {
            Tag::PrintableString => DnValue::PrintableString(text()?.try_into().map_err(bad_value)?),
            Tag::Utf8String => DnValue::Utf8String(text()?.to_owned()),
            Tag::Ia5String => DnValue::Ia5String(text()?.try_into().map_err(bad_value)?),
            Tag::T61String => DnValue::TeletexString(text()?.try_into().map_err(bad_value)?),
            Tag::BmpString => {
                DnValue::BmpString(rcgen::string::BmpString::from_utf16be(value.data.to_vec()).map_err(bad_value)?)
            }
            Tag::UniversalString => DnValue::UniversalString(
                rcgen::string::UniversalString::from_utf32be(value.data.to_vec()).map_err(bad_value)?,
            ),
            _ => return Err(unsupported("attribute string type")),
        };
        dn.push(DnType::from_oid(&arcs), dn_value);
    }
    Ok(dn)
}

/// rcgen key usages matching a parsed certificate's, so rcgen's CRL-signer check agrees with
/// the certificate.
fn key_usages_of(cert: &X509Certificate<'_>) -> Vec<KeyUsagePurpose> {
    let Ok(Some(ku)) = cert.key_usage() else { return Vec::new() };
    let ku = ku.value;
    [
        (ku.digital_signature(), KeyUsagePurpose::DigitalSignature),
        (ku.non_repudiation(), KeyUsagePurpose::ContentCommitment),
        (ku.key_encipherment(), KeyUsagePurpose::KeyEncipherment),
        (ku.data_encipherment(), KeyUsagePurpose::DataEncipherment),
        (ku.key_agreement(), KeyUsagePurpose::KeyAgreement),
        (ku.key_cert_sign(), KeyUsagePurpose::KeyCertSign),
        (ku.crl_sign(), KeyUsagePurpose::CrlSign),
        (ku.encipher_only(), KeyUsagePurpose::EncipherOnly),
        (ku.decipher_only(), KeyUsagePurpose::DecipherOnly),
    ]
    .into_iter()
    .filter_map(|(set, purpose)| set.then_some(purpose))
    .collect()
}

/// The key identifier of a CA certificate: its subject key identifier, or (when absent) the
/// RFC 7093 method-1 identifier of its public key.
fn key_identifier(cert: &X509Certificate<'_>) -> Vec<u8> {
    let ski = cert.extensions().iter().find_map(|ext| match ext.parsed_extension() {
        x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
        _ => None,
    });
    ski.unwrap_or_else(|| {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert.public_key().subject_public_key.data);
        d.as_ref()[..20].to_vec()
    })
}

/// The issuer name, key identifier and key usages rcgen writes into what the CA certificate
/// `cert` signs, checked by signing a throwaway certificate with `signer`: its issuer name must
/// be byte-identical to `cert`'s subject, or nothing it signs would chain.
fn issuer_params(cert: &X509Certificate<'_>, signer: &Signer) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name(cert.subject())?;
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(cert));
    params.key_usages = key_usages_of(cert);
    let mut probe = CertificateParams::default();
    probe.serial_number = Some(SerialNumber::from(1u64));
    let probe = probe.signed_by(signer, &Issuer::from_params(&params, signer))?;
    if x509(probe.der())?.issuer().as_raw() != cert.subject().as_raw() {
        return Err(CaError::Import(
            "the CA subject name cannot be reproduced exactly (unusual encoding); leaves would not chain".into(),
        ));
    }
    Ok(params)
}

impl Intermediate {
    /// Loads an intermediate from its certificate and key, checking that they match and that
    /// rcgen reproduces its subject exactly as the issuer of what it signs.
    fn load(cert_der: Vec<u8>, key: &PrivateKey) -> Result<Self, CaError> {
        let cert = x509(&cert_der)?;
        if cert.public_key().raw != key.public_key_der() {
            return Err(CaError::Material("a CA private key does not match its certificate".into()));
        }
        let signer = Signer::new(key)?;
        let issuer_params = issuer_params(&cert, &signer)?;
        Ok(Self {
            id: hex::encode(key_identifier(&cert)),
            pem: certificate_pem(&cert_der),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            display_name: display_issuer(cert.subject()),
            signer,
            issuer_params,
            der: cert_der.clone(),
        })
    }

    fn issuer(&self) -> Issuer<'_, &Signer> {
        Issuer::from_params(&self.issuer_params, &self.signer)
    }

    fn info(&self, families: Vec<KeyFamily>) -> IntermediateInfo {
        IntermediateInfo { id: self.id.clone(), certificate_pem: self.pem.clone(), families }
    }
}

/// What the root and the intermediates Carapace generates share: the subject (BR 7.1.2.10.2),
/// a random serial, validity backdated by [`CA_BACKDATE`], and the key usages of BR 7.1.2.10.7
/// (keyCertSign and cRLSign, critical; digitalSignature, which that section allows and the
/// intermediates need to sign their own OCSP answers, RFC 6960 §4.2.2.2). rcgen writes the subject key identifier (BR 7.1.2.1.2 and
/// 7.1.2.6.1: MUST) from the public key.
fn ca_params(
    profile: &CaProfile,
    common_name: &str,
    now: OffsetDateTime,
    validity: Duration,
) -> Result<CertificateParams, CaError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = profile.subject(common_name)?;
    params.not_before = now - CA_BACKDATE;
    params.not_after = now + validity;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()?));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// `base_url` without its trailing `/`, refused unless it is printable ASCII (the URLs it goes
/// into are IA5Strings, RFC 5280 §4.2.1.6).
fn checked_base_url(base_url: &str) -> Result<&str, CaError> {
    let base_url = base_url.trim_end_matches('/');
    if !base_url.is_ascii() || base_url.chars().any(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
        return Err(CaError::InvalidRequest(format!("base URL {base_url:?} is not a valid ASCII URL")));
    }
    Ok(base_url)
}

/// A freshly generated self-signed root: the BR 7.1.2.1 root CA profile (basicConstraints
/// CA:TRUE without a path length, critical; key usage; subject and authority key identifiers,
/// the same; no certificate policies and no extended key usage).
struct GeneratedRoot {
    key: PrivateKey,
    signer: Signer,
    params: CertificateParams,
    cert: rcgen::Certificate,
    /// The hex of its subject key identifier.
    id: String,
}

impl GeneratedRoot {
    fn new(
        profile: &CaProfile,
        common_name: &str,
        algorithm: KeyAlgorithm,
        now: OffsetDateTime,
    ) -> Result<Self, CaError> {
        let key = generate_key(algorithm)?;
        let signer = Signer::new(&key)?;
        let mut params = ca_params(profile, common_name, now, ROOT_VALIDITY)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.use_authority_key_identifier_extension = true;
        let cert = params.self_signed(&signer)?;
        let id = hex::encode(key_identifier(&x509(cert.der())?));
        Ok(Self { key, signer, params, cert, id })
    }

    fn issuer(&self) -> Issuer<'_, &Signer> {
        Issuer::from_params(&self.params, &self.signer)
    }
}

/// A new intermediate signed by the root `root_id`: the BR 7.1.2.6 TLS subordinate CA profile,
/// as Amazon's `RSA 2048 M01` is — basicConstraints CA:TRUE, `pathlen:0` (critical); key usage;
/// EKU serverAuth and clientAuth; certificate policy 2.23.140.1.2.1; CRL distribution point
/// `<base_url>/crl/<root id>.crl` (the root's CRL, BR 7.1.2.11.2); AIA caIssuers
/// `<base_url>/ca/<root id>.crt` (BR 7.1.2.10.3), without an OCSP URL, which that section makes
/// optional: the root publishes its revocations by CRL only.
#[allow(clippy::too_many_arguments)]
fn generate_intermediate(
    profile: &CaProfile,
    common_name: &str,
    algorithm: KeyAlgorithm,
    now: OffsetDateTime,
    root: &Issuer<'_, &Signer>,
    root_id: &str,
    base_url: &str,
    master_key: &MasterKey,
) -> Result<IntermediateMaterial, CaError> {
    let key = generate_key(algorithm)?;
    let mut params = ca_params(profile, common_name, now, INTERMEDIATE_VALIDITY)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![format!("{base_url}/crl/{root_id}.crl")] }];
    params.custom_extensions =
        vec![authority_info_access(None, Some(&format!("{base_url}/ca/{root_id}.crt")))?, domain_validated_policy()?];
    let cert = params.signed_by(&key.rcgen_public_key(), root)?;
    Ok(IntermediateMaterial {
        certificate_pem: certificate_pem(cert.der()),
        private_key_sealed: seal_key(&key, cert.der(), master_key)?,
    })
}

impl Intermediate {
    /// Loads stored intermediate material, checking it is signed by `root`.
    fn load_signed_by(
        m: &IntermediateMaterial,
        root: &X509Certificate<'_>,
        master_key: &MasterKey,
        what: &str,
    ) -> Result<Arc<Self>, CaError> {
        let der = single_certificate_der(&m.certificate_pem, what)?;
        let key = unseal_key(&m.private_key_sealed, &der, master_key)?;
        let intermediate = Self::load(der, &key)?;
        let cert = x509(&intermediate.der)?;
        if cert.issuer().as_raw() != root.subject().as_raw() || verify_signed_by(&cert, root.public_key()).is_err() {
            return Err(CaError::Material(format!("the {what} is not signed by its root")));
        }
        Ok(Arc::new(intermediate))
    }

    /// Loads the RSA and ECDSA intermediates of `root` (one shared when the material is equal,
    /// as for an imported CA).
    fn load_pair(
        rsa: &IntermediateMaterial,
        ecdsa: &IntermediateMaterial,
        root: &X509Certificate<'_>,
        master_key: &MasterKey,
    ) -> Result<(Arc<Self>, Arc<Self>), CaError> {
        let rsa_loaded = Self::load_signed_by(rsa, root, master_key, "RSA intermediate")?;
        let ecdsa_loaded = if ecdsa == rsa {
            rsa_loaded.clone()
        } else {
            Self::load_signed_by(ecdsa, root, master_key, "ECDSA intermediate")?
        };
        Ok((rsa_loaded, ecdsa_loaded))
    }
}

impl CertificateAuthority {
    /// Creates a new CA as `profile` describes: an RSA-2048 root `<name> Root CA 1` (20 years)
    /// and two intermediates signed by it, `<name> RSA 2048 M01` (RSA-2048) and
    /// `<name> ECDSA 256 M01` (P-256), 10 years each. RSA-2048 for the root as Amazon Root CA 1
    /// uses, and because it generates in milliseconds at first start.
    ///
    /// The root follows the BR 7.1.2.1 root CA profile (`GeneratedRoot`), the intermediates
    /// the BR 7.1.2.6 TLS subordinate CA profile (`generate_intermediate`). The N2 hierarchy
    /// is added separately ([`add_n2`](Self::add_n2)).
    ///
    /// Returns the CA and its [`CaMaterial`] to store.
    pub fn generate(
        profile: &CaProfile,
        now: OffsetDateTime,
        master_key: &MasterKey,
    ) -> Result<(Self, CaMaterial), CaError> {
        let name = profile.name.trim();
        if name.is_empty() {
            return Err(CaError::InvalidRequest("the CA name is empty".into()));
        }
        let base_url = checked_base_url(&profile.base_url)?;
        let root = GeneratedRoot::new(profile, &format!("{name} Root CA 1"), KeyAlgorithm::Rsa2048, now)?;
        let root_issuer = root.issuer();
        let intermediate = |alg, cn: String| {
            generate_intermediate(profile, &cn, alg, now, &root_issuer, &root.id, base_url, master_key)
        };
        let rsa_intermediate = intermediate(KeyAlgorithm::Rsa2048, format!("{name} RSA 2048 M01"))?;
        let ecdsa_intermediate = intermediate(KeyAlgorithm::EcPrime256v1, format!("{name} ECDSA 256 M01"))?;

        let material = CaMaterial {
            version: MATERIAL_VERSION,
            root_certificate_pem: certificate_pem(root.cert.der()),
            root_private_key_sealed: Some(seal_key(&root.key, root.cert.der(), master_key)?),
            rsa_intermediate,
            ecdsa_intermediate,
            n2: None,
        };
        // Load through the same path as a restart, so a CA that works now works after one.
        let ca = Self::from_material(&material, master_key)?;
        Ok((ca, material))
    }

    /// Loads a CA from its stored material, unsealing the keys with `master_key` and checking
    /// that every key matches its certificate and every intermediate chains to the root.
    pub fn from_material(material: &CaMaterial, master_key: &MasterKey) -> Result<Self, CaError> {
        if material.version != MATERIAL_VERSION {
            return Err(CaError::Material(format!("unknown material version {}", material.version)));
        }
        let root_der = single_certificate_der(&material.root_certificate_pem, "root certificate")?;
        let root = x509(&root_der)?;
        let (root_signer, root_issuer_params) = match &material.root_private_key_sealed {
            Some(sealed) => {
                let (signer, params) = unseal_root_key(sealed, &root_der, &root, master_key, "root")?;
                (Some(signer), Some(params))
            }
            None => (None, None),
        };
        let (rsa, ecdsa) =
            Intermediate::load_pair(&material.rsa_intermediate, &material.ecdsa_intermediate, &root, master_key)?;
        let n2 = match &material.n2 {
            Some(n2) => Some(N2::load(n2, &root, master_key)?),
            None => None,
        };
        Ok(Self {
            root_pem: certificate_pem(&root_der),
            root_id: hex::encode(key_identifier(&root)),
            root_der,
            root_signer,
            root_issuer_params,
            rsa,
            ecdsa,
            n2,
        })
    }

    /// Builds a CA from an operator's own root certificate and one intermediate certificate
    /// with its private key (unencrypted PEM: PKCS#8, PKCS#1 or SEC1). The intermediate then
    /// signs every leaf, RSA and EC alike; the root key is never needed.
    ///
    /// Checks: the root is a self-signed CA certificate; the intermediate is a CA certificate
    /// (with `keyCertSign` if it has a key usage extension) whose issuer is the root and whose
    /// signature verifies with the root's key; the root allows a sub-CA (`pathlen` absent or
    /// ≥ 1); the key belongs to the intermediate. Validity is checked at issuance.
    pub fn import(
        root_pem: &str,
        intermediate_pem: &str,
        intermediate_key_pem: &str,
        master_key: &MasterKey,
    ) -> Result<(Self, CaMaterial), CaError> {
        let rejected = |why: &str| CaError::Import(why.to_owned());
        let root_der = single_certificate_der(root_pem, "root certificate")?;
        let root = x509(&root_der)?;
        let root_bc = root.basic_constraints().map_err(|e| CaError::InvalidCertificate(e.to_string()))?;
        match root_bc.map(|b| b.value) {
            Some(bc) if bc.ca => {
                if bc.path_len_constraint == Some(0) {
                    return Err(rejected("the root's pathLenConstraint is 0, so it cannot have an intermediate"));
                }
            }
            _ => return Err(rejected("the root certificate is not a CA certificate (basicConstraints CA:TRUE)")),
        }
        if root.subject().as_raw() != root.issuer().as_raw() {
            return Err(rejected("the root certificate is not self-signed (its issuer differs from its subject)"));
        }
        verify_signed_by(&root, root.public_key())
            .map_err(|e| CaError::Import(format!("the root certificate's self-signature: {e}")))?;

        let inter_der = single_certificate_der(intermediate_pem, "intermediate certificate")?;
        let inter = x509(&inter_der)?;
        let inter_bc = inter.basic_constraints().map_err(|e| CaError::InvalidCertificate(e.to_string()))?;
        if !inter_bc.is_some_and(|b| b.value.ca) {
            return Err(rejected("the intermediate certificate is not a CA certificate (basicConstraints CA:TRUE)"));
        }
        if let Ok(Some(ku)) = inter.key_usage()
            && !ku.value.key_cert_sign()
        {
            return Err(rejected("the intermediate certificate's key usage does not allow certificate signing"));
        }
        if inter.issuer().as_raw() != root.subject().as_raw() {
            return Err(rejected("the intermediate certificate was not issued by this root (issuer name differs)"));
        }
        verify_signed_by(&inter, root.public_key())
            .map_err(|e| CaError::Import(format!("the intermediate is not signed by the root: {e}")))?;

        let key = PrivateKey::from_pem(intermediate_key_pem)?;
        if inter.public_key().raw != key.public_key_der() {
            return Err(rejected("the private key does not belong to the intermediate certificate"));
        }
        let intermediate = IntermediateMaterial {
            certificate_pem: certificate_pem(&inter_der),
            private_key_sealed: seal_key(&key, &inter_der, master_key)?,
        };
        let material = CaMaterial {
            version: MATERIAL_VERSION,
            root_certificate_pem: certificate_pem(&root_der),
            root_private_key_sealed: None,
            rsa_intermediate: intermediate.clone(),
            ecdsa_intermediate: intermediate,
            n2: None,
        };
        let ca = Self::from_material(&material, master_key)?;
        Ok((ca, material))
    }

    fn intermediate(&self, family: KeyFamily) -> &Arc<Intermediate> {
        match family {
            KeyFamily::Rsa => &self.rsa,
            KeyFamily::Ec => &self.ecdsa,
        }
    }

    /// ACM's `Issuer` of the leaves this CA signs for keys of `family`: the signing
    /// intermediate's organisation (else its common name). Known before a leaf exists, since
    /// the key algorithm picks the intermediate; DescribeCertificate shows it while pending.
    pub fn issuer_name(&self, family: KeyFamily) -> &str {
        &self.intermediate(family).display_name
    }

    /// The root certificate, PEM (what clients add to their trust store).
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The root's id: the hex of its subject key identifier, as in `/ca/<id>.crt` and
    /// `/crl/<id>.crl`.
    pub fn root_id(&self) -> &str {
        &self.root_id
    }

    /// Whether the root's private key is held (false for an imported CA).
    pub fn has_root_key(&self) -> bool {
        self.root_signer.is_some()
    }

    /// The intermediate that signs leaves of `family`, PEM.
    pub fn intermediate_pem(&self, family: KeyFamily) -> &str {
        &self.intermediate(family).pem
    }

    /// The id of the intermediate that signs leaves of `family`.
    pub fn intermediate_id(&self, family: KeyFamily) -> &str {
        &self.intermediate(family).id
    }

    /// Every distinct intermediate of the main hierarchy (one for an imported CA, two
    /// otherwise).
    pub fn intermediates(&self) -> Vec<IntermediateInfo> {
        if Arc::ptr_eq(&self.rsa, &self.ecdsa) || self.rsa.id == self.ecdsa.id {
            vec![self.rsa.info(vec![KeyFamily::Rsa, KeyFamily::Ec])]
        } else {
            vec![self.rsa.info(vec![KeyFamily::Rsa]), self.ecdsa.info(vec![KeyFamily::Ec])]
        }
    }

    /// Every distinct intermediate of both hierarchies.
    fn all_intermediates(&self) -> Vec<&Arc<Intermediate>> {
        let mut all = vec![&self.rsa];
        if !Arc::ptr_eq(&self.rsa, &self.ecdsa) && self.rsa.id != self.ecdsa.id {
            all.push(&self.ecdsa);
        }
        if let Some(n2) = &self.n2 {
            all.extend([&n2.rsa, &n2.ecdsa]);
        }
        all
    }

    /// Every distinct intermediate as `(id, certificate DER, signer)`, for the OCSP responder
    /// (`ocsp.rs`), which signs with the intermediate that issued the queried certificates.
    pub(super) fn signing_intermediates(&self) -> Vec<(&str, &[u8], &Signer)> {
        self.all_intermediates().into_iter().map(|i| (i.id.as_str(), i.der.as_slice(), &i.signer)).collect()
    }

    fn by_id(&self, id: &str) -> Option<&Arc<Intermediate>> {
        self.all_intermediates().into_iter().find(|i| i.id == id)
    }

    /// The intermediate with this id as `(PEM, DER)`.
    pub fn intermediate_by_id(&self, id: &str) -> Option<(&str, &[u8])> {
        self.by_id(id).map(|i| (i.pem.as_str(), i.der.as_slice()))
    }

    /// The root or intermediate with this id as `(PEM, DER)`: what `/ca/<id>.crt` serves (DER,
    /// as RFC 5280 §4.2.2.1 requires for caIssuers). Leaves name their intermediate there, the
    /// intermediates their root (the N2 intermediates the self-signed N2 root).
    pub fn certificate_by_id(&self, id: &str) -> Option<(&str, &[u8])> {
        if id == self.root_id {
            return Some((self.root_pem.as_str(), self.root_der.as_slice()));
        }
        if let Some(n2) = self.n2.as_ref().filter(|n2| n2.root_id == id) {
            return Some((n2.root_pem.as_str(), n2.root_der.as_slice()));
        }
        self.intermediate_by_id(id)
    }

    /// The CRL signer with this id: an intermediate (for the leaves it issued), or a root
    /// whose key is held (for its intermediates, RFC 5280 §5: a CRL names the revocations of
    /// one issuer).
    fn crl_issuer(&self, id: &str) -> Option<(&CertificateParams, &Signer)> {
        if let (Some(params), Some(signer)) = (&self.root_issuer_params, &self.root_signer)
            && id == self.root_id
        {
            return Some((params, signer));
        }
        if let Some(n2) = self.n2.as_ref().filter(|n2| n2.root_id == id) {
            return Some((&n2.root_issuer_params, &n2.root_signer));
        }
        self.by_id(id).map(|i| (&i.issuer_params, &i.signer))
    }

    /// The N2 root, PEM (what clients trust for `N2_AMAZON_MANAGED` certificates), once the
    /// hierarchy exists.
    pub fn n2_root_pem(&self) -> Option<&str> {
        self.n2.as_ref().map(|n2| n2.root_pem.as_str())
    }

    /// Whether leaves of `hierarchy` can be issued: always for the main hierarchy; for N2 once
    /// [`add_n2`](Self::add_n2) made it; for the cross-signed N2 root only when the main root's
    /// key was held then.
    pub fn issues_in(&self, hierarchy: Hierarchy) -> bool {
        match hierarchy {
            Hierarchy::Main => true,
            Hierarchy::N2 => self.n2.is_some(),
            Hierarchy::N2CrossSigned => self.n2.as_ref().is_some_and(|n2| n2.cross_signed_pem.is_some()),
        }
    }

    /// Adds the N2 hierarchy to `material` (see the `n2` module): a no-op when it has one.
    /// The main root cross-signs the N2 root when its key is held. Returns the CA loaded from
    /// the new material.
    pub fn add_n2(
        &self,
        material: &mut CaMaterial,
        profile: &CaProfile,
        now: OffsetDateTime,
        master_key: &MasterKey,
    ) -> Result<Self, CaError> {
        if material.n2.is_none() {
            let main = match (&self.root_issuer_params, &self.root_signer) {
                (Some(params), Some(signer)) => Some((
                    Issuer::from_params(params, signer),
                    x509(&self.root_der)?.validity().not_after.to_datetime(),
                )),
                _ => None,
            };
            material.n2 = Some(N2::generate(profile, main, &self.root_id, now, master_key)?);
        }
        Self::from_material(material, master_key)
    }

    /// The intermediate that signs leaves of `family` in `hierarchy`, and the chain to ship
    /// with them (PEM).
    fn signing_path(&self, hierarchy: Hierarchy, family: KeyFamily) -> Result<(&Arc<Intermediate>, String), CaError> {
        let unavailable = || CaError::InvalidRequest(format!("the {hierarchy:?} hierarchy is not available"));
        let n2 = || self.n2.as_ref().ok_or_else(unavailable);
        let pick = |rsa, ecdsa| match family {
            KeyFamily::Rsa => rsa,
            KeyFamily::Ec => ecdsa,
        };
        Ok(match hierarchy {
            Hierarchy::Main => {
                let inter = self.intermediate(family);
                (inter, format!("{}{}", inter.pem, self.root_pem))
            }
            Hierarchy::N2 => {
                let n2 = n2()?;
                let inter = pick(&n2.rsa, &n2.ecdsa);
                (inter, format!("{}{}", inter.pem, n2.root_pem))
            }
            Hierarchy::N2CrossSigned => {
                let n2 = n2()?;
                let cross = n2.cross_signed_pem.as_deref().ok_or_else(unavailable)?;
                let inter = pick(&n2.rsa, &n2.ecdsa);
                (inter, format!("{}{}{}", inter.pem, cross, self.root_pem))
            }
        })
    }

    /// Whether [`sign_crl`](Self::sign_crl) can sign a CRL for the issuer `id`: one of the
    /// intermediates, or the root of a generated CA (an imported root's key stays with its
    /// owner, who publishes its CRL).
    pub fn signs_crl(&self, id: &str) -> bool {
        self.crl_issuer(id).is_some()
    }

    /// Issues a leaf certificate for `leaf_key`, signed by the RSA intermediate for RSA keys
    /// and the ECDSA intermediate for EC keys.
    ///
    /// Contents, as in ACM's certificates: subject `CN=<common_name>`; DNS SANs; key usage
    /// (critical) digitalSignature, plus keyEncipherment for RSA keys; EKU serverAuth;
    /// basicConstraints CA:FALSE (critical); subject and authority key
    /// identifiers; AIA with OCSP `<base_url>/ocsp` and caIssuers `<base_url>/ca/<id>.crt`;
    /// CRL distribution point `<base_url>/crl/<id>.crl`; certificate policy 2.23.140.1.2.1
    /// (domain validated).
    pub fn issue(
        &self,
        req: &LeafRequest,
        leaf_key: &PrivateKey,
        now: OffsetDateTime,
    ) -> Result<IssuedCertificate, CaError> {
        self.issue_in(Hierarchy::Main, LeafUsage::ServerAuth, req, leaf_key, now)
    }

    /// Issues a leaf as [`issue`](Self::issue) does, from the intermediates of `hierarchy` (its
    /// chain as [`Hierarchy`] describes) and with the extended key usages of `usage`.
    pub fn issue_in(
        &self,
        hierarchy: Hierarchy,
        usage: LeafUsage,
        req: &LeafRequest,
        leaf_key: &PrivateKey,
        now: OffsetDateTime,
    ) -> Result<IssuedCertificate, CaError> {
        let algorithm = leaf_key.algorithm();
        let family = algorithm.family();
        let (inter, chain_pem) = self.signing_path(hierarchy, family)?;
        if now < inter.not_before || now > inter.not_after {
            return Err(CaError::IssuerNotValid {
                id: inter.id.clone(),
                at: now,
                not_before: inter.not_before,
                not_after: inter.not_after,
            });
        }
        let names = leaf_names(req)?;
        let base_url = checked_base_url(&req.base_url)?;
        // Certificates carry whole seconds; report exactly what is in the certificate.
        let not_before = whole_seconds(req.not_before);
        let not_after = whole_seconds(req.not_after.min(inter.not_after));
        if not_after <= not_before {
            return Err(CaError::InvalidRequest("not_after must be later than not_before".into()));
        }
        let serial = match req.serial {
            Some(s) if s.iter().all(|b| *b == 0) => {
                return Err(CaError::InvalidRequest("the serial number must be positive".into()));
            }
            Some(s) => s,
            None => random_serial()?,
        };

        let mut params = CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(DnType::CommonName, names[0].as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = dns_sans(&names)?;
        params.subject_alt_names.extend(req.ip_addresses.iter().copied().map(SanType::IpAddress));
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let mut key_usages = vec!["DIGITAL_SIGNATURE".to_owned()];
        if family == KeyFamily::Rsa {
            // keyEncipherment is for RSA key transport; it is meaningless for ECDSA keys
            // (RFC 8813 §3 forbids it with id-ecPublicKey).
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
            key_usages.push("KEY_ENCIPHERMENT".to_owned());
        }
        // serverAuth alone by default: since 11 June 2025 ACM's public certificates no longer
        // carry clientAuth (the Chrome Root Program's dedicated TLS server hierarchies; ACM
        // concepts, "ACM certificate", https://docs.aws.amazon.com/acm/latest/userguide/acm-concepts.html).
        // N2 certificates choose with `CertificateUsage`.
        let (purposes, eku_names): (Vec<_>, Vec<_>) = match usage {
            LeafUsage::ServerAuth => vec![(ExtendedKeyUsagePurpose::ServerAuth, "TLS_WEB_SERVER_AUTHENTICATION")],
            LeafUsage::ClientAndServerAuth => vec![
                (ExtendedKeyUsagePurpose::ServerAuth, "TLS_WEB_SERVER_AUTHENTICATION"),
                (ExtendedKeyUsagePurpose::ClientAuth, "TLS_WEB_CLIENT_AUTHENTICATION"),
            ],
            LeafUsage::ClientAuthOnly => vec![(ExtendedKeyUsagePurpose::ClientAuth, "TLS_WEB_CLIENT_AUTHENTICATION")],
        }
        .into_iter()
        .unzip();
        params.extended_key_usages = purposes;
        params.use_authority_key_identifier_extension = true;
        params.crl_distribution_points =
            vec![CrlDistributionPoint { uris: vec![format!("{base_url}/crl/{}.crl", inter.id)] }];
        params.custom_extensions = vec![
            authority_info_access(Some(&format!("{base_url}/ocsp")), Some(&format!("{base_url}/ca/{}.crt", inter.id)))?,
            domain_validated_policy()?,
        ];

        let cert = params.signed_by(&leaf_key.rcgen_public_key(), &inter.issuer())?;
        Ok(IssuedCertificate {
            certificate_pem: certificate_pem(cert.der()),
            chain_pem,
            serial_hex: colon_hex(&der_integer_bytes(&serial)),
            not_before,
            not_after,
            key_usages,
            extended_key_usages: eku_names.into_iter().map(String::from).collect(),
            signature_algorithm: inter.signer.key_algorithm().acm_signature_name().to_owned(),
            issuer: inter.display_name.clone(),
            subject: format!("CN={}", names[0]),
            subject_alternative_names: names,
            intermediate_id: inter.id.clone(),
        })
    }

    /// Signs a CRL (RFC 5280 §5) for the issuer `issuer_id` — an intermediate, or the root
    /// (see [`signs_crl`](Self::signs_crl)) — returning DER (what `/crl/<id>.crl` serves).
    /// `crl_number` must increase with every CRL of that issuer.
    pub fn sign_crl(
        &self,
        issuer_id: &str,
        revoked: &[RevokedSerial],
        crl_number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, CaError> {
        let (issuer_params, signer) =
            self.crl_issuer(issuer_id).ok_or_else(|| CaError::UnknownIntermediate(issuer_id.to_owned()))?;
        let revoked_certs = revoked
            .iter()
            .map(|r| {
                let reason_code = match r.reason_code {
                    None => None,
                    Some(code) => Some(crl_reason(code)?),
                };
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(der::unsigned_magnitude(&r.serial)),
                    revocation_time: r.revoked_at,
                    reason_code,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(crl_number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: issuer_params.key_identifier_method.clone(),
        };
        Ok(params.signed_by(&Issuer::from_params(issuer_params, signer))?.der().to_vec())
    }
}

/// Subject alternative names of DNS names.
fn dns_sans(names: &[String]) -> Result<Vec<SanType>, CaError> {
    names
        .iter()
        .map(|n| {
            rcgen::string::Ia5String::try_from(n.as_str())
                .map(SanType::DnsName)
                .map_err(|_| CaError::InvalidRequest(format!("{n:?} is not a valid DNS name")))
        })
        .collect()
}

/// `t` without its fraction of a second.
fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

/// The rcgen reason for an RFC 5280 §5.3.1 CRLReason code.
fn crl_reason(code: u8) -> Result<RevocationReason, CaError> {
    Ok(match code {
        0 => RevocationReason::Unspecified,
        1 => RevocationReason::KeyCompromise,
        2 => RevocationReason::CaCompromise,
        3 => RevocationReason::AffiliationChanged,
        4 => RevocationReason::Superseded,
        5 => RevocationReason::CessationOfOperation,
        6 => RevocationReason::CertificateHold,
        8 => RevocationReason::RemoveFromCrl,
        9 => RevocationReason::PrivilegeWithdrawn,
        10 => RevocationReason::AaCompromise,
        _ => return Err(CaError::InvalidRequest(format!("CRL reason code {code} does not exist"))),
    })
}

/// The certificate's DNS names: the common name first, then the SANs, without duplicates
/// (case-insensitive), each checked for length and characters.
fn leaf_names(req: &LeafRequest) -> Result<Vec<String>, CaError> {
    let cn = req.common_name.trim();
    if cn.is_empty() {
        return Err(CaError::InvalidRequest("the common name is empty".into()));
    }
    if cn.len() > MAX_COMMON_NAME {
        return Err(CaError::InvalidRequest(format!("the common name exceeds {MAX_COMMON_NAME} characters")));
    }
    let mut names: Vec<String> = Vec::with_capacity(req.sans.len() + 1);
    for name in std::iter::once(cn).chain(req.sans.iter().map(|s| s.trim())) {
        if name.is_empty()
            || name.len() > MAX_DNS_NAME
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.*_".contains(&b))
        {
            return Err(CaError::InvalidRequest(format!("{name:?} is not a valid DNS name")));
        }
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Authority Information Access (RFC 5280 §4.2.2.1): the OCSP responder if any, then the
/// issuer certificate if any, the order Amazon's certificates use.
fn authority_info_access(ocsp_url: Option<&str>, ca_issuers_url: Option<&str>) -> Result<CustomExtension, CaError> {
    const ID_PE_AUTHORITY_INFO_ACCESS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
    let access = |method: ObjectIdentifier, url: &str| -> Result<AccessDescription, CaError> {
        let uri = Ia5String::new(url).map_err(|e| CaError::InvalidRequest(format!("AIA URL {url}: {e}")))?;
        Ok(AccessDescription { access_method: method, access_location: GeneralName::UniformResourceIdentifier(uri) })
    };
    let mut descriptions = Vec::with_capacity(2);
    if let Some(url) = ocsp_url {
        descriptions.push(access(ID_AD_OCSP, url)?);
    }
    if let Some(url) = ca_issuers_url {
        descriptions.push(access(ID_AD_CA_ISSUERS, url)?);
    }
    let aia = AuthorityInfoAccessSyntax(descriptions);
    let content = aia.to_der().map_err(|e| CaError::InvalidRequest(format!("encoding AIA: {e}")))?;
    Ok(CustomExtension::from_oid_content(ID_PE_AUTHORITY_INFO_ACCESS, content))
}

/// Certificate Policies (RFC 5280 §4.2.1.4) with the CA/Browser Forum domain-validated policy,
/// as ACM's DNS/email/HTTP-validated certificates carry.
fn domain_validated_policy() -> Result<CustomExtension, CaError> {
    certificate_policy(ObjectIdentifier::new_unwrap("2.23.140.1.2.1"))
}

/// Certificate Policies (RFC 5280 §4.2.1.4) naming the one policy `oid`, without qualifiers.
fn certificate_policy(oid: ObjectIdentifier) -> Result<CustomExtension, CaError> {
    const CERTIFICATE_POLICIES: &[u64] = &[2, 5, 29, 32];
    let policies = CertificatePolicies(vec![PolicyInformation { policy_identifier: oid, policy_qualifiers: None }]);
    let content =
        policies.to_der().map_err(|e| CaError::InvalidRequest(format!("encoding certificate policies: {e}")))?;
    Ok(CustomExtension::from_oid_content(CERTIFICATE_POLICIES, content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_16_byte_positive() {
        for _ in 0..64 {
            let s = random_serial().unwrap();
            assert_eq!(der_integer_bytes(&s).len(), 16);
            assert_eq!(s[0] & 0xc0, 0x40);
        }
    }

    #[test]
    fn der_integer_bytes_adds_sign_byte() {
        assert_eq!(der_integer_bytes(&[0x80, 1]), vec![0, 0x80, 1]);
        assert_eq!(der_integer_bytes(&[0, 0, 5]), vec![5]);
        assert_eq!(der_integer_bytes(&[0, 0]), vec![0]);
    }

    #[test]
    fn leaf_names_dedupe_and_validate() {
        let req = |cn: &str, sans: &[&str]| LeafRequest {
            common_name: cn.into(),
            sans: sans.iter().map(|s| s.to_string()).collect(),
            ip_addresses: Vec::new(),
            not_before: OffsetDateTime::UNIX_EPOCH,
            not_after: OffsetDateTime::UNIX_EPOCH,
            serial: None,
            base_url: String::new(),
        };
        assert_eq!(
            leaf_names(&req("example.com", &["*.example.com", "EXAMPLE.com"])).unwrap(),
            vec!["example.com", "*.example.com"]
        );
        assert!(leaf_names(&req("", &[])).is_err());
        assert!(leaf_names(&req(&"a".repeat(65), &[])).is_err());
        assert!(leaf_names(&req("ok.example", &["bad name"])).is_err());
        assert!(leaf_names(&req("ok.example", &["ü.example"])).is_err());
    }

    #[test]
    fn aia_encoding() {
        use x509_cert::der::Decode as _;
        let ext = authority_info_access(Some("http://h/ocsp"), Some("http://h/ca/1.crt")).unwrap();
        let aia = AuthorityInfoAccessSyntax::from_der(ext.content()).unwrap();
        let found: Vec<(ObjectIdentifier, String)> = aia
            .0
            .iter()
            .map(|d| match &d.access_location {
                GeneralName::UniformResourceIdentifier(uri) => (d.access_method, uri.to_string()),
                other => panic!("not a URI: {other:?}"),
            })
            .collect();
        assert_eq!(
            found,
            [(ID_AD_OCSP, "http://h/ocsp".to_owned()), (ID_AD_CA_ISSUERS, "http://h/ca/1.crt".to_owned())]
        );
    }

    #[test]
    fn oid_encoding_matches_known_values() {
        use x509_cert::der::oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION;
        // id-ad-ocsp 1.3.6.1.5.5.7.48.1
        assert_eq!(ID_AD_OCSP.to_der().unwrap(), hex::decode("06082b06010505073001").unwrap());
        // sha256WithRSAEncryption 1.2.840.113549.1.1.11 (multi-byte arcs)
        assert_eq!(SHA_256_WITH_RSA_ENCRYPTION.to_der().unwrap(), hex::decode("06092a864886f70d01010b").unwrap());
        // CA/B Forum domain-validated 2.23.140.1.2.1
        let dv = ObjectIdentifier::new_unwrap("2.23.140.1.2.1");
        assert_eq!(dv.to_der().unwrap(), hex::decode("060667810c010201").unwrap());
    }

    /// The AIA and certificate-policies extension values, byte for byte as the hand-written
    /// DER encoder produced them before x509-cert's types built them (short and long-form
    /// lengths).
    #[test]
    fn extension_bytes_are_unchanged() {
        let ext = authority_info_access(Some("http://h/ocsp"), Some("http://h/ca/1.crt")).unwrap();
        assert_eq!(
            hex::encode(ext.content()),
            "303a301906082b06010505073001860d687474703a2f2f682f6f637370301d06082b060105050730028611687474703a2f2f\
             682f63612f312e637274"
        );
        let long = format!("http://carapace.example.internal:4566/ca/{}.crt", "0123456789abcdef".repeat(6));
        let ext = authority_info_access(Some("http://127.0.0.1:4566/ocsp"), Some(&long)).unwrap();
        assert_eq!(
            hex::encode(ext.content()),
            "3081c5302606082b06010505073001861a687474703a2f2f3132372e302e302e313a343536362f6f63737030819a06082b06\
             01050507300286818d687474703a2f2f63617261706163652e6578616d706c652e696e7465726e616c3a343536362f63612f\
             3031323334353637383961626364656630313233343536373839616263646566303132333435363738396162636465663031\
             323334353637383961626364656630313233343536373839616263646566303132333435363738396162636465662e637274"
        );
        assert_eq!(hex::encode(domain_validated_policy().unwrap().content()), "300a3008060667810c010201");
    }

    #[test]
    fn crl_reasons() {
        assert!(crl_reason(7).is_err());
        assert!(crl_reason(11).is_err());
        assert!(crl_reason(1).is_ok());
    }
}
