//! ImportCertificate and ExportCertificate, and reading a certificate's private key for
//! services that serve it (the edge).
//!
//! Import follows ACM's documented checks: PEM leaf, key and optional chain; the key is
//! unencrypted, at most 5,120 bytes, and matches the leaf; the current time is within the
//! leaf's validity; the issuer is not empty; the key algorithm is one of ACM's seven; the leaf
//! verifies through the chain: the certification path is built from the leaf through the
//! given certificates (`ca::chain_path`: names and key identifiers link, and each issuer's
//! key verifies the signature), and certificates off the path are ignored.
//! Re-importing to an existing ARN replaces an imported certificate and keeps its ARN,
//! tags and creation time.

use base64::Engine as _;
use carapace_store::{Key, Row, Write};
use zeroize::Zeroizing;

use super::issue::{facts, material_put, seal_bytes, seal_key};
use super::lifecycle;
use super::names::{self, CertificateArn, Tag};
use super::query::not_yet_issued;
use super::quota::{backoff, is_usage_conflict, usage_put};
use super::record::{
    self, CertificateRecord, CertificateType, DomainValidation, KeyFormat, KeyPairOrigin, Material, Options,
};
use super::state::{DomainStatus, Event, Status, transition};
use super::{AcmError, CertificateManager, Loaded, Owner, record_put};
use carapace_kernel::ca::{self, ParsedCertificate, PrivateKey};

/// Largest private key ImportCertificate accepts (ACM: "no larger than 5 KB (5,120 bytes)").
pub const MAX_IMPORTED_KEY_BYTES: usize = 5_120;

/// An ImportCertificate request.
#[derive(Clone, Default)]
pub struct ImportRequest {
    /// The ARN to re-import to; `None` for a new certificate.
    pub certificate_arn: Option<String>,
    /// The leaf, PEM.
    pub certificate: Vec<u8>,
    /// The private key, PEM (unencrypted).
    pub private_key: Zeroizing<Vec<u8>>,
    /// The chain, PEM.
    pub certificate_chain: Option<Vec<u8>>,
    /// Tags (not allowed on re-import).
    pub tags: Vec<Tag>,
}

impl std::fmt::Debug for ImportRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRequest").field("certificate_arn", &self.certificate_arn).finish_non_exhaustive()
    }
}

/// What ExportCertificate returns.
pub struct ExportedCertificate {
    /// The leaf, PEM.
    pub certificate: String,
    /// The chain, PEM.
    pub certificate_chain: String,
    /// The key as passphrase-encrypted PKCS#8 PEM.
    pub private_key: Zeroizing<String>,
}

impl std::fmt::Debug for ExportedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportedCertificate").finish_non_exhaustive()
    }
}

fn invalid(msg: impl Into<String>) -> AcmError {
    AcmError::Validation(msg.into())
}

/// Checks an import and returns the parsed leaf, the chain text and the key to seal.
fn check_import(
    req: &ImportRequest,
    now: time::OffsetDateTime,
) -> Result<(ParsedCertificate, String, SealedKey), AcmError> {
    if req.private_key.len() > MAX_IMPORTED_KEY_BYTES {
        return Err(invalid(format!(
            "The private key is {} bytes; ACM accepts private keys of at most {MAX_IMPORTED_KEY_BYTES} bytes.",
            req.private_key.len()
        )));
    }
    let cert_text =
        std::str::from_utf8(&req.certificate).map_err(|_| invalid("The certificate is not PEM-encoded."))?;
    let leaf = ca::parse_certificate(cert_text)
        .map_err(|e| invalid(format!("The certificate is not PEM-encoded or is not valid: {e}.")))?;
    let key_text = std::str::from_utf8(&req.private_key).map_err(|_| invalid("The private key is not PEM-encoded."))?;
    if key_text.contains("ENCRYPTED") {
        return Err(invalid("The private key is encrypted; ACM imports only unencrypted private keys."));
    }
    if leaf.key_algorithm.is_none() {
        return Err(invalid(
            "The certificate's key algorithm is not supported; ACM imports RSA 1024/2048/3072/4096 and EC P-256/P-384/P-521 keys.",
        ));
    }
    if leaf.issuer_dn.trim().is_empty() {
        return Err(invalid("The certificate's Issuer field is empty."));
    }
    if now < leaf.not_before {
        return Err(invalid(
            "The certificate is not in effect yet, is not valid (the current time is before its Not Before).",
        ));
    }
    if now > leaf.not_after {
        return Err(invalid("The certificate has expired, is not valid (the current time is after its Not After)."));
    }
    match ca::private_key_matches(&leaf, key_text) {
        Ok(true) => {}
        Ok(false) => return Err(invalid("The private key does not match the public key in the certificate.")),
        Err(e) => return Err(invalid(format!("The private key is not PEM-encoded or is not valid: {e}."))),
    }
    let chain_text = match &req.certificate_chain {
        None => String::new(),
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| invalid("The certificate chain is not PEM-encoded."))?;
            let chain = ca::parse_certificates(text)
                .map_err(|e| invalid(format!("The certificate chain is not PEM-encoded or is not valid: {e}.")))?;
            // The leaf must verify through the chain; certificates off its path (a CA
            // bundle, moto's root-plus-unrelated-intermediate fixture) are ignored.
            if ca::chain_path(&leaf, &chain).is_empty() {
                return Err(invalid(format!(
                    "The certificate chain does not link: no certificate of the chain issued {} (issuer {}).",
                    leaf.subject, leaf.issuer_dn
                )));
            }
            // Kept as given (re-encoded PEM, every certificate, in order): GetCertificate
            // returns what was imported, as moto and LocalStack do; no AWS recording shows
            // ACM trimming or reordering an imported chain.
            chain.iter().map(ParsedCertificate::to_pem).collect::<String>()
        }
    };
    // Normalise to PKCS#8 when aws-lc-rs can load the key; RSA-1024 (import-only) is kept
    // as the PEM given.
    let sealed = match PrivateKey::from_pem(key_text) {
        Ok(key) => SealedKey::Key(key),
        Err(_) => SealedKey::Pem(Zeroizing::new(key_text.as_bytes().to_vec())),
    };
    Ok((leaf, chain_text, sealed))
}

enum SealedKey {
    Key(PrivateKey),
    Pem(Zeroizing<Vec<u8>>),
}

impl CertificateManager {
    /// ImportCertificate: returns the certificate's ARN (the given one on re-import).
    pub async fn import_certificate(&self, owner: &Owner, req: ImportRequest) -> Result<String, AcmError> {
        let (leaf, chain_pem, key) = check_import(&req, self.core.clock.now())?;
        let scope = owner.scope();
        let facts = facts(&leaf);
        let key_algorithm = leaf.key_algorithm.ok_or_else(|| invalid("unsupported key algorithm"))?;
        // DomainName is the common name, else the first DNS name; SANs are the certificate's.
        let domain_name =
            leaf.common_name.clone().or_else(|| leaf.subject_alternative_names.first().cloned()).unwrap_or_default();
        let mut sans = leaf.subject_alternative_names.clone();
        if sans.is_empty() && !domain_name.is_empty() {
            sans.push(domain_name.clone());
        }
        let domains: Vec<DomainValidation> = sans
            .iter()
            .map(|d| DomainValidation {
                domain_name: d.clone(),
                validation_domain: String::new(),
                status: DomainStatus::Success,
                method: None,
                resource_record: None,
                http_redirect: None,
                validation_emails: Vec::new(),
            })
            .collect();
        let seal = |arn: &str| -> Result<(String, KeyFormat), AcmError> {
            Ok(match &key {
                SealedKey::Key(k) => (seal_key(&self.core, k, arn)?, KeyFormat::Pkcs8Der),
                SealedKey::Pem(p) => (seal_bytes(&self.core, p, arn)?, KeyFormat::Pem),
            })
        };
        let now = self.now_ms();

        let Some(arn) = req.certificate_arn.clone() else {
            names::check_tags(&req.tags)?;
            let mut tags = Vec::new();
            names::merge_tags(&mut tags, &req.tags)?;
            let id = uuid::Uuid::new_v4().to_string();
            let arn = CertificateArn::format(owner, &id);
            let (sealed_key, key_format) = seal(&arn)?;
            let record = CertificateRecord {
                schema: record::SCHEMA,
                arn: arn.clone(),
                domain_name,
                sans,
                status: Status::Issued,
                cert_type: CertificateType::Imported,
                key_algorithm,
                key_pair_origin: KeyPairOrigin::CustomerProvided,
                validation_method: None,
                domains,
                options: Options { transparency_logging: true, export: false },
                managed_by: None,
                created_ms: now,
                issued_ms: None,
                imported_ms: Some(now),
                revoked_ms: None,
                revocation_reason: None,
                failure_reason: None,
                validation_deadline_ms: None,
                x509: Some(facts),
                tags,
                in_use_by: Vec::new(),
                exported: false,
                renewal: None,
                method_update: None,
                held_by: None,
                issuance: 1,
                root_hierarchy: None,
                certificate_usage: None,
                certificate_authority_arn: None,
            };
            let material =
                Material { schema: record::SCHEMA, certificate_pem: leaf.to_pem(), chain_pem, sealed_key, key_format };
            let row = |kind: &str, body: Vec<u8>| Write::Put {
                row: Row { key: Key::new(kind, &scope, &id), version: 0, created_ms: now, body },
                expect: None,
            };
            let _turn = self.usage_locks.lock(&scope).await;
            return carapace_kernel::optimistic!(
                AcmError,
                AcmError::Conflict("Too many concurrent requests for this account; try again.".into()),
                |attempt| {
                    let mut usage = self.usage(&scope).await?;
                    self.check_quotas(&usage.usage, now)?;
                    usage.usage.add(now);
                    let mut writes = vec![
                        row(record::KIND, record.encode()?),
                        row(record::MATERIAL_KIND, material.encode()?),
                        usage_put(&scope, &usage)?,
                    ];
                    writes.extend(lifecycle::new_leaf_writes(self, &scope, &id, &record, "IMPORT", now)?);
                    match self.core.store.apply(writes).await {
                        Ok(_) => return Ok(Some(arn.clone())),
                        Err(carapace_store::Error::Conflict(key)) if is_usage_conflict(&key) => backoff(attempt).await,
                        Err(e) => return Err(e.into()),
                    }
                    Ok(None)
                }
            );
        };

        // Re-import over an existing imported certificate.
        if !req.tags.is_empty() {
            return Err(AcmError::InvalidParameter("You cannot apply tags when reimporting a certificate.".into()));
        }
        let (sealed_key, key_format) = seal(&arn)?;
        let material =
            Material { schema: record::SCHEMA, certificate_pem: leaf.to_pem(), chain_pem, sealed_key, key_format };
        carapace_kernel::optimistic!(AcmError, super::busy(&arn), |_| {
            let mut loaded: Loaded = self.load(owner, &arn).await?;
            let r = &mut loaded.record;
            if r.cert_type != CertificateType::Imported {
                return Err(invalid(format!(
                    "Certificate {arn} was not imported; only imported certificates can be replaced by ImportCertificate."
                )));
            }
            r.status = transition(r.status_at(now), Event::Reimport).map_err(|e| invalid(e.to_string()))?;
            r.domain_name.clone_from(&domain_name);
            r.sans.clone_from(&sans);
            r.domains.clone_from(&domains);
            r.key_algorithm = key_algorithm;
            r.x509 = Some(facts.clone());
            r.imported_ms = Some(now);
            r.issuance += 1;
            let mut writes = vec![
                record_put(&scope, &loaded, Some(loaded.version))?,
                material_put(self, &scope, &loaded.id, loaded.created_ms, &material).await?,
            ];
            writes.extend(lifecycle::new_leaf_writes(self, &scope, &loaded.id, &loaded.record, "REIMPORT", now)?);
            Ok(carapace_kernel::retry::commit(self.core.store.as_ref(), writes).await?.then(|| arn.clone()))
        })
    }

    /// ExportCertificate: the leaf, chain and the key encrypted under `passphrase`. Only
    /// for issued certificates requested with `Export=ENABLED`; marks the certificate
    /// exported.
    pub async fn export_certificate(
        &self,
        owner: &Owner,
        arn: &str,
        passphrase: &[u8],
    ) -> Result<ExportedCertificate, AcmError> {
        if passphrase.iter().any(|b| matches!(b, b'#' | b'$' | b'%')) || !passphrase.is_ascii() {
            return Err(invalid("The passphrase can contain any ASCII character except #, $ and %."));
        }
        let loaded = self.load(owner, arn).await?;
        let exportable = loaded.record.options.export || loaded.record.cert_type == CertificateType::Private;
        if !exportable {
            return Err(invalid(format!(
                "Certificate {arn} cannot be exported: only certificates requested with the Export option ENABLED can be exported."
            )));
        }
        if loaded.record.x509.is_none() {
            return Err(not_yet_issued(arn, owner));
        }
        let material = self.material(owner, &loaded.id).await?;
        let key = self.open_key(arn, &material)?;
        let passphrase = Zeroizing::new(passphrase.to_vec());
        // PBKDF2 takes a while by design: keep it off the async threads.
        let private_key = tokio::task::spawn_blocking(move || ca::encrypt_pkcs8_pem(&key, &passphrase))
            .await
            .map_err(AcmError::fault("export task"))?
            .map_err(AcmError::fault("export"))?;
        self.modify(owner, arn, |r, _| {
            r.exported = true;
            Ok(Vec::new())
        })
        .await?;
        Ok(ExportedCertificate {
            certificate: material.certificate_pem,
            certificate_chain: material.chain_pem,
            private_key,
        })
    }

    fn open_key(&self, arn: &str, material: &Material) -> Result<PrivateKey, AcmError> {
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&material.sealed_key)
            .map_err(AcmError::fault(format!("sealed key of {arn}")))?;
        let opened =
            self.core.master_key.open(&sealed, arn.as_bytes()).map_err(AcmError::fault(format!("key of {arn}")))?;
        match material.key_format {
            KeyFormat::Pkcs8Der => {
                PrivateKey::from_pkcs8_der(&opened).map_err(AcmError::fault(format!("key of {arn}")))
            }
            KeyFormat::Pem => {
                let text = std::str::from_utf8(&opened).map_err(AcmError::fault(format!("key of {arn}")))?;
                PrivateKey::from_pem(text).map_err(AcmError::fault(format!("key of {arn}")))
            }
        }
    }

    /// The certificate, chain and unencrypted private key (DER, ready for rustls) of an
    /// issued certificate, for services that terminate TLS with it (the edge). Never exposed through the API.
    /// A certificate that is not `ISSUED` now (expired, revoked) is refused: it must not be
    /// served.
    pub async fn tls_material(&self, owner: &Owner, arn: &str) -> Result<TlsMaterial, AcmError> {
        let loaded = self.load(owner, arn).await?;
        let Some(x509) = &loaded.record.x509 else {
            return Err(not_yet_issued(arn, owner));
        };
        let not_after_ms = x509.not_after_ms;
        let status = loaded.record.status_at(self.now_ms());
        if status != Status::Issued {
            return Err(AcmError::InvalidState(format!("Certificate {arn} is {}.", status.as_str())));
        }
        let material = self.material(owner, &loaded.id).await?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&material.sealed_key)
            .map_err(AcmError::fault(format!("sealed key of {arn}")))?;
        let opened =
            self.core.master_key.open(&sealed, arn.as_bytes()).map_err(AcmError::fault(format!("key of {arn}")))?;
        // rustls takes DER: the key as PKCS#8 (an imported PEM key may be PKCS#1 or SEC1),
        // the leaf then its chain.
        let key = match material.key_format {
            KeyFormat::Pkcs8Der => opened,
            KeyFormat::Pem => {
                let text = std::str::from_utf8(&opened).map_err(AcmError::fault(format!("key of {arn}")))?;
                let key = PrivateKey::from_pem(text).map_err(AcmError::fault(format!("key of {arn}")))?;
                Zeroizing::new(key.pkcs8_der().to_vec())
            }
        };
        let chain_der = pem::parse_many(format!("{}{}", material.certificate_pem, material.chain_pem))
            .map_err(AcmError::fault(format!("stored certificate of {arn}")))?
            .into_iter()
            .map(pem::Pem::into_contents)
            .collect();
        Ok(TlsMaterial { chain_der, key_pkcs8_der: key, not_after_ms })
    }
}

/// What a TLS server needs of a certificate ([`CertificateManager::tls_material`]).
pub struct TlsMaterial {
    /// The leaf then its chain (intermediate, root), DER: what rustls'
    /// `CertifiedKey::from_der` takes.
    pub chain_der: Vec<Vec<u8>>,
    /// The private key, PKCS#8 DER (wiped on drop).
    pub key_pkcs8_der: Zeroizing<Vec<u8>>,
    /// The leaf's `NotAfter`, Unix milliseconds: serve it no longer.
    pub not_after_ms: i64,
}
