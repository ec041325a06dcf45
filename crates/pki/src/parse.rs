//! Reading certificates (x509-parser) into the facts ACM and Directory Service show and check,
//! matching private keys to certificates, and verifying certificate signatures (aws-lc-rs).

use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, RsaKeyPair, UnparsedPublicKey, VerificationAlgorithm};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer as _;
use x509_parser::public_key::PublicKey;
use x509_parser::signature_algorithm::RsaSsaPssParams;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo, X509Name};

use super::CaError;
use super::der;
use super::keys::{KeyAlgorithm, Pkcs8Kind, decode_private_pem, ec_from_sec1, pkcs8_kind, unsupported_pem_label};

/// An extended key usage, with ACM's name and the dotted OID (ACM's `ExtendedKeyUsage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedKeyUsage {
    /// ACM's name: `TLS_WEB_SERVER_AUTHENTICATION`, ... or `CUSTOM` for other OIDs.
    pub name: String,
    /// The dotted OID, e.g. `1.3.6.1.5.5.7.3.1`.
    pub oid: String,
}

/// The facts about a certificate that ACM's `DescribeCertificate` and Directory Service's
/// certificate checks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCertificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// The subject as a string, e.g. `CN=example.com` (ACM's `Subject`).
    pub subject: String,
    /// The subject's first common name, if any.
    pub common_name: Option<String>,
    /// The issuer as a string, e.g. `CN=Carapace RSA 2048 M01, O=Carapace`.
    pub issuer_dn: String,
    /// The issuer's organisation, else its common name, else the whole issuer string — what
    /// ACM shows as `Issuer` (`Amazon` for Amazon-issued certificates).
    pub issuer: String,
    /// DNS names from the subjectAltName extension, in certificate order.
    pub subject_alternative_names: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Serial number as ACM shows it: lowercase hex byte pairs joined by colons, as encoded.
    pub serial_hex: String,
    /// The public key's algorithm, or `None` when it is not one of ACM's seven (RSA-8192,
    /// Ed25519, other curves).
    pub key_algorithm: Option<KeyAlgorithm>,
    /// The signature algorithm in ACM's style: `SHA256WITHRSA`, `SHA384WITHECDSA`,
    /// `SHA256WITHRSASSA_PSS`, ... or the dotted OID when unknown.
    pub signature_algorithm: String,
    /// Key usages, ACM names (`DIGITAL_SIGNATURE`, `KEY_ENCIPHERMENT`, `CERTIFICATE_SIGNING`, ...).
    pub key_usages: Vec<String>,
    /// Extended key usages.
    pub extended_key_usages: Vec<ExtendedKeyUsage>,
    /// basicConstraints `cA` is true.
    pub is_ca: bool,
    /// basicConstraints `pathLenConstraint`, when present.
    pub path_len_constraint: Option<u32>,
    /// Subject and issuer names are identical (a root, or a self-issued certificate).
    pub is_self_issued: bool,
    /// Subject key identifier, when present.
    pub subject_key_id: Option<Vec<u8>>,
    /// Authority key identifier's keyIdentifier, when present.
    pub authority_key_id: Option<Vec<u8>>,
    /// The SubjectPublicKeyInfo, DER.
    pub public_key_der: Vec<u8>,
    /// X.509 version (1 or 3 in practice).
    pub version: u32,
}

impl ParsedCertificate {
    /// The signature is RSASSA-PSS (Directory Service rejects such CA certificates).
    pub fn is_rsassa_pss(&self) -> bool {
        self.signature_algorithm.ends_with("RSASSA_PSS")
    }

    /// The certificate as PEM.
    pub fn to_pem(&self) -> String {
        certificate_pem(&self.der)
    }
}

/// PEM-encodes a certificate (`\n` line endings).
pub(crate) fn certificate_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Parses the first `CERTIFICATE` block of a PEM document.
pub fn parse_certificate(pem_text: &str) -> Result<ParsedCertificate, CaError> {
    let der = certificates_der(pem_text)?
        .into_iter()
        .next()
        .ok_or_else(|| CaError::InvalidCertificate("no PEM CERTIFICATE block found".into()))?;
    parse_certificate_der(&der)
}

/// Parses every `CERTIFICATE` block of a PEM document (e.g. an ACM `CertificateChain`), in
/// order. An input without any certificate is an error.
pub fn parse_certificates(pem_text: &str) -> Result<Vec<ParsedCertificate>, CaError> {
    let ders = certificates_der(pem_text)?;
    if ders.is_empty() {
        return Err(CaError::InvalidCertificate("no PEM CERTIFICATE block found".into()));
    }
    ders.iter().map(|d| parse_certificate_der(d)).collect()
}

/// The DER of every `CERTIFICATE` block, other blocks ignored.
pub(crate) fn certificates_der(pem_text: &str) -> Result<Vec<Vec<u8>>, CaError> {
    let blocks = pem::parse_many(pem_text).map_err(|e| CaError::InvalidCertificate(format!("invalid PEM: {e}")))?;
    Ok(blocks.into_iter().filter(|b| b.tag() == "CERTIFICATE").map(pem::Pem::into_contents).collect())
}

/// Parses one DER certificate, fully (trailing bytes are an error).
pub(crate) fn x509(der: &[u8]) -> Result<X509Certificate<'_>, CaError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(CaError::InvalidCertificate("trailing data after the certificate".into())),
        Err(e) => Err(CaError::InvalidCertificate(format!("not a valid X.509 certificate: {e}"))),
    }
}

/// Parses a DER certificate.
pub fn parse_certificate_der(der: &[u8]) -> Result<ParsedCertificate, CaError> {
    let cert = x509(der)?;

    let mut sans = Vec::new();
    let mut key_usages = Vec::new();
    let mut extended_key_usages = Vec::new();
    let mut is_ca = false;
    let mut path_len_constraint = None;
    let mut subject_key_id = None;
    let mut authority_key_id = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                sans.extend(san.general_names.iter().filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                }));
            }
            ParsedExtension::KeyUsage(ku) => {
                let flags = [
                    (ku.digital_signature(), "DIGITAL_SIGNATURE"),
                    (ku.non_repudiation(), "NON_REPUDIATION"),
                    (ku.key_encipherment(), "KEY_ENCIPHERMENT"),
                    (ku.data_encipherment(), "DATA_ENCIPHERMENT"),
                    (ku.key_agreement(), "KEY_AGREEMENT"),
                    (ku.key_cert_sign(), "CERTIFICATE_SIGNING"),
                    (ku.crl_sign(), "CRL_SIGNING"),
                    (ku.encipher_only(), "ENCIPHER_ONLY"),
                    (ku.decipher_only(), "DECIPHER_ONLY"),
                ];
                key_usages.extend(flags.iter().filter(|(set, _)| *set).map(|(_, n)| (*n).to_owned()));
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                let known = [
                    (eku.server_auth, "TLS_WEB_SERVER_AUTHENTICATION", "1.3.6.1.5.5.7.3.1"),
                    (eku.client_auth, "TLS_WEB_CLIENT_AUTHENTICATION", "1.3.6.1.5.5.7.3.2"),
                    (eku.code_signing, "CODE_SIGNING", "1.3.6.1.5.5.7.3.3"),
                    (eku.email_protection, "EMAIL_PROTECTION", "1.3.6.1.5.5.7.3.4"),
                    (eku.time_stamping, "TIME_STAMPING", "1.3.6.1.5.5.7.3.8"),
                    (eku.ocsp_signing, "OCSP_SIGNING", "1.3.6.1.5.5.7.3.9"),
                    (eku.any, "ANY", "2.5.29.37.0"),
                ];
                for (set, name, oid) in known {
                    if set {
                        extended_key_usages.push(ExtendedKeyUsage { name: name.into(), oid: oid.into() });
                    }
                }
                for oid in &eku.other {
                    let oid = oid.to_id_string();
                    let name = match oid.as_str() {
                        "1.3.6.1.5.5.7.3.5" => "IPSEC_END_SYSTEM",
                        "1.3.6.1.5.5.7.3.6" => "IPSEC_TUNNEL",
                        "1.3.6.1.5.5.7.3.7" => "IPSEC_USER",
                        _ => "CUSTOM",
                    };
                    extended_key_usages.push(ExtendedKeyUsage { name: name.into(), oid });
                }
            }
            ParsedExtension::BasicConstraints(bc) => {
                is_ca = bc.ca;
                path_len_constraint = bc.path_len_constraint;
            }
            ParsedExtension::SubjectKeyIdentifier(id) => subject_key_id = Some(id.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
            }
            ParsedExtension::ParseError { error } => {
                return Err(CaError::InvalidCertificate(format!("malformed extension {}: {error}", ext.oid)));
            }
            _ => {}
        }
    }

    let spki = cert.public_key();
    let subject = cert.subject();
    let issuer_name = cert.issuer();
    let validity = cert.validity();
    Ok(ParsedCertificate {
        der: der.to_vec(),
        subject: subject.to_string(),
        common_name: first_attr(subject.iter_common_name()),
        issuer_dn: issuer_name.to_string(),
        issuer: display_issuer(issuer_name),
        subject_alternative_names: sans,
        not_before: validity.not_before.to_datetime(),
        not_after: validity.not_after.to_datetime(),
        serial_hex: colon_hex(cert.raw_serial()),
        key_algorithm: spki_key_algorithm(spki),
        signature_algorithm: signature_algorithm_name(&cert.signature_algorithm),
        key_usages,
        extended_key_usages,
        is_ca,
        path_len_constraint,
        is_self_issued: subject.as_raw() == issuer_name.as_raw(),
        subject_key_id,
        authority_key_id,
        public_key_der: spki.raw.to_vec(),
        version: cert.version().0 + 1,
    })
}

/// `0a:1b:...`: lowercase hex byte pairs joined by colons.
pub(crate) fn colon_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn first_attr<'a, 'b: 'a>(
    mut attrs: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'b>>,
) -> Option<String> {
    attrs.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
}

/// ACM's `Issuer`: the issuer's organisation, else common name, else the full name.
pub(crate) fn display_issuer(name: &X509Name<'_>) -> String {
    first_attr(name.iter_organization())
        .or_else(|| first_attr(name.iter_common_name()))
        .unwrap_or_else(|| name.to_string())
}

/// The number of significant bits in a big-endian unsigned integer.
fn bit_length(magnitude: &[u8]) -> usize {
    let m = der::unsigned_magnitude(magnitude);
    match m.first() {
        Some(first) => m.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// ACM's key algorithm for a SubjectPublicKeyInfo.
pub(crate) fn spki_key_algorithm(spki: &SubjectPublicKeyInfo<'_>) -> Option<KeyAlgorithm> {
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => KeyAlgorithm::from_rsa_bits(bit_length(rsa.modulus)),
        PublicKey::EC(_) => {
            let params = spki.algorithm.parameters.as_ref()?;
            let curve = params.as_oid().ok()?;
            pkcs8::ObjectIdentifier::from_bytes(curve.as_bytes()).ok().and_then(KeyAlgorithm::from_curve_oid)
        }
        _ => None,
    }
}

/// The hash name of an RSASSA-PSS AlgorithmIdentifier (SHA-1 when absent, RFC 4055 §3.1).
fn pss_hash(alg: &AlgorithmIdentifier<'_>) -> Option<&'static str> {
    let params = alg.parameters.as_ref()?;
    let params = RsaSsaPssParams::try_from(params).ok()?;
    match params.hash_algorithm_oid().to_id_string().as_str() {
        "1.3.14.3.2.26" => Some("SHA1"),
        "2.16.840.1.101.3.4.2.4" => Some("SHA224"),
        "2.16.840.1.101.3.4.2.1" => Some("SHA256"),
        "2.16.840.1.101.3.4.2.2" => Some("SHA384"),
        "2.16.840.1.101.3.4.2.3" => Some("SHA512"),
        _ => None,
    }
}

/// The signature algorithm in ACM's spelling (`SHA256WITHRSA`, the names ACM and AWS Private
/// CA use), or the dotted OID for anything unknown.
pub(crate) fn signature_algorithm_name(alg: &AlgorithmIdentifier<'_>) -> String {
    let oid = alg.algorithm.to_id_string();
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.4" => "MD5WITHRSA",
        "1.2.840.113549.1.1.5" | "1.3.14.3.2.29" => "SHA1WITHRSA",
        "1.2.840.113549.1.1.14" => "SHA224WITHRSA",
        "1.2.840.113549.1.1.11" => "SHA256WITHRSA",
        "1.2.840.113549.1.1.12" => "SHA384WITHRSA",
        "1.2.840.113549.1.1.13" => "SHA512WITHRSA",
        "1.2.840.113549.1.1.10" => {
            return match pss_hash(alg) {
                Some(hash) => format!("{hash}WITHRSASSA_PSS"),
                None => "RSASSA_PSS".to_owned(),
            };
        }
        "1.2.840.10045.4.1" => "SHA1WITHECDSA",
        "1.2.840.10045.4.3.1" => "SHA224WITHECDSA",
        "1.2.840.10045.4.3.2" => "SHA256WITHECDSA",
        "1.2.840.10045.4.3.3" => "SHA384WITHECDSA",
        "1.2.840.10045.4.3.4" => "SHA512WITHECDSA",
        "1.2.840.10040.4.3" => "SHA1WITHDSA",
        "1.3.101.112" => "ED25519",
        _ => return oid,
    };
    name.to_owned()
}

/// Verifies that `child` was signed by the key in `issuer_spki`.
///
/// Supports what a CA a user brings might use: RSA PKCS#1 v1.5 with SHA-1/256/384/512,
/// RSASSA-PSS with SHA-256/384/512, ECDSA on P-256/384/521 with SHA-256/384/512, and Ed25519.
pub(crate) fn verify_signed_by(
    child: &X509Certificate<'_>,
    issuer_spki: &SubjectPublicKeyInfo<'_>,
) -> Result<(), CaError> {
    verify_signature(
        &child.signature_algorithm,
        child.tbs_certificate.as_ref(),
        &child.signature_value.data,
        issuer_spki,
    )
}

/// Verifies that `signature`, made with `algorithm`, is the signature of `signed` by the key
/// in `spki` (the algorithms of [`verify_signed_by`]).
pub(crate) fn verify_signature(
    algorithm: &AlgorithmIdentifier<'_>,
    signed: &[u8],
    signature: &[u8],
    spki: &SubjectPublicKeyInfo<'_>,
) -> Result<(), CaError> {
    let name = signature_algorithm_name(algorithm);
    let curve = spki_key_algorithm(spki);
    let alg: &'static dyn VerificationAlgorithm = match (name.as_str(), curve) {
        ("SHA1WITHRSA", _) => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        ("SHA256WITHRSA", _) => &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        ("SHA384WITHRSA", _) => &signature::RSA_PKCS1_2048_8192_SHA384,
        ("SHA512WITHRSA", _) => &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
        ("SHA256WITHRSASSA_PSS", _) => &signature::RSA_PSS_2048_8192_SHA256,
        ("SHA384WITHRSASSA_PSS", _) => &signature::RSA_PSS_2048_8192_SHA384,
        ("SHA512WITHRSASSA_PSS", _) => &signature::RSA_PSS_2048_8192_SHA512,
        ("SHA256WITHECDSA", Some(KeyAlgorithm::EcPrime256v1)) => &signature::ECDSA_P256_SHA256_ASN1,
        ("SHA384WITHECDSA", Some(KeyAlgorithm::EcPrime256v1)) => &signature::ECDSA_P256_SHA384_ASN1,
        ("SHA512WITHECDSA", Some(KeyAlgorithm::EcPrime256v1)) => &signature::ECDSA_P256_SHA512_ASN1,
        ("SHA256WITHECDSA", Some(KeyAlgorithm::EcSecp384r1)) => &signature::ECDSA_P384_SHA256_ASN1,
        ("SHA384WITHECDSA", Some(KeyAlgorithm::EcSecp384r1)) => &signature::ECDSA_P384_SHA384_ASN1,
        ("SHA512WITHECDSA", Some(KeyAlgorithm::EcSecp384r1)) => &signature::ECDSA_P384_SHA512_ASN1,
        ("SHA256WITHECDSA", Some(KeyAlgorithm::EcSecp521r1)) => &signature::ECDSA_P521_SHA256_ASN1,
        ("SHA384WITHECDSA", Some(KeyAlgorithm::EcSecp521r1)) => &signature::ECDSA_P521_SHA384_ASN1,
        ("SHA512WITHECDSA", Some(KeyAlgorithm::EcSecp521r1)) => &signature::ECDSA_P521_SHA512_ASN1,
        ("ED25519", _) => &signature::ED25519,
        _ => return Err(CaError::Import(format!("unsupported signature algorithm {name}"))),
    };
    UnparsedPublicKey::new(alg, &spki.subject_public_key.data)
        .verify(signed, signature)
        .map_err(|_| CaError::Import("signature verification failed".into()))
}

/// True when `parent`'s key made `child`'s signature.
pub fn signed_by(child: &ParsedCertificate, parent: &ParsedCertificate) -> bool {
    match (x509(&child.der), x509(&parent.der)) {
        (Ok(child), Ok(parent)) => verify_signed_by(&child, parent.public_key()).is_ok(),
        _ => false,
    }
}

/// A public key reduced to what identifies it, for comparing a key with a certificate.
#[derive(Debug, PartialEq, Eq)]
enum PublicIdentity {
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    Ec { curve: KeyAlgorithm, point: Vec<u8> },
}

/// Does the PEM private key belong to the certificate?
///
/// Accepts unencrypted PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1 (`BEGIN RSA PRIVATE KEY`) and SEC1
/// (`BEGIN EC PRIVATE KEY`) keys. RSA keys of 2048–8192 bits and EC keys on P-256/384/521 are
/// loaded by aws-lc-rs, which checks the key's internal consistency, and their public half is
/// compared with the certificate's. RSA keys below 2048 bits (ACM accepts RSA-1024 imports)
/// are refused by aws-lc-rs, so for those only the modulus and public exponent stored in the
/// key are compared. Encrypted keys and other algorithms (Ed25519, DSA) are errors.
///
/// Returns `Ok(false)` for a well-formed key that belongs to another certificate.
pub fn private_key_matches(cert: &ParsedCertificate, key_pem: &str) -> Result<bool, CaError> {
    let key = private_key_identity(key_pem)?;
    let (_, spki) = SubjectPublicKeyInfo::from_der(&cert.public_key_der)
        .map_err(|e| CaError::InvalidCertificate(format!("public key: {e}")))?;
    let cert_id = match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => Some(PublicIdentity::Rsa {
            modulus: der::unsigned_magnitude(rsa.modulus).to_vec(),
            exponent: der::unsigned_magnitude(rsa.exponent).to_vec(),
        }),
        Ok(PublicKey::EC(point)) => {
            spki_key_algorithm(&spki).map(|curve| PublicIdentity::Ec { curve, point: point.data().to_vec() })
        }
        _ => None,
    };
    Ok(cert_id.is_some_and(|c| c == key))
}

fn private_key_identity(key_pem: &str) -> Result<PublicIdentity, CaError> {
    let block = decode_private_pem(key_pem)?;
    match block.label.as_str() {
        "PRIVATE KEY" => match pkcs8_kind(&block.der)? {
            Pkcs8Kind::Rsa { pkcs1 } => rsa_identity(pkcs1, || RsaKeyPair::from_pkcs8(&block.der).map(|_| ())),
            Pkcs8Kind::Ec { curve: Some(curve) } => {
                let signing = curve.ecdsa_signing().ok_or(CaError::UnsupportedKeyAlgorithm(curve))?;
                let pair = EcdsaKeyPair::from_pkcs8(signing, &block.der)
                    .map_err(|e| CaError::InvalidPrivateKey(format!("key rejected: {e}")))?;
                Ok(PublicIdentity::Ec { curve, point: pair.public_key().as_ref().to_vec() })
            }
            Pkcs8Kind::Ec { curve: None } => {
                Err(CaError::InvalidPrivateKey("only the P-256, P-384 and P-521 curves are supported".into()))
            }
            Pkcs8Kind::Other => Err(CaError::InvalidPrivateKey("only RSA and EC keys are supported".into())),
        },
        "RSA PRIVATE KEY" => rsa_identity(&block.der, || RsaKeyPair::from_der(&block.der).map(|_| ())),
        "EC PRIVATE KEY" => {
            let (curve, pair) = ec_from_sec1(&block.der)?;
            Ok(PublicIdentity::Ec { curve, point: pair.public_key().as_ref().to_vec() })
        }
        other => Err(unsupported_pem_label(other)),
    }
}

/// Reads `n` and `e` from a PKCS#1 `RSAPrivateKey` (RFC 8017 appendix A.1.2) and, for keys
/// aws-lc-rs accepts (2048 bits and up), has it check the whole key.
fn rsa_identity(
    pkcs1: &[u8],
    validate: impl FnOnce() -> Result<(), aws_lc_rs::error::KeyRejected>,
) -> Result<PublicIdentity, CaError> {
    let bad = |_| CaError::InvalidPrivateKey("the RSA private key is malformed".into());
    let (body, _) = der::expect_tlv(pkcs1, der::SEQUENCE).map_err(bad)?;
    let (_version, rest) = der::expect_tlv(body, der::INTEGER).map_err(bad)?;
    let (modulus, rest) = der::expect_tlv(rest, der::INTEGER).map_err(bad)?;
    let (exponent, _) = der::expect_tlv(rest, der::INTEGER).map_err(bad)?;
    if bit_length(modulus) >= 2048 {
        validate().map_err(|e| CaError::InvalidPrivateKey(format!("key rejected: {e}")))?;
    }
    Ok(PublicIdentity::Rsa {
        modulus: der::unsigned_magnitude(modulus).to_vec(),
        exponent: der::unsigned_magnitude(exponent).to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colon_hex_format() {
        assert_eq!(colon_hex(&[0x0a, 0x1b, 0xff]), "0a:1b:ff");
        assert_eq!(colon_hex(&[]), "");
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x01]), 1);
        assert_eq!(bit_length(&[0x00]), 0);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_certificate("no pem here").is_err());
        assert!(parse_certificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
        assert!(parse_certificates("").is_err());
    }
}
