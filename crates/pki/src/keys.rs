//! Key algorithms, key generation (aws-lc-rs), private keys in memory, and the signer rcgen
//! uses to sign with them.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, ECDSA_P521_SHA256_ASN1_SIGNING,
    ECDSA_P521_SHA384_ASN1_SIGNING, ECDSA_P521_SHA512_ASN1_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair as _,
    RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RsaKeyPair, RsaSignatureEncoding,
};
use base64::Engine as _;
use pkcs8::der::Decode as _;
use pkcs8::{ObjectIdentifier, PrivateKeyInfoRef};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::CaError;

/// The key algorithms ACM knows, with ACM's request names (`RSA_2048`, `EC_prime256v1`, ...).
///
/// `Rsa1024` exists because ACM accepts imported RSA-1024 certificates; Carapace never
/// generates RSA-1024 keys (see [`generate_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// RSA, 1024-bit modulus (imports only).
    #[serde(rename = "RSA_1024")]
    Rsa1024,
    /// RSA, 2048-bit modulus (ACM's default).
    #[serde(rename = "RSA_2048")]
    Rsa2048,
    /// RSA, 3072-bit modulus.
    #[serde(rename = "RSA_3072")]
    Rsa3072,
    /// RSA, 4096-bit modulus.
    #[serde(rename = "RSA_4096")]
    Rsa4096,
    /// ECDSA on NIST P-256.
    #[serde(rename = "EC_prime256v1")]
    EcPrime256v1,
    /// ECDSA on NIST P-384.
    #[serde(rename = "EC_secp384r1")]
    EcSecp384r1,
    /// ECDSA on NIST P-521.
    #[serde(rename = "EC_secp521r1")]
    EcSecp521r1,
}

/// RSA or elliptic curve: decides which intermediate signs a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyFamily {
    /// RSA keys; signed by the RSA intermediate.
    Rsa,
    /// Elliptic-curve (ECDSA) keys; signed by the ECDSA intermediate.
    Ec,
}

impl KeyAlgorithm {
    /// Every algorithm, in ACM's order.
    pub const ALL: [KeyAlgorithm; 7] = [
        Self::Rsa1024,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::EcPrime256v1,
        Self::EcSecp384r1,
        Self::EcSecp521r1,
    ];

    /// ACM's request name: `RSA_2048`, `EC_prime256v1`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa1024 => "RSA_1024",
            Self::Rsa2048 => "RSA_2048",
            Self::Rsa3072 => "RSA_3072",
            Self::Rsa4096 => "RSA_4096",
            Self::EcPrime256v1 => "EC_prime256v1",
            Self::EcSecp384r1 => "EC_secp384r1",
            Self::EcSecp521r1 => "EC_secp521r1",
        }
    }

    /// The spelling `DescribeCertificate` shows in `KeyAlgorithm`: `RSA-2048`, `EC-prime256v1`
    /// (a hyphen where requests use an underscore).
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Rsa1024 => "RSA-1024",
            Self::Rsa2048 => "RSA-2048",
            Self::Rsa3072 => "RSA-3072",
            Self::Rsa4096 => "RSA-4096",
            Self::EcPrime256v1 => "EC-prime256v1",
            Self::EcSecp384r1 => "EC-secp384r1",
            Self::EcSecp521r1 => "EC-secp521r1",
        }
    }

    /// RSA or EC.
    pub fn family(self) -> KeyFamily {
        match self {
            Self::Rsa1024 | Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => KeyFamily::Rsa,
            Self::EcPrime256v1 | Self::EcSecp384r1 | Self::EcSecp521r1 => KeyFamily::Ec,
        }
    }

    /// The RSA modulus size for `bits`, if ACM knows it.
    pub(crate) fn from_rsa_bits(bits: usize) -> Option<Self> {
        match bits {
            1024 => Some(Self::Rsa1024),
            2048 => Some(Self::Rsa2048),
            3072 => Some(Self::Rsa3072),
            4096 => Some(Self::Rsa4096),
            _ => None,
        }
    }

    /// The curve named by a named-curve OBJECT IDENTIFIER, if it is one of ACM's three.
    pub(crate) fn from_curve_oid(oid: ObjectIdentifier) -> Option<Self> {
        [Self::EcPrime256v1, Self::EcSecp384r1, Self::EcSecp521r1].into_iter().find(|alg| alg.curve_oid() == Some(oid))
    }

    /// The named-curve OID (RFC 5480 §2.1.1.1); `None` for RSA.
    pub(crate) fn curve_oid(self) -> Option<ObjectIdentifier> {
        match self {
            Self::EcPrime256v1 => Some(ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7")),
            Self::EcSecp384r1 => Some(ObjectIdentifier::new_unwrap("1.3.132.0.34")),
            Self::EcSecp521r1 => Some(ObjectIdentifier::new_unwrap("1.3.132.0.35")),
            _ => None,
        }
    }

    /// The aws-lc-rs signing algorithm for an EC key: each curve signs with the hash of
    /// matching strength (P-256/SHA-256, P-384/SHA-384, P-521/SHA-512), as CAs do.
    pub(crate) fn ecdsa_signing(self) -> Option<&'static EcdsaSigningAlgorithm> {
        match self {
            Self::EcPrime256v1 => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
            Self::EcSecp384r1 => Some(&ECDSA_P384_SHA384_ASN1_SIGNING),
            Self::EcSecp521r1 => Some(&ECDSA_P521_SHA512_ASN1_SIGNING),
            _ => None,
        }
    }

    /// The rcgen algorithm for this key: rcgen uses it both for the key's
    /// SubjectPublicKeyInfo algorithm identifier and for the signature it makes with it.
    pub(crate) fn rcgen_algorithm(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            Self::Rsa1024 | Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
            Self::EcPrime256v1 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcSecp384r1 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::EcSecp521r1 => &rcgen::PKCS_ECDSA_P521_SHA512,
        }
    }

    /// ACM's name for the signature algorithm a CA key of this type signs with.
    pub(crate) fn acm_signature_name(self) -> &'static str {
        match self {
            Self::Rsa1024 | Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => "SHA256WITHRSA",
            Self::EcPrime256v1 => "SHA256WITHECDSA",
            Self::EcSecp384r1 => "SHA384WITHECDSA",
            Self::EcSecp521r1 => "SHA512WITHECDSA",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of ACM's key algorithm names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key algorithm {0:?}")]
pub struct UnknownKeyAlgorithm(pub String);

impl FromStr for KeyAlgorithm {
    type Err = UnknownKeyAlgorithm;

    /// Accepts ACM's request names (`RSA_2048`) and the `DescribeCertificate` spelling
    /// (`RSA-2048`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s || a.display_name() == s)
            .ok_or_else(|| UnknownKeyAlgorithm(s.to_owned()))
    }
}

/// A private key held in memory as PKCS#8 DER (zeroised on drop), with its public half.
///
/// `Debug` shows the algorithm only.
#[derive(Clone)]
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    pkcs8: Zeroizing<Vec<u8>>,
    /// The public key as an X.509 SubjectPublicKeyInfo.
    spki: Vec<u8>,
    /// The SubjectPublicKeyInfo's BIT STRING contents (PKCS#1 RSAPublicKey or an EC point).
    public_bits: Vec<u8>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// Generates a key pair with aws-lc-rs.
///
/// RSA keys use public exponent 65537. `Rsa1024` returns
/// [`CaError::UnsupportedKeyAlgorithm`]: ACM only accepts it on import, never issues it.
pub fn generate_key(algorithm: KeyAlgorithm) -> Result<PrivateKey, CaError> {
    let failed = |_| CaError::KeyGeneration(algorithm);
    let size = match algorithm {
        KeyAlgorithm::Rsa1024 => return Err(CaError::UnsupportedKeyAlgorithm(algorithm)),
        KeyAlgorithm::Rsa2048 => Some(KeySize::Rsa2048),
        KeyAlgorithm::Rsa3072 => Some(KeySize::Rsa3072),
        KeyAlgorithm::Rsa4096 => Some(KeySize::Rsa4096),
        _ => None,
    };
    if let Some(size) = size {
        let pair = RsaKeyPair::generate(size).map_err(failed)?;
        return PrivateKey::from_rsa(&pair, algorithm);
    }
    let signing = algorithm.ecdsa_signing().ok_or(CaError::UnsupportedKeyAlgorithm(algorithm))?;
    let pair = EcdsaKeyPair::generate(signing).map_err(failed)?;
    PrivateKey::from_ec(&pair, algorithm)
}

/// OID 1.2.840.113549.1.1.1, rsaEncryption (RFC 8017 appendix C).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// OID 1.2.840.10045.2.1, id-ecPublicKey (RFC 5480 §2.1.1).
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// What a PKCS#8 `PrivateKeyInfo` says about its key, read with the `pkcs8` crate (no crypto).
pub(crate) enum Pkcs8Kind<'a> {
    /// rsaEncryption, with the PKCS#1 `RSAPrivateKey` inside.
    Rsa { pkcs1: &'a [u8] },
    /// id-ecPublicKey with a named curve, if it is one of ACM's three.
    Ec { curve: Option<KeyAlgorithm> },
    /// Anything else (Ed25519, DSA, ...).
    Other,
}

/// Reads the algorithm of a PKCS#8 `PrivateKeyInfo` (RFC 5208 §5 / RFC 5958 §2).
pub(crate) fn pkcs8_kind(pkcs8: &[u8]) -> Result<Pkcs8Kind<'_>, CaError> {
    let info = PrivateKeyInfoRef::from_der(pkcs8)
        .map_err(|_| CaError::InvalidPrivateKey("the PKCS#8 structure is malformed".into()))?;
    let algorithm = info.algorithm.oid;
    if algorithm == RSA_ENCRYPTION {
        Ok(Pkcs8Kind::Rsa { pkcs1: info.private_key.as_bytes() })
    } else if algorithm == EC_PUBLIC_KEY {
        Ok(Pkcs8Kind::Ec { curve: info.algorithm.parameters_oid().ok().and_then(KeyAlgorithm::from_curve_oid) })
    } else {
        Ok(Pkcs8Kind::Other)
    }
}

impl PrivateKey {
    fn from_rsa(pair: &RsaKeyPair, algorithm: KeyAlgorithm) -> Result<Self, CaError> {
        let bad = |_| CaError::InvalidPrivateKey("the RSA key could not be encoded".into());
        let pkcs8 = pair.as_der().map_err(bad)?;
        let spki = pair.public_key().as_der().map_err(bad)?;
        Ok(Self {
            algorithm,
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
            spki: spki.as_ref().to_vec(),
            public_bits: pair.public_key().as_ref().to_vec(),
        })
    }

    fn from_ec(pair: &EcdsaKeyPair, algorithm: KeyAlgorithm) -> Result<Self, CaError> {
        let bad = |_| CaError::InvalidPrivateKey("the EC key could not be encoded".into());
        let pkcs8 = pair.to_pkcs8v1().map_err(bad)?;
        let spki = pair.public_key().as_der().map_err(bad)?;
        Ok(Self {
            algorithm,
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
            spki: spki.as_ref().to_vec(),
            public_bits: pair.public_key().as_ref().to_vec(),
        })
    }

    fn rsa_algorithm(pair: &RsaKeyPair) -> Result<KeyAlgorithm, CaError> {
        let bits = pair.public_modulus_len() * 8;
        KeyAlgorithm::from_rsa_bits(bits)
            .ok_or_else(|| CaError::InvalidPrivateKey(format!("RSA-{bits} is not a supported key size")))
    }

    /// Loads an unencrypted PKCS#8 DER key (as stored by Carapace and as `pkcs8_der` returns).
    ///
    /// RSA keys must be 2048, 3072 or 4096 bits; EC keys P-256, P-384 or P-521.
    pub fn from_pkcs8_der(pkcs8: &[u8]) -> Result<Self, CaError> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| CaError::InvalidPrivateKey(format!("key rejected: {e}"));
        match pkcs8_kind(pkcs8)? {
            Pkcs8Kind::Rsa { .. } => {
                let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?;
                Self::from_rsa(&pair, Self::rsa_algorithm(&pair)?)
            }
            Pkcs8Kind::Ec { curve: Some(curve) } => {
                let signing = curve.ecdsa_signing().ok_or(CaError::UnsupportedKeyAlgorithm(curve))?;
                let pair = EcdsaKeyPair::from_pkcs8(signing, pkcs8).map_err(rejected)?;
                Self::from_ec(&pair, curve)
            }
            Pkcs8Kind::Ec { curve: None } => {
                Err(CaError::InvalidPrivateKey("only the P-256, P-384 and P-521 curves are supported".into()))
            }
            Pkcs8Kind::Other => Err(CaError::InvalidPrivateKey("only RSA and EC keys are supported".into())),
        }
    }

    /// Loads an unencrypted PEM key: PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`, with or without the
    /// `EC PARAMETERS` block `openssl ecparam -genkey` writes first). The key is normalised to
    /// PKCS#8. Encrypted keys are refused.
    pub fn from_pem(pem_text: &str) -> Result<Self, CaError> {
        let block = decode_private_pem(pem_text)?;
        let rejected = |e: aws_lc_rs::error::KeyRejected| CaError::InvalidPrivateKey(format!("key rejected: {e}"));
        match block.label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&block.der),
            "RSA PRIVATE KEY" => {
                let pair = RsaKeyPair::from_der(&block.der).map_err(rejected)?;
                Self::from_rsa(&pair, Self::rsa_algorithm(&pair)?)
            }
            "EC PRIVATE KEY" => {
                let (curve, pair) = ec_from_sec1(&block.der)?;
                Self::from_ec(&pair, curve)
            }
            other => Err(unsupported_pem_label(other)),
        }
    }

    /// The key as unencrypted PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key as a `-----BEGIN PRIVATE KEY-----` PEM document (zeroised on drop).
    pub fn to_pem(&self) -> Zeroizing<String> {
        encode_pem_secret("PRIVATE KEY", &self.pkcs8)
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The public key as a DER X.509 SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// The public key as rcgen wants it for the certificate being issued.
    pub(crate) fn rcgen_public_key(&self) -> RawPublicKey<'_> {
        RawPublicKey { bits: &self.public_bits, algorithm: self.algorithm.rcgen_algorithm() }
    }
}

/// Loads a SEC1 `ECPrivateKey` (RFC 5915), finding its curve from the optional `parameters`
/// field or, when absent, by trying each supported curve.
pub(crate) fn ec_from_sec1(sec1: &[u8]) -> Result<(KeyAlgorithm, EcdsaKeyPair), CaError> {
    let named = sec1_curve(sec1);
    let candidates: Vec<KeyAlgorithm> = match named {
        Some(curve) => vec![curve],
        None => vec![KeyAlgorithm::EcPrime256v1, KeyAlgorithm::EcSecp384r1, KeyAlgorithm::EcSecp521r1],
    };
    for curve in candidates {
        if let Some(signing) = curve.ecdsa_signing()
            && let Ok(pair) = EcdsaKeyPair::from_private_key_der(signing, sec1)
        {
            return Ok((curve, pair));
        }
    }
    Err(CaError::InvalidPrivateKey("the EC key could not be read (only P-256, P-384 and P-521 are supported)".into()))
}

/// The `[0] parameters` named curve of a SEC1 `ECPrivateKey` (RFC 5915 §3), if present and
/// known.
fn sec1_curve(sec1: &[u8]) -> Option<KeyAlgorithm> {
    let key = sec1::EcPrivateKey::from_der(sec1).ok()?;
    key.parameters?.named_curve().and_then(KeyAlgorithm::from_curve_oid)
}

/// An error for a PEM block that is not one of the three unencrypted key formats.
pub(crate) fn unsupported_pem_label(label: &str) -> CaError {
    if label == "ENCRYPTED PRIVATE KEY" {
        CaError::InvalidPrivateKey("the private key is encrypted; provide it unencrypted".into())
    } else {
        CaError::InvalidPrivateKey(format!("unsupported PEM block {label:?}"))
    }
}

/// One decoded PEM block holding key material.
pub(crate) struct SecretPem {
    /// The label between `BEGIN ` and the dashes.
    pub(crate) label: String,
    /// The decoded body, zeroised on drop.
    pub(crate) der: Zeroizing<Vec<u8>>,
}

/// Decodes the first PEM block whose label ends in `PRIVATE KEY`, skipping others (such as
/// `EC PARAMETERS`). Written by hand rather than with the `pem` crate so no copy of the key
/// outlives this function unzeroised.
pub(crate) fn decode_private_pem(text: &str) -> Result<SecretPem, CaError> {
    let missing = || CaError::InvalidPrivateKey("no PEM private key block found".into());
    let mut lines = text.lines().map(str::trim);
    let label = loop {
        let line = lines.next().ok_or_else(missing)?;
        if let Some(label) = line.strip_prefix("-----BEGIN ").and_then(|l| l.strip_suffix("-----"))
            && label.ends_with("PRIVATE KEY")
        {
            break label.to_owned();
        }
    };
    let end = format!("-----END {label}-----");
    let mut body = Zeroizing::new(String::with_capacity(text.len()));
    let mut ended = false;
    for line in lines.by_ref() {
        if line == end {
            ended = true;
            break;
        }
        if line.contains(':') {
            // RFC 1421 headers: only legacy OpenSSL encryption ("Proc-Type: 4,ENCRYPTED") uses them.
            return Err(CaError::InvalidPrivateKey(
                "the private key is encrypted (PEM headers present); provide it unencrypted".into(),
            ));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(CaError::InvalidPrivateKey(format!("the {label} block has no END line")));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| CaError::InvalidPrivateKey(format!("the {label} block is not valid base64")))?;
    Ok(SecretPem { label, der: Zeroizing::new(der) })
}

/// PEM-encodes secret DER (64-character lines, `\n` endings) into a zeroising string.
pub(crate) fn encode_pem_secret(label: &str, der: &[u8]) -> Zeroizing<String> {
    let b64 = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = Zeroizing::new(String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40));
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// A public key in the form rcgen's `PublicKeyData` wants: the SPKI algorithm and the BIT
/// STRING contents.
pub(crate) struct RawPublicKey<'a> {
    bits: &'a [u8],
    algorithm: &'static rcgen::SignatureAlgorithm,
}

impl<'a> RawPublicKey<'a> {
    /// A public key of `algorithm` whose subjectPublicKey bits are `bits`.
    pub(crate) fn new(bits: &'a [u8], algorithm: KeyAlgorithm) -> Self {
        Self { bits, algorithm: algorithm.rcgen_algorithm() }
    }
}

impl rcgen::PublicKeyData for RawPublicKey<'_> {
    fn der_bytes(&self) -> &[u8] {
        self.bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

/// The signature algorithms a private CA signs with (AWS Private CA's `SigningAlgorithm`),
/// under their API names.
///
/// Each pairs a hash with the key's family, and the key decides which hashes it can use:
/// any of the three with an RSA key, the curve's own hash with a P-256 or P-384 key (rcgen,
/// which encodes the certificate, names no other ECDSA pairing for those curves), any of the
/// three with a P-521 key. RSASSA-PSS, SM2 and ML-DSA are not among them: rcgen cannot name
/// an RSASSA-PSS signature, and the crate stack signs neither SM2 nor, in a stable release,
/// ML-DSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[serde(rename = "SHA256WITHRSA")]
    Sha256WithRsa,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    #[serde(rename = "SHA384WITHRSA")]
    Sha384WithRsa,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    #[serde(rename = "SHA512WITHRSA")]
    Sha512WithRsa,
    /// ECDSA with SHA-256.
    #[serde(rename = "SHA256WITHECDSA")]
    Sha256WithEcdsa,
    /// ECDSA with SHA-384.
    #[serde(rename = "SHA384WITHECDSA")]
    Sha384WithEcdsa,
    /// ECDSA with SHA-512.
    #[serde(rename = "SHA512WITHECDSA")]
    Sha512WithEcdsa,
}

impl SigningAlgorithm {
    /// Every algorithm Carapace signs with.
    pub const ALL: [SigningAlgorithm; 6] = [
        Self::Sha256WithRsa,
        Self::Sha384WithRsa,
        Self::Sha512WithRsa,
        Self::Sha256WithEcdsa,
        Self::Sha384WithEcdsa,
        Self::Sha512WithEcdsa,
    ];

    /// The API name, e.g. `SHA256WITHRSA`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256WithRsa => "SHA256WITHRSA",
            Self::Sha384WithRsa => "SHA384WITHRSA",
            Self::Sha512WithRsa => "SHA512WITHRSA",
            Self::Sha256WithEcdsa => "SHA256WITHECDSA",
            Self::Sha384WithEcdsa => "SHA384WITHECDSA",
            Self::Sha512WithEcdsa => "SHA512WITHECDSA",
        }
    }

    /// The algorithm named `name`, if Carapace signs with it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Whether a key of `key` can sign with this algorithm.
    pub fn fits(self, key: KeyAlgorithm) -> bool {
        self.scheme(key).is_some()
    }

    /// How a `key` signs with this algorithm: rcgen's name for the signature, and the
    /// aws-lc-rs scheme that makes it.
    fn scheme(self, key: KeyAlgorithm) -> Option<(&'static rcgen::SignatureAlgorithm, Scheme)> {
        use KeyAlgorithm as K;
        let rsa = |r: &'static rcgen::SignatureAlgorithm, e: &'static RsaSignatureEncoding| Some((r, Scheme::Rsa(e)));
        let ec = |r: &'static rcgen::SignatureAlgorithm, e: &'static EcdsaSigningAlgorithm| Some((r, Scheme::Ec(e)));
        match (self, key) {
            (Self::Sha256WithRsa, K::Rsa1024 | K::Rsa2048 | K::Rsa3072 | K::Rsa4096) => {
                rsa(&rcgen::PKCS_RSA_SHA256, &RSA_PKCS1_SHA256)
            }
            (Self::Sha384WithRsa, K::Rsa1024 | K::Rsa2048 | K::Rsa3072 | K::Rsa4096) => {
                rsa(&rcgen::PKCS_RSA_SHA384, &RSA_PKCS1_SHA384)
            }
            (Self::Sha512WithRsa, K::Rsa1024 | K::Rsa2048 | K::Rsa3072 | K::Rsa4096) => {
                rsa(&rcgen::PKCS_RSA_SHA512, &RSA_PKCS1_SHA512)
            }
            (Self::Sha256WithEcdsa, K::EcPrime256v1) => {
                ec(&rcgen::PKCS_ECDSA_P256_SHA256, &ECDSA_P256_SHA256_ASN1_SIGNING)
            }
            (Self::Sha384WithEcdsa, K::EcSecp384r1) => {
                ec(&rcgen::PKCS_ECDSA_P384_SHA384, &ECDSA_P384_SHA384_ASN1_SIGNING)
            }
            (Self::Sha256WithEcdsa, K::EcSecp521r1) => {
                ec(&rcgen::PKCS_ECDSA_P521_SHA256, &ECDSA_P521_SHA256_ASN1_SIGNING)
            }
            (Self::Sha384WithEcdsa, K::EcSecp521r1) => {
                ec(&rcgen::PKCS_ECDSA_P521_SHA384, &ECDSA_P521_SHA384_ASN1_SIGNING)
            }
            (Self::Sha512WithEcdsa, K::EcSecp521r1) => {
                ec(&rcgen::PKCS_ECDSA_P521_SHA512, &ECDSA_P521_SHA512_ASN1_SIGNING)
            }
            _ => None,
        }
    }

    /// The algorithm a key of `key` signs with by default: RSA with SHA-256, each curve with
    /// the hash of matching strength.
    pub fn default_for(key: KeyAlgorithm) -> Self {
        match key {
            KeyAlgorithm::Rsa1024 | KeyAlgorithm::Rsa2048 | KeyAlgorithm::Rsa3072 | KeyAlgorithm::Rsa4096 => {
                Self::Sha256WithRsa
            }
            KeyAlgorithm::EcPrime256v1 => Self::Sha256WithEcdsa,
            KeyAlgorithm::EcSecp384r1 => Self::Sha384WithEcdsa,
            KeyAlgorithm::EcSecp521r1 => Self::Sha512WithEcdsa,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How aws-lc-rs makes a signature.
#[derive(Clone, Copy)]
enum Scheme {
    Rsa(&'static RsaSignatureEncoding),
    Ec(&'static EcdsaSigningAlgorithm),
}

enum SignerKind {
    Rsa(RsaKeyPair, &'static RsaSignatureEncoding),
    Ec(EcdsaKeyPair),
}

/// A CA signing key, implementing rcgen's `SigningKey` directly on aws-lc-rs key pairs (rather
/// than going through `rcgen::KeyPair`, which panics on algorithms it does not know).
pub(crate) struct Signer {
    kind: SignerKind,
    algorithm: KeyAlgorithm,
    signing: SigningAlgorithm,
    signature: &'static rcgen::SignatureAlgorithm,
    public_bits: Vec<u8>,
}

impl Signer {
    /// Loads the signer for `key`, signing with the key's default algorithm
    /// ([`SigningAlgorithm::default_for`]).
    pub(crate) fn new(key: &PrivateKey) -> Result<Self, CaError> {
        Self::with_algorithm(key, SigningAlgorithm::default_for(key.algorithm))
    }

    /// Loads the signer for `key`, signing with `signing`, which must fit the key.
    pub(crate) fn with_algorithm(key: &PrivateKey, signing: SigningAlgorithm) -> Result<Self, CaError> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| CaError::InvalidPrivateKey(format!("key rejected: {e}"));
        let (signature, scheme) =
            signing.scheme(key.algorithm).ok_or(CaError::SigningAlgorithmMismatch { signing, key: key.algorithm })?;
        let kind = match scheme {
            Scheme::Ec(alg) => SignerKind::Ec(EcdsaKeyPair::from_pkcs8(alg, key.pkcs8_der()).map_err(rejected)?),
            Scheme::Rsa(encoding) => {
                SignerKind::Rsa(RsaKeyPair::from_pkcs8(key.pkcs8_der()).map_err(rejected)?, encoding)
            }
        };
        Ok(Self { kind, algorithm: key.algorithm, signing, signature, public_bits: key.public_bits.clone() })
    }

    /// The signing key's algorithm.
    pub(crate) fn key_algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// What it signs with.
    pub(crate) fn signing_algorithm(&self) -> SigningAlgorithm {
        self.signing
    }
}

impl rcgen::PublicKeyData for Signer {
    fn der_bytes(&self) -> &[u8] {
        &self.public_bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.signature
    }
}

impl rcgen::SigningKey for Signer {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.kind {
            SignerKind::Rsa(pair, encoding) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(*encoding, &rng, msg, &mut signature).map_err(|_| rcgen::Error::RemoteKeyError)?;
                Ok(signature)
            }
            SignerKind::Ec(pair) => {
                Ok(pair.sign(&rng, msg).map_err(|_| rcgen::Error::RemoteKeyError)?.as_ref().to_vec())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<KeyAlgorithm>().unwrap(), alg);
            assert_eq!(alg.display_name().parse::<KeyAlgorithm>().unwrap(), alg);
            let json = serde_json::to_string(&alg).unwrap();
            assert_eq!(json, format!("\"{}\"", alg.as_str()));
            assert_eq!(serde_json::from_str::<KeyAlgorithm>(&json).unwrap(), alg);
        }
        assert!("RSA_8192".parse::<KeyAlgorithm>().is_err());
        assert_eq!(KeyAlgorithm::EcSecp384r1.family(), KeyFamily::Ec);
        assert_eq!(KeyAlgorithm::Rsa3072.family(), KeyFamily::Rsa);
    }

    #[test]
    fn rsa1024_is_not_generated() {
        assert!(matches!(generate_key(KeyAlgorithm::Rsa1024), Err(CaError::UnsupportedKeyAlgorithm(_))));
    }

    #[test]
    fn generated_keys_reload_from_pkcs8_and_pem() {
        for alg in
            [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcPrime256v1, KeyAlgorithm::EcSecp384r1, KeyAlgorithm::EcSecp521r1]
        {
            let key = generate_key(alg).unwrap();
            assert_eq!(key.algorithm(), alg);
            let again = PrivateKey::from_pkcs8_der(key.pkcs8_der()).unwrap();
            assert_eq!(again.algorithm(), alg);
            assert_eq!(again.public_key_der(), key.public_key_der());
            let pem = key.to_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert!(pem.lines().all(|l| l.len() <= 64));
            let from_pem = PrivateKey::from_pem(&pem).unwrap();
            assert_eq!(from_pem.pkcs8_der(), key.pkcs8_der());
            // rcgen's SPKI for the raw key equals aws-lc-rs's.
            let spki = rcgen::PublicKeyData::subject_public_key_info(&key.rcgen_public_key());
            assert_eq!(spki, key.public_key_der(), "{alg}");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let key = generate_key(KeyAlgorithm::EcPrime256v1).unwrap();
        let dbg = format!("{key:?}");
        assert_eq!(dbg, "PrivateKey { algorithm: EcPrime256v1, .. }");
    }

    #[test]
    fn pem_decoder_skips_other_blocks_and_refuses_encrypted() {
        let key = generate_key(KeyAlgorithm::EcPrime256v1).unwrap();
        let text = format!(
            "junk\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            *key.to_pem()
        );
        assert_eq!(PrivateKey::from_pem(&text).unwrap().public_key_der(), key.public_key_der());
        let encrypted = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        assert!(PrivateKey::from_pem(encrypted).unwrap_err().to_string().contains("encrypted"));
        let pkcs8_encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(PrivateKey::from_pem(pkcs8_encrypted).unwrap_err().to_string().contains("encrypted"));
        assert!(PrivateKey::from_pem("nothing here").is_err());
        assert!(PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n").is_err());
        assert!(PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----").is_err());
    }
}
