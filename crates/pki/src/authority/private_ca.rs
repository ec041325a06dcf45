//! Private certificate authorities (AWS Private CA): a CA key's certificate signing request,
//! certificates signed from requests by AWS Private CA's templates, and CRLs.
//!
//! A private CA is a key and, once installed, a certificate; unlike [`CertificateAuthority`],
//! whose hierarchy Carapace builds itself, its certificate may come from anywhere (its own
//! key for a root, another CA for a subordinate). [`PrivateSigner`] signs with the key as the
//! subject of that certificate.
//!
//! Templates follow AWS's template definitions
//! (<https://docs.aws.amazon.com/privateca/latest/userguide/template-definitions.html>): the
//! subject and subject alternative names come from the request; the template fixes basic
//! constraints, key usage and extended key usage; the authority key identifier is the CA's, the
//! subject key identifier derived from the request's key; the CRL distribution point and the
//! OCSP responder are those the CA's revocation configuration names.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint, CustomExtension,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyUsagePurpose, RevokedCertParams, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer as _;

use super::{
    CaError, RevokedSerial, authority_info_access, crl_reason, der_integer_bytes, distinguished_name, dns_sans,
    issuer_params, random_serial, whole_seconds,
};
use crate::der;
use crate::keys::{KeyAlgorithm, KeyFamily, PrivateKey, RawPublicKey, Signer, SigningAlgorithm};
use crate::parse::{certificate_pem, spki_key_algorithm, verify_signature, x509};

/// Longest request Carapace reads (AWS Private CA's `CsrBlob` is at most 32 KiB).
const MAX_CSR: usize = 32 * 1024;

/// An attribute of a CA's subject (AWS Private CA's `ASN1Subject`), with its X.520 / RFC 4519
/// attribute type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameAttribute {
    /// `C` (2.5.4.6), a PrintableString.
    Country,
    /// `ST` (2.5.4.8).
    State,
    /// `L` (2.5.4.7).
    Locality,
    /// `O` (2.5.4.10).
    Organization,
    /// `OU` (2.5.4.11).
    OrganizationalUnit,
    /// `dnQualifier` (2.5.4.46), a PrintableString.
    DistinguishedNameQualifier,
    /// `serialNumber` (2.5.4.5), a PrintableString.
    SerialNumber,
    /// `CN` (2.5.4.3).
    CommonName,
    /// `title` (2.5.4.12).
    Title,
    /// `SN` (2.5.4.4).
    Surname,
    /// `GN` (2.5.4.42).
    GivenName,
    /// `initials` (2.5.4.43).
    Initials,
    /// `pseudonym` (2.5.4.65).
    Pseudonym,
    /// `generationQualifier` (2.5.4.44).
    GenerationQualifier,
}

impl NameAttribute {
    fn oid(self) -> [u64; 4] {
        let arc = match self {
            Self::Country => 6,
            Self::State => 8,
            Self::Locality => 7,
            Self::Organization => 10,
            Self::OrganizationalUnit => 11,
            Self::DistinguishedNameQualifier => 46,
            Self::SerialNumber => 5,
            Self::CommonName => 3,
            Self::Title => 12,
            Self::Surname => 4,
            Self::GivenName => 42,
            Self::Initials => 43,
            Self::Pseudonym => 65,
            Self::GenerationQualifier => 44,
        };
        [2, 5, 4, arc]
    }

    /// X.520 types these three as PrintableString; the rest are DirectoryStrings, written as
    /// UTF8String (RFC 5280 §4.1.2.6).
    fn printable(self) -> bool {
        matches!(self, Self::Country | Self::DistinguishedNameQualifier | Self::SerialNumber)
    }
}

/// A CA's subject, attribute by attribute, in the order given.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    name: rcgen::DistinguishedName,
}

impl Subject {
    /// An empty subject.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `attribute` with `value`.
    pub fn push(&mut self, attribute: NameAttribute, value: &str) -> Result<(), CaError> {
        let value = if attribute.printable() {
            DnValue::PrintableString(value.try_into().map_err(|_| {
                CaError::InvalidRequest(format!("{attribute:?} must be a PrintableString, not {value:?}"))
            })?)
        } else {
            DnValue::Utf8String(value.to_owned())
        };
        self.name.push(DnType::from_oid(&attribute.oid()), value);
        Ok(())
    }

    /// Adds an attribute named by its dotted object identifier (AWS Private CA's
    /// `CustomAttributes`), as a UTF8String.
    pub fn push_custom(&mut self, oid: &str, value: &str) -> Result<(), CaError> {
        let arcs = oid
            .split('.')
            .map(str::parse::<u64>)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|arcs| arcs.len() >= 2)
            .ok_or_else(|| CaError::InvalidRequest(format!("{oid:?} is not an object identifier")))?;
        self.name.push(DnType::from_oid(&arcs), DnValue::Utf8String(value.to_owned()));
        Ok(())
    }

    /// Whether no attribute was given.
    pub fn is_empty(&self) -> bool {
        self.name.iter().next().is_none()
    }
}

/// A CA key's certificate signing request (PKCS #10, PEM), signed with `signing`.
pub fn ca_csr(key: &PrivateKey, signing: SigningAlgorithm, subject: &Subject) -> Result<String, CaError> {
    let signer = Signer::with_algorithm(key, signing)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject.name.clone();
    Ok(params.serialize_request(&signer)?.pem()?)
}

/// A certificate signing request (PEM) for a leaf key: the subject `CN=<common_name>` and a
/// subject alternative name extension of `dns_names`, signed with the key's default
/// algorithm. ACM asks for its private certificates this way.
pub fn leaf_csr(key: &PrivateKey, common_name: &str, dns_names: &[String]) -> Result<String, CaError> {
    let signer = Signer::new(key)?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.subject_alt_names = dns_sans(dns_names)?;
    Ok(params.serialize_request(&signer)?.pem()?)
}

/// A certificate signing request, read and its signature verified.
#[derive(Debug, Clone)]
pub struct Csr {
    der: Vec<u8>,
    spki: Vec<u8>,
    public_bits: Vec<u8>,
    key_algorithm: KeyAlgorithm,
    subject: rcgen::DistinguishedName,
    /// The requested subjectAltName extension's value (DER), passed through as requested:
    /// every GeneralName form, otherName included.
    sans: Option<Vec<u8>>,
}

impl Csr {
    /// Reads a request, PEM (`CERTIFICATE REQUEST`, or `NEW CERTIFICATE REQUEST` as some tools
    /// write it) or DER, and verifies its signature. Its key must be RSA (2048 to 4096 bits) or
    /// EC on P-256, P-384 or P-521.
    pub fn parse(input: &[u8]) -> Result<Self, CaError> {
        let malformed = |why: &str| CaError::MalformedCsr(why.to_owned());
        if input.len() > MAX_CSR {
            return Err(malformed("the request is larger than 32 KiB"));
        }
        let der = match pem::parse(input) {
            Ok(block) if block.tag() == "CERTIFICATE REQUEST" || block.tag() == "NEW CERTIFICATE REQUEST" => {
                block.into_contents()
            }
            Ok(block) => return Err(CaError::MalformedCsr(format!("a PEM {} block is not a request", block.tag()))),
            Err(_) => input.to_vec(),
        };
        let request = match X509CertificationRequest::from_der(&der) {
            Ok(([], request)) => request,
            Ok(_) => return Err(malformed("trailing data after the request")),
            Err(_) => return Err(malformed("not a PKCS #10 certificate signing request")),
        };
        let info = &request.certification_request_info;
        verify_signature(&request.signature_algorithm, info.raw, &request.signature_value.data, &info.subject_pki)
            .map_err(|_| malformed("the request's signature does not verify"))?;
        let key_algorithm = spki_key_algorithm(&info.subject_pki)
            .filter(|k| *k != KeyAlgorithm::Rsa1024)
            .ok_or_else(|| malformed("the request's key is neither RSA 2048-4096 nor EC P-256, P-384 or P-521"))?;
        let subject = distinguished_name(&info.subject).map_err(|e| CaError::MalformedCsr(e.to_string()))?;
        let mut sans = None;
        for attribute in info.iter_attributes() {
            if let ParsedCriAttribute::ExtensionRequest(request) = attribute.parsed_attribute() {
                for extension in &request.extensions {
                    if let ParsedExtension::SubjectAlternativeName(_) = extension.parsed_extension() {
                        sans = Some(extension.value.to_vec());
                    }
                }
            }
        }
        Ok(Self {
            spki: info.subject_pki.raw.to_vec(),
            public_bits: info.subject_pki.subject_public_key.data.to_vec(),
            key_algorithm,
            subject,
            sans,
            der,
        })
    }

    /// The request, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The requested key's algorithm.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.key_algorithm
    }

    /// The requested key, as a SubjectPublicKeyInfo (DER).
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    fn public_key(&self) -> RawPublicKey<'_> {
        RawPublicKey::new(&self.public_bits, self.key_algorithm)
    }
}

/// AWS Private CA's base certificate templates (`arn:aws:acm-pca:::template/<name>/V1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// `EndEntityCertificate/V1`, the default: digital signature and key encipherment,
    /// server and client authentication.
    EndEntity,
    /// `EndEntityClientAuthCertificate/V1`: digital signature, client authentication.
    EndEntityClientAuth,
    /// `EndEntityServerAuthCertificate/V1`: digital signature and key encipherment, server
    /// authentication.
    EndEntityServerAuth,
    /// `CodeSigningCertificate/V1`: digital signature, code signing.
    CodeSigning,
    /// `OCSPSigningCertificate/V1`: digital signature, OCSP signing.
    OcspSigning,
    /// `RootCACertificate/V1`: a CA's own certificate, self-signed, without a path length.
    RootCa,
    /// `SubordinateCACertificate_PathLen<n>/V1`: a CA certificate with path length `n`
    /// (0 to 3).
    SubordinateCa(u8),
}

impl Template {
    /// The template named by `arn` (`arn:<partition>:acm-pca:::template/<name>/V1`).
    pub fn from_arn(arn: &str) -> Option<Self> {
        let name = arn.strip_prefix("arn:")?.split_once(":acm-pca:::template/")?.1;
        Some(match name {
            "EndEntityCertificate/V1" => Self::EndEntity,
            "EndEntityClientAuthCertificate/V1" => Self::EndEntityClientAuth,
            "EndEntityServerAuthCertificate/V1" => Self::EndEntityServerAuth,
            "CodeSigningCertificate/V1" => Self::CodeSigning,
            "OCSPSigningCertificate/V1" => Self::OcspSigning,
            "RootCACertificate/V1" => Self::RootCa,
            _ => {
                let n = name.strip_prefix("SubordinateCACertificate_PathLen")?.strip_suffix("/V1")?;
                Self::SubordinateCa(n.parse().ok().filter(|n| *n <= 3)?)
            }
        })
    }

    /// Whether the template makes a CA certificate.
    pub fn is_ca(self) -> bool {
        matches!(self, Self::RootCa | Self::SubordinateCa(_))
    }

    /// The path length the template writes (`None`: unconstrained, or not a CA).
    pub fn path_len(self) -> Option<u8> {
        match self {
            Self::SubordinateCa(n) => Some(n),
            _ => None,
        }
    }

    fn extensions(self, params: &mut CertificateParams) {
        use ExtendedKeyUsagePurpose as Eku;
        use KeyUsagePurpose as Ku;
        let (ca, usages, ekus): (IsCa, &[Ku], &[Eku]) = match self {
            Self::EndEntity => {
                (IsCa::ExplicitNoCa, &[Ku::DigitalSignature, Ku::KeyEncipherment], &[Eku::ServerAuth, Eku::ClientAuth])
            }
            Self::EndEntityClientAuth => (IsCa::ExplicitNoCa, &[Ku::DigitalSignature], &[Eku::ClientAuth]),
            Self::EndEntityServerAuth => {
                (IsCa::ExplicitNoCa, &[Ku::DigitalSignature, Ku::KeyEncipherment], &[Eku::ServerAuth])
            }
            Self::CodeSigning => (IsCa::ExplicitNoCa, &[Ku::DigitalSignature], &[Eku::CodeSigning]),
            Self::OcspSigning => (IsCa::ExplicitNoCa, &[Ku::DigitalSignature], &[Eku::OcspSigning]),
            Self::RootCa => {
                (IsCa::Ca(BasicConstraints::Unconstrained), &[Ku::DigitalSignature, Ku::KeyCertSign, Ku::CrlSign], &[])
            }
            Self::SubordinateCa(n) => {
                (IsCa::Ca(BasicConstraints::Constrained(n)), &[Ku::DigitalSignature, Ku::KeyCertSign, Ku::CrlSign], &[])
            }
        };
        params.is_ca = ca;
        params.key_usages = usages.to_vec();
        params.extended_key_usages = ekus.to_vec();
    }
}

/// What a certificate signed by a private CA says besides the request's subject and key.
#[derive(Debug, Clone)]
pub struct PrivateIssue {
    /// The template.
    pub template: Template,
    /// Start of validity (whole seconds are kept).
    pub not_before: OffsetDateTime,
    /// End of validity (whole seconds are kept).
    pub not_after: OffsetDateTime,
    /// The serial number (a positive magnitude, big-endian); `None` for 16 random bytes.
    pub serial: Option<Vec<u8>>,
    /// The CRL distribution point's URL, if the CA publishes a CRL into it.
    pub crl_url: Option<String>,
    /// The OCSP responder's URL (authority information access), if the CA has one.
    pub ocsp_url: Option<String>,
}

/// A certificate a private CA signed.
#[derive(Debug, Clone)]
pub struct PrivateCertificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The certificate, PEM.
    pub pem: String,
    /// The serial number as its DER INTEGER content bytes.
    pub serial: Vec<u8>,
    /// Start of validity, as written.
    pub not_before: OffsetDateTime,
    /// End of validity, as written.
    pub not_after: OffsetDateTime,
}

/// A private CA's key, ready to sign as the subject of the CA's certificate (or, before it has
/// one, its own root certificate).
pub struct PrivateSigner {
    signer: Signer,
    spki: Vec<u8>,
    /// The CA certificate's issuer-side parameters and DER; `None` before it has a certificate.
    issuer: Option<(CertificateParams, Vec<u8>)>,
}

impl PrivateSigner {
    /// The signer for `key` with `signing`, acting as the subject of `certificate_der` (which
    /// must hold `key`'s public key), or as no one yet when `None` (only a root certificate
    /// on the key's own request can then be signed).
    pub fn new(key: &PrivateKey, signing: SigningAlgorithm, certificate_der: Option<&[u8]>) -> Result<Self, CaError> {
        let signer = Signer::with_algorithm(key, signing)?;
        let issuer = match certificate_der {
            None => None,
            Some(der) => {
                let cert = x509(der)?;
                if cert.public_key().raw != key.public_key_der() {
                    return Err(CaError::Material("the CA certificate does not hold the CA's key".into()));
                }
                Some((issuer_params(&cert, &signer)?, der.to_vec()))
            }
        };
        Ok(Self { signer, spki: key.public_key_der().to_vec(), issuer })
    }

    /// Signs `csr` as `issue` says. A root certificate ([`Template::RootCa`]) is signed only
    /// on the CA key's own request, by a CA that has no certificate yet; every other template
    /// needs the CA's certificate.
    pub fn issue(&self, csr: &Csr, issue: &PrivateIssue) -> Result<PrivateCertificate, CaError> {
        let not_before = whole_seconds(issue.not_before);
        let not_after = whole_seconds(issue.not_after);
        if not_after <= not_before {
            return Err(CaError::InvalidRequest("the validity period ends before it starts".into()));
        }
        let serial = match &issue.serial {
            Some(s) if der::unsigned_magnitude(s).is_empty() => {
                return Err(CaError::InvalidRequest("the serial number must be positive".into()));
            }
            Some(s) => s.clone(),
            None => random_serial()?.to_vec(),
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = csr.subject.clone();
        if !issue.template.is_ca()
            && let Some(sans) = &csr.sans
        {
            // The request's extension as it is (RFC 5280 §4.2.1.6: critical when the subject
            // is empty).
            let mut extension = CustomExtension::from_oid_content(&[2, 5, 29, 17], sans.clone());
            extension.set_criticality(csr.subject.iter().next().is_none());
            params.custom_extensions.push(extension);
        }
        params.not_before = not_before;
        params.not_after = not_after;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        issue.template.extensions(&mut params);
        // keyEncipherment is RSA key transport: RFC 8813 §3 forbids it with an EC key, so the
        // templates that name it give it to RSA keys only.
        if csr.key_algorithm.family() == KeyFamily::Ec {
            params.key_usages.retain(|u| *u != KeyUsagePurpose::KeyEncipherment);
        }
        if let Some(url) = &issue.crl_url {
            params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![url.clone()] }];
        }
        if let Some(url) = &issue.ocsp_url {
            params.custom_extensions.push(authority_info_access(Some(url), None)?);
        }
        let cert = match (&self.issuer, issue.template) {
            (None, Template::RootCa) => {
                if csr.spki != self.spki {
                    return Err(CaError::InvalidRequest(
                        "a root CA certificate can only be issued on the CA's own request".into(),
                    ));
                }
                params.self_signed(&self.signer)?
            }
            (None, _) => {
                return Err(CaError::InvalidRequest(
                    "the CA has no certificate yet: only its own root certificate can be issued".into(),
                ));
            }
            (Some(_), Template::RootCa) => {
                return Err(CaError::InvalidRequest(
                    "the root CA certificate template is only for a CA's own certificate".into(),
                ));
            }
            (Some((issuer, _)), _) => {
                params.use_authority_key_identifier_extension = true;
                params.signed_by(&csr.public_key(), &Issuer::from_params(issuer, &self.signer))?
            }
        };
        Ok(PrivateCertificate {
            pem: certificate_pem(cert.der()),
            der: cert.der().to_vec(),
            serial: der_integer_bytes(&serial),
            not_before,
            not_after,
        })
    }

    /// Signs a CRL (RFC 5280 §5) of `revoked` as the CA certificate's subject, numbered
    /// `crl_number` (which must grow with every CRL the CA publishes).
    pub fn sign_crl(
        &self,
        revoked: &[RevokedSerial],
        crl_number: u64,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, CaError> {
        let (issuer, _) = self
            .issuer
            .as_ref()
            .ok_or_else(|| CaError::InvalidRequest("a CA without a certificate signs no CRL".into()))?;
        let revoked_certs = revoked
            .iter()
            .map(|r| {
                Ok(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(der::unsigned_magnitude(&r.serial)),
                    revocation_time: whole_seconds(r.revoked_at),
                    reason_code: r.reason_code.map(crl_reason).transpose()?,
                    invalidity_date: None,
                })
            })
            .collect::<Result<Vec<_>, CaError>>()?;
        let params = CertificateRevocationListParams {
            this_update: whole_seconds(this_update),
            next_update: whole_seconds(next_update),
            crl_number: SerialNumber::from(crl_number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: issuer.key_identifier_method.clone(),
        };
        Ok(params.signed_by(&Issuer::from_params(issuer, &self.signer))?.der().to_vec())
    }
}

impl PrivateSigner {
    /// An OCSP answer (RFC 6960) about certificates this CA issued, signed by the CA itself
    /// (the issuer, so no responder certificate is included): `unauthorized` when the request
    /// names another issuer.
    pub fn ocsp_response(
        &self,
        request: &crate::OcspRequest,
        statuses: &[crate::OcspStatus],
        now: OffsetDateTime,
        validity: time::Duration,
    ) -> Result<Vec<u8>, CaError> {
        let Some((_, der)) = &self.issuer else {
            return Ok(crate::ocsp_failure(crate::OcspFailure::Unauthorized));
        };
        if !request.names_issuer(der) {
            return Ok(crate::ocsp_failure(crate::OcspFailure::Unauthorized));
        }
        crate::ocsp::signed_response(request, statuses, &self.signer, der, now, validity)
    }
}

/// Checks a CA certificate that is to be installed for `key`, as AWS Private CA's
/// ImportCertificateAuthorityCertificate does: it holds the key, is a CA certificate
/// (basicConstraints cA, keyCertSign), is valid now, and `chain` (issuer first, PEM) links it
/// to a self-signed root, each link signed by the next and within the path length of every
/// certificate above it. A root (no chain) must be self-signed. Returns the certificate, DER.
pub fn check_ca_certificate(
    key: &PrivateKey,
    certificate_pem: &str,
    chain_pem: Option<&str>,
    now: OffsetDateTime,
) -> Result<Vec<u8>, CaCertificateProblem> {
    use CaCertificateProblem as P;
    let mut ders = crate::parse::certificates_der(certificate_pem).map_err(|e| P::Malformed(e.to_string()))?;
    if ders.len() != 1 {
        return Err(P::Malformed("the certificate must be one PEM CERTIFICATE block".into()));
    }
    let der = ders.remove(0);
    let cert = x509(&der).map_err(|e| P::Malformed(e.to_string()))?;
    if cert.public_key().raw != key.public_key_der() {
        return Err(P::Mismatch);
    }
    check_is_ca(&cert, "the CA certificate")?;
    // Valid now, allowing a signer's clock five minutes ahead of this one.
    let validity = cert.validity();
    if validity.not_after < asn1_time(now)? || validity.not_before > asn1_time(now + time::Duration::minutes(5))? {
        return Err(P::Invalid("the CA certificate is not valid now".into()));
    }
    let chain = match chain_pem {
        Some(pem) => {
            crate::parse::certificates_der(pem).map_err(|e| P::Malformed(format!("certificate chain: {e}")))?
        }
        None => Vec::new(),
    };
    let parsed_chain = chain
        .iter()
        .map(|d| x509(d).map_err(|e| P::Malformed(format!("certificate chain: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut child = &cert;
    for (depth, parent) in parsed_chain.iter().enumerate() {
        check_is_ca(parent, "a certificate of the chain")?;
        if child.issuer().as_raw() != parent.subject().as_raw()
            || crate::parse::verify_signed_by(child, parent.public_key()).is_err()
        {
            return Err(P::Invalid(format!(
                "the chain does not link: certificate {depth} of the chain did not sign the one below it"
            )));
        }
        // Certificates below `parent` that are CAs, besides the one being installed.
        if let Ok(Some(bc)) = parent.basic_constraints()
            && let Some(len) = bc.value.path_len_constraint
            && (depth as u32) > len
        {
            return Err(P::Invalid(format!(
                "the chain exceeds the path length ({len}) of certificate {depth} of the chain"
            )));
        }
        child = parent;
    }
    if child.issuer().as_raw() != child.subject().as_raw()
        || crate::parse::verify_signed_by(child, child.public_key()).is_err()
    {
        return Err(P::Invalid(if parsed_chain.is_empty() {
            "a root CA certificate must be self-signed; a subordinate's needs its chain".into()
        } else {
            "the chain does not end in a self-signed root certificate".into()
        }));
    }
    Ok(der)
}

fn check_is_ca(cert: &x509_parser::certificate::X509Certificate<'_>, what: &str) -> Result<(), CaCertificateProblem> {
    let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
    let signs = match cert.key_usage() {
        Ok(Some(ku)) => ku.value.key_cert_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    if !is_ca || !signs {
        return Err(CaCertificateProblem::Invalid(format!(
            "{what} is not a CA certificate (basic constraints, key usage)"
        )));
    }
    Ok(())
}

fn asn1_time(t: OffsetDateTime) -> Result<x509_parser::time::ASN1Time, CaCertificateProblem> {
    x509_parser::time::ASN1Time::from_timestamp(t.unix_timestamp())
        .map_err(|_| CaCertificateProblem::Invalid("time out of range".into()))
}

/// Why a CA certificate cannot be installed (AWS Private CA's errors for
/// ImportCertificateAuthorityCertificate).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaCertificateProblem {
    /// `MalformedCertificateException`.
    #[error("{0}")]
    Malformed(String),
    /// `CertificateMismatchException`: the certificate is for another key.
    #[error("The certificate does not match the certificate authority's private key.")]
    Mismatch,
    /// `InvalidRequestException`: the certificate or its chain breaks a rule.
    #[error("{0}")]
    Invalid(String),
}

/// The SubjectPublicKeyInfo of a DER certificate.
pub fn certificate_public_key(der: &[u8]) -> Result<Vec<u8>, CaError> {
    Ok(x509(der)?.public_key().raw.to_vec())
}
