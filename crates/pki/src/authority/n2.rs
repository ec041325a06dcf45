//! The second hierarchy, for ACM's Amazon N2 certificates (`RootHierarchyType`).
//!
//! ACM issues N2 certificates from a root of their own: `N2_AMAZON_MANAGED` certificates chain
//! to an Amazon N2 root, `N2_SFG2_AMAZON_MANAGED` ones to that N2 root cross-signed by Starfield
//! Services Root CA G2 (RequestCertificate, `RootHierarchyType`, in the ACM API reference).
//! Carapace mirrors the shape with its own keys: `<name> Root CA N2` (P-384, self-signed)
//! signs `<name> RSA 2048 N01` and `<name> ECDSA 256 N01`, and the CA's main root
//! (`<name> Root CA 1`) cross-signs the N2 root, standing where Starfield G2 stands. A leaf of
//! `N2` ships the chain N01 → N2 root; a leaf of `N2CrossSigned` ships N01 → the cross-signed
//! N2 root → the main root, so a client that trusts only the main root verifies it too.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CrlDistributionPoint, IsCa, Issuer, KeyIdMethod};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use super::{
    CaError, CaProfile, GeneratedRoot, Intermediate, IntermediateMaterial, KeyAlgorithm, MasterKey, Signer,
    authority_info_access, certificate_pem, certificate_policy, checked_base_url, generate_intermediate,
    key_identifier, seal_key, single_certificate_der, unseal_root_key, verify_signed_by, x509,
};

/// Which root a leaf chains to: ACM's `RootHierarchyType`, absent for standard certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Hierarchy {
    /// The main root, `<name> Root CA 1`: ACM's standard public certificates.
    #[default]
    Main,
    /// `N2_AMAZON_MANAGED`: the self-signed N2 root.
    N2,
    /// `N2_SFG2_AMAZON_MANAGED`: the N2 root cross-signed by the main root.
    N2CrossSigned,
}

/// The extended key usages of a leaf: ACM's `CertificateUsage` for N2 certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LeafUsage {
    /// serverAuth alone, as ACM's standard public certificates carry.
    #[default]
    ServerAuth,
    /// `CLIENT_AND_SERVER_AUTH`: serverAuth and clientAuth.
    ClientAndServerAuth,
    /// `CLIENT_AUTH_ONLY`: clientAuth alone.
    ClientAuthOnly,
}

/// The stored form of the N2 hierarchy, inside [`CaMaterial`](super::CaMaterial).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct N2Material {
    /// The self-signed N2 root, PEM.
    pub root_certificate_pem: String,
    /// The N2 root's private key, sealed (it signs the CRL of its intermediates).
    pub root_private_key_sealed: String,
    /// The N2 root's subject and key, signed by the main root, PEM; `None` when the main root's
    /// key is not held (an imported CA), so `N2CrossSigned` is unavailable.
    pub cross_signed_pem: Option<String>,
    /// The intermediate that signs RSA leaves.
    pub rsa_intermediate: IntermediateMaterial,
    /// The intermediate that signs EC leaves.
    pub ecdsa_intermediate: IntermediateMaterial,
}

/// The loaded N2 hierarchy.
pub(super) struct N2 {
    pub(super) root_pem: String,
    pub(super) root_der: Vec<u8>,
    pub(super) root_id: String,
    pub(super) root_signer: Signer,
    pub(super) root_issuer_params: CertificateParams,
    pub(super) cross_signed_pem: Option<String>,
    pub(super) rsa: Arc<Intermediate>,
    pub(super) ecdsa: Arc<Intermediate>,
}

impl N2 {
    /// Generates the N2 hierarchy for a CA described by `profile` whose main root is `main`
    /// (its issuer parameters and signer when the key is held, and its id).
    pub(super) fn generate(
        profile: &CaProfile,
        main: Option<(Issuer<'_, &Signer>, OffsetDateTime)>,
        main_root_id: &str,
        now: OffsetDateTime,
        master_key: &MasterKey,
    ) -> Result<N2Material, CaError> {
        let name = profile.name.trim();
        let base_url = checked_base_url(&profile.base_url)?;
        let root = GeneratedRoot::new(profile, &format!("{name} Root CA N2"), KeyAlgorithm::EcSecp384r1, now)?;
        let root_issuer = root.issuer();
        let intermediate = |alg, cn: String| {
            generate_intermediate(profile, &cn, alg, now, &root_issuer, &root.id, base_url, master_key)
        };
        let rsa_intermediate = intermediate(KeyAlgorithm::Rsa2048, format!("{name} RSA 2048 N01"))?;
        let ecdsa_intermediate = intermediate(KeyAlgorithm::EcPrime256v1, format!("{name} ECDSA 256 N01"))?;
        let cross_signed_pem = match main {
            Some((main, main_not_after)) => Some(cross_sign(&root, &main, main_not_after, main_root_id, base_url)?),
            None => None,
        };
        Ok(N2Material {
            root_certificate_pem: certificate_pem(root.cert.der()),
            root_private_key_sealed: seal_key(&root.key, root.cert.der(), master_key)?,
            cross_signed_pem,
            rsa_intermediate,
            ecdsa_intermediate,
        })
    }

    /// Loads stored N2 material, checking every key against its certificate, the intermediates
    /// against the N2 root and the cross-signed certificate against the main root.
    pub(super) fn load(
        material: &N2Material,
        main_root: &X509Certificate<'_>,
        master_key: &MasterKey,
    ) -> Result<Self, CaError> {
        let root_der = single_certificate_der(&material.root_certificate_pem, "N2 root certificate")?;
        let root = x509(&root_der)?;
        let (root_signer, root_issuer_params) =
            unseal_root_key(&material.root_private_key_sealed, &root_der, &root, master_key, "N2 root")?;
        let (rsa, ecdsa) =
            Intermediate::load_pair(&material.rsa_intermediate, &material.ecdsa_intermediate, &root, master_key)?;
        let cross_signed_pem = match &material.cross_signed_pem {
            Some(pem) => {
                let der = single_certificate_der(pem, "cross-signed N2 root")?;
                let cross = x509(&der)?;
                if cross.subject().as_raw() != root.subject().as_raw()
                    || cross.public_key().raw != root.public_key().raw
                    || cross.issuer().as_raw() != main_root.subject().as_raw()
                    || verify_signed_by(&cross, main_root.public_key()).is_err()
                {
                    return Err(CaError::Material(
                        "the cross-signed N2 root is not the N2 root signed by the main root".into(),
                    ));
                }
                Some(certificate_pem(&der))
            }
            None => None,
        };
        Ok(Self {
            root_pem: certificate_pem(&root_der),
            root_id: hex::encode(key_identifier(&root)),
            root_der,
            root_signer,
            root_issuer_params,
            cross_signed_pem,
            rsa,
            ecdsa,
        })
    }
}

/// Certificate Policies with anyPolicy (RFC 5280 §4.2.1.4): a cross-certificate must carry
/// policies (BR 7.1.2.2.6), and anyPolicy is the one allowed when the cross-certified CA is an
/// affiliate of the issuer, as the N2 root is of the main root (one operator, one key store).
fn any_policy() -> Result<rcgen::CustomExtension, CaError> {
    certificate_policy(x509_cert::der::asn1::ObjectIdentifier::new_unwrap("2.5.29.32.0"))
}

/// The N2 root's subject and public key, signed by the main root: a CA certificate with the
/// same subject key identifier as the self-signed N2 root (so the N2 intermediates' authority
/// key identifier matches both), the main root's authority key identifier, and the main root's
/// CRL and certificate URLs — the shape of Amazon Root CA 1 as cross-signed by Starfield G2.
/// It lives as long as the N2 root, but never past the main root.
fn cross_sign(
    n2_root: &GeneratedRoot,
    main: &Issuer<'_, &Signer>,
    main_not_after: OffsetDateTime,
    main_root_id: &str,
    base_url: &str,
) -> Result<String, CaError> {
    let mut params = n2_root.params.clone();
    params.not_after = params.not_after.min(main_not_after);
    params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(&x509(n2_root.cert.der())?));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.use_authority_key_identifier_extension = true;
    params.crl_distribution_points =
        vec![CrlDistributionPoint { uris: vec![format!("{base_url}/crl/{main_root_id}.crl")] }];
    params.custom_extensions =
        vec![authority_info_access(None, Some(&format!("{base_url}/ca/{main_root_id}.crt")))?, any_policy()?];
    let cert = params.signed_by(&n2_root.key.rcgen_public_key(), main)?;
    Ok(certificate_pem(cert.der()))
}
