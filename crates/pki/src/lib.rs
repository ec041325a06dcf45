//! Carapace's PKI: key generation, the root and intermediates, leaf issuance, certificate
//! parsing and key matching, CRL and OCSP encoding, encrypted key export, and the master
//! key that seals private keys at rest ([`crypto`]).
//!
//! Pure computation: no store, no async runtime, no network. The core uses it (as
//! `carapace_kernel::ca`) for ACM and Directory Service; the edge uses it for TLS material.
//!
//! The hierarchy mirrors Amazon's public one, which ACM users know from their certificate
//! chains: one root (`<name> Root CA 1`, RSA-2048, 20 years) signs two intermediates
//! (`<name> RSA 2048 M01` and `<name> ECDSA 256 M01`, 10 years, `pathlen:0`). RSA leaves are
//! signed by the RSA intermediate and EC leaves by the ECDSA one, as ACM does. The root and
//! intermediates follow the CA/Browser Forum Baseline Requirements' root and TLS subordinate CA
//! profiles, their subject given by a [`CaProfile`], and the root signs a CRL for its
//! intermediates. A second hierarchy serves ACM's Amazon N2 certificates: `<name> Root CA N2`,
//! cross-signed by the main root, and its own two intermediates ([`Hierarchy`]). An operator
//! can instead bring their own root and one intermediate, which
//! then signs every leaf ([`CertificateAuthority::import`]); [`lint`] reports what such a CA
//! lacks for those profiles.
//!
//! Building and signing certificates is rcgen's job; generating keys and signing bytes is
//! aws-lc-rs's; reading certificates is x509-parser's. Private keys at rest are sealed with the
//! [`MasterKey`](crate::crypto::MasterKey) ([`CaMaterial`]).
//!
//! Known differences from ACM's certificates: no Signed Certificate Timestamps (there is no
//! public CT log to submit to), and the leaf's subject carries only the common name.

mod authority;
pub mod crypto;
mod der;
mod export;
mod keys;
pub mod lint;
mod ocsp;
mod parse;
mod path;

pub use authority::{
    CaCertificateProblem, CaMaterial, CaProfile, CertificateAuthority, Csr, Hierarchy, IntermediateInfo,
    IntermediateMaterial, IssuedCertificate, LeafRequest, LeafUsage, N2Material, NameAttribute, PrivateCertificate,
    PrivateIssue, PrivateSigner, RevokedSerial, Subject, Template, ca_csr, certificate_public_key,
    check_ca_certificate, leaf_csr, random_serial,
};
pub use export::{PKCS8_PBKDF2_ITERATIONS, encrypt_pkcs8_pem};
pub use keys::{KeyAlgorithm, KeyFamily, PrivateKey, SigningAlgorithm, UnknownKeyAlgorithm, generate_key};
pub use ocsp::{
    MAX_OCSP_QUERIES, OcspFailure, OcspQuery, OcspRequest, OcspStatus, ocsp_failure, ocsp_key_hashes,
    parse_ocsp_request,
};
pub use parse::{
    ExtendedKeyUsage, ParsedCertificate, parse_certificate, parse_certificate_der, parse_certificates,
    private_key_matches, signed_by,
};
pub use path::{MAX_PATH_VERIFICATIONS, chain_path, issued_by};

use crate::crypto::CryptoError;

/// Errors from the CA, key handling and certificate parsing.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Carapace does not generate keys of this algorithm (RSA-1024 exists for imports only).
    #[error("key algorithm {0} is not supported for this operation")]
    UnsupportedKeyAlgorithm(KeyAlgorithm),
    /// aws-lc-rs failed to generate a key.
    #[error("could not generate a {0} key")]
    KeyGeneration(KeyAlgorithm),
    /// A private key could not be read or is not usable.
    #[error("invalid private key: {0}")]
    InvalidPrivateKey(String),
    /// A certificate could not be parsed.
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// A leaf request is malformed (bad name, empty validity window, ...).
    #[error("invalid certificate request: {0}")]
    InvalidRequest(String),
    /// The issuing intermediate is not valid at the time of issuance.
    #[error("the issuing CA certificate {id} is not valid at {at} (valid {not_before} to {not_after})")]
    IssuerNotValid {
        /// The intermediate's id.
        id: String,
        /// The issuance time.
        at: time::OffsetDateTime,
        /// Intermediate validity start.
        not_before: time::OffsetDateTime,
        /// Intermediate validity end.
        not_after: time::OffsetDateTime,
    },
    /// rcgen could not build or sign a certificate or CRL.
    #[error("signing failed: {0}")]
    Signing(#[from] rcgen::Error),
    /// A user-provided root/intermediate was refused.
    #[error("CA import rejected: {0}")]
    Import(String),
    /// Stored CA material is inconsistent (a key that does not match its certificate, an
    /// intermediate that does not chain to the root, an unknown format version).
    #[error("stored CA material is invalid: {0}")]
    Material(String),
    /// A sealed key could not be opened (usually: a different master key).
    #[error("CA key could not be unsealed: {0}")]
    Unseal(#[from] CryptoError),
    /// Encrypted key export failed.
    #[error("key export failed: {0}")]
    Export(String),
    /// No intermediate has this id.
    #[error("no CA certificate with id {0}")]
    UnknownIntermediate(String),
    /// The signing algorithm does not fit the key.
    #[error("the signing algorithm {signing} cannot be used with a {key} key")]
    SigningAlgorithmMismatch {
        /// The algorithm asked for.
        signing: SigningAlgorithm,
        /// The key's algorithm.
        key: KeyAlgorithm,
    },
    /// A certificate signing request could not be read, or its signature does not verify.
    #[error("malformed certificate signing request: {0}")]
    MalformedCsr(String),
}
