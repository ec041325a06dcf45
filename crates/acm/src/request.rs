//! RequestCertificate: checks, quotas, idempotency, and one atomic write that stores the
//! pending certificate and enqueues its jobs. No key is generated here: the request returns
//! in a few milliseconds and the issuance worker does the slow part.
//!
//! ## Idempotency tokens
//!
//! A token is remembered for one hour per account and region (row kind
//! [`IDEMPOTENCY_KIND`]). Within that hour every request carrying it returns the first
//! request's ARN — **even if the other parameters changed**, which is what ACM does (it
//! documents that the token identifies the request, and a changed request with a reused
//! token does not create a second certificate). Carapace logs the mismatch at `info`. After
//! the hour the token starts a new certificate. Two concurrent first uses race on inserting
//! the token row; the loser returns the winner's ARN.

use carapace_store::{Key, Row, Write};
use serde::{Deserialize, Serialize};

use super::jobs::{AcmJob, CertificateJob, IssueJob};
use super::names::{self, CertificateArn, Tag};
use super::quota::{backoff, is_usage_conflict, usage_put};
use super::record::{
    self, CertificateRecord, CertificateType, DomainValidation, KeyPairOrigin, ManagedBy, Options, ValidationMethod,
};
use super::state::{DomainStatus, Status};
use super::{AcmError, CertificateManager, IDEMPOTENCY_WINDOW_MS, Owner};
use carapace_kernel::ca::KeyAlgorithm;

/// Row kind of idempotency tokens (`<scope>`, id `request/<token>`).
pub const IDEMPOTENCY_KIND: &str = "acm.idempotency";

/// A certificate request, as the handler decoded it.
#[derive(Debug, Clone, Default)]
pub struct NewCertificate {
    /// The subject common name.
    pub domain_name: String,
    /// Additional names.
    pub subject_alternative_names: Vec<String>,
    /// EMAIL when absent (ACM's default).
    pub validation_method: Option<ValidationMethod>,
    /// `(domain, validation domain)` pairs.
    pub domain_validation_options: Vec<(String, String)>,
    /// The idempotency token.
    pub idempotency_token: Option<String>,
    /// Export (default disabled) and transparency logging (default enabled).
    pub export: Option<bool>,
    /// Transparency logging preference.
    pub transparency_logging: Option<bool>,
    /// Key algorithm; RSA_2048 when absent.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// The managing service.
    pub managed_by: Option<ManagedBy>,
    /// A private CA ARN (not supported).
    pub certificate_authority_arn: Option<String>,
    /// `RootHierarchyType`: an Amazon N2 certificate, from Carapace's N2 hierarchy.
    pub root_hierarchy: Option<RootHierarchy>,
    /// `CertificateUsage`: the EKU profile of an Amazon N2 certificate.
    pub certificate_usage: Option<CertificateUsage>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Held by another service for its users (Lightsail): hidden from ACM's listings, stored
    /// under the id given, and written in one batch with the holder's own rows.
    pub held_by: Option<Holder>,
}

/// A certificate another service requests for its users, and what that service stores with it.
#[derive(Debug, Clone)]
pub struct Holder {
    /// The holding service.
    pub service: record::HeldBy,
    /// The certificate id to use (the holder's rows name it).
    pub id: String,
    /// The holder's rows, written in the same batch as the certificate: a conflict on one of
    /// them fails the request with [`AcmError::Store`] naming that row, and writes nothing.
    pub writes: Vec<Write>,
}

#[derive(Serialize, Deserialize)]
struct TokenRow {
    arn: String,
    /// SHA-256 of the request's parameters, to log a changed request with a reused token.
    fingerprint: String,
    at_ms: i64,
}

/// The root hierarchy of an Amazon N2 certificate (`RootHierarchyType`): Carapace's second
/// hierarchy ([`carapace_kernel::ca::Hierarchy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RootHierarchy {
    /// `N2_AMAZON_MANAGED`: chains to an Amazon N2 root; at most (and by default) 395 days.
    #[serde(rename = "N2_AMAZON_MANAGED")]
    N2,
    /// `N2_SFG2_AMAZON_MANAGED`: chains to an N2 root cross-signed by Starfield G2; at most
    /// (and by default) 98 days.
    #[serde(rename = "N2_SFG2_AMAZON_MANAGED")]
    N2CrossSigned,
}

impl RootHierarchy {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::N2 => "N2_AMAZON_MANAGED",
            Self::N2CrossSigned => "N2_SFG2_AMAZON_MANAGED",
        }
    }

    /// The validity of its certificates, which is both the default and the maximum
    /// (RequestCertificate, `RootHierarchyType`).
    pub fn validity_days(self) -> u32 {
        match self {
            Self::N2 => 395,
            Self::N2CrossSigned => 98,
        }
    }

    /// The CA hierarchy that signs its certificates.
    pub fn ca_hierarchy(self) -> carapace_kernel::ca::Hierarchy {
        match self {
            Self::N2 => carapace_kernel::ca::Hierarchy::N2,
            Self::N2CrossSigned => carapace_kernel::ca::Hierarchy::N2CrossSigned,
        }
    }
}

/// The EKU profile of an Amazon N2 certificate (`CertificateUsage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CertificateUsage {
    /// `CLIENT_AND_SERVER_AUTH`: serverAuth and clientAuth (the default).
    ClientAndServerAuth,
    /// `CLIENT_AUTH_ONLY`: clientAuth alone; `N2_AMAZON_MANAGED` only.
    ClientAuthOnly,
}

impl CertificateUsage {
    /// The leaf profile the CA signs with.
    pub fn leaf_usage(self) -> carapace_kernel::ca::LeafUsage {
        match self {
            Self::ClientAndServerAuth => carapace_kernel::ca::LeafUsage::ClientAndServerAuth,
            Self::ClientAuthOnly => carapace_kernel::ca::LeafUsage::ClientAuthOnly,
        }
    }
}

/// The key algorithms RequestCertificate accepts (the others are for imports).
pub const REQUESTABLE: [KeyAlgorithm; 3] =
    [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcPrime256v1, KeyAlgorithm::EcSecp384r1];

impl CertificateManager {
    /// RequestCertificate: returns the new (or, for a reused idempotency token, the
    /// earlier) certificate ARN.
    pub async fn request_certificate(&self, owner: &Owner, req: NewCertificate) -> Result<String, AcmError> {
        let settings = &self.core.settings;
        let acm = &self.settings;
        let certificate_usage = self.check_root_hierarchy(&req)?;
        // A private certificate: signed by the AWS Private CA named, without validation.
        let private_ca = match &req.certificate_authority_arn {
            None => None,
            Some(arn) => {
                let is_ca_arn = arn.split(':').nth(2) == Some("acm-pca")
                    && arn.rsplit_once(':').is_some_and(|(_, r)| r.starts_with("certificate-authority/"));
                if !is_ca_arn {
                    return Err(AcmError::InvalidParameter(format!(
                        "CertificateAuthorityArn {arn} is not the ARN of an AWS Private CA certificate authority."
                    )));
                }
                if self.private_cas.is_none() {
                    return Err(AcmError::internal("this manager was built without AWS Private CA"));
                }
                Some(arn.clone())
            }
        };
        let key_algorithm = req.key_algorithm.unwrap_or(KeyAlgorithm::Rsa2048);
        if !REQUESTABLE.contains(&key_algorithm) {
            return Err(AcmError::InvalidParameter(format!(
                "KeyAlgorithm {key_algorithm} is not supported for requested certificates; use RSA_2048, EC_prime256v1 or EC_secp384r1 (all seven algorithms are accepted by ImportCertificate)."
            )));
        }
        let method = req.validation_method.unwrap_or(ValidationMethod::Email);
        if method == ValidationMethod::Http && req.managed_by != Some(ManagedBy::Cloudfront) {
            return Err(AcmError::InvalidParameter(
                "HTTP validation is only available for certificates managed by CloudFront (ManagedBy=CLOUDFRONT)."
                    .into(),
            ));
        }
        let sans = names::subject_alternative_names(
            &req.domain_name,
            &req.subject_alternative_names,
            acm.domains_per_certificate,
        )?;
        let validation_domains = validation_domains(&sans, &req.domain_validation_options)?;
        names::check_tags(&req.tags)?;
        let mut tags = Vec::new();
        names::merge_tags(&mut tags, &req.tags)?;

        let store = self.core.store.as_ref();
        let scope = owner.scope();
        let now = self.now_ms();
        let fingerprint = fingerprint(&req, &sans, key_algorithm, method);

        // The certificate as it will be stored; written below once the quota and token allow.
        let id = req.held_by.as_ref().map_or_else(|| uuid::Uuid::new_v4().to_string(), |h| h.id.clone());
        let arn = CertificateArn::format(owner, &id);
        let secret = self.secret().await?;
        let domains = sans
            .iter()
            .zip(validation_domains)
            .map(|(domain, validation_domain)| {
                let mut dv = DomainValidation {
                    domain_name: domain.clone(),
                    validation_domain: validation_domain.clone(),
                    status: DomainStatus::PendingValidation,
                    method: Some(method),
                    resource_record: None,
                    http_redirect: None,
                    validation_emails: Vec::new(),
                };
                if private_ca.is_some() {
                    // A private CA validates nothing: its domains succeed when it signs.
                    dv.method = None;
                    return dv;
                }
                match method {
                    ValidationMethod::Dns => dv.resource_record = Some(secret.dns_record(&owner.account, domain)),
                    ValidationMethod::Http => {
                        dv.http_redirect = Some(secret.http_redirect(&owner.account, domain, &settings.base_url));
                    }
                    ValidationMethod::Email => {
                        dv.validation_emails =
                            names::validation_emails(&names::default_email_domain(&validation_domain));
                    }
                }
                dv
            })
            .collect();
        let deadline = now + acm.validation_window_ms;
        let record = CertificateRecord {
            schema: record::SCHEMA,
            arn: arn.clone(),
            domain_name: sans[0].clone(),
            sans,
            status: Status::PendingValidation,
            cert_type: if private_ca.is_some() { CertificateType::Private } else { CertificateType::AmazonIssued },
            key_algorithm,
            key_pair_origin: KeyPairOrigin::AwsManaged,
            validation_method: if private_ca.is_some() { None } else { Some(method) },
            domains,
            options: Options {
                transparency_logging: req.transparency_logging.unwrap_or(true),
                export: req.export.unwrap_or(false),
            },
            managed_by: req.managed_by,
            created_ms: now,
            issued_ms: None,
            imported_ms: None,
            revoked_ms: None,
            revocation_reason: None,
            failure_reason: None,
            validation_deadline_ms: Some(deadline),
            x509: None,
            tags,
            in_use_by: Vec::new(),
            exported: false,
            renewal: None,
            method_update: None,
            held_by: req.held_by.as_ref().map(|h| h.service),
            issuance: 0,
            root_hierarchy: req.root_hierarchy,
            certificate_usage,
            certificate_authority_arn: private_ca.clone(),
        };
        let body = record.encode()?;

        let token_key =
            req.idempotency_token.as_ref().map(|t| Key::new(IDEMPOTENCY_KIND, &scope, format!("request/{t}")));
        let _turn = self.usage_locks.lock(&scope).await;
        carapace_kernel::optimistic!(
            AcmError,
            AcmError::Conflict("Too many concurrent requests for this account; try again.".into()),
            |attempt| {
                // Idempotency: a live token returns its ARN before anything else is checked.
                let mut token_version = None;
                if let Some(key) = &token_key
                    && let Some(row) = store.get(key).await?
                {
                    let token: TokenRow = carapace_kernel::stored::decode("idempotency token", &row.body)?;
                    if now < token.at_ms + IDEMPOTENCY_WINDOW_MS {
                        if token.fingerprint != fingerprint {
                            tracing::info!(arn = %token.arn, "idempotency token reused with different parameters; returning the first request's certificate");
                        }
                        return Ok(Some(token.arn));
                    }
                    token_version = Some(row.version);
                }
                let mut usage = self.usage(&scope).await?;
                self.check_quotas(&usage.usage, now)?;
                usage.usage.add(now);

                let mut writes = vec![
                    Write::Put {
                        row: Row {
                            key: Key::new(record::KIND, &scope, &id),
                            version: 0,
                            created_ms: now,
                            body: body.clone(),
                        },
                        expect: None,
                    },
                    usage_put(&scope, &usage)?,
                ];
                if private_ca.is_some() {
                    // Signed at once by the private CA: nothing to validate, nothing to time out.
                    let job = AcmJob::Issue(IssueJob {
                        scope: scope.clone(),
                        id: id.clone(),
                        issuance: 1,
                        approve_all: false,
                    });
                    writes.push(job.enqueue(now)?);
                } else if settings.dev {
                    // Emulator mode: every domain is approved after a short delay, then issued.
                    let job = AcmJob::Issue(IssueJob {
                        scope: scope.clone(),
                        id: id.clone(),
                        issuance: 1,
                        approve_all: true,
                    });
                    writes.push(job.enqueue(now + acm.dev_auto_approve_ms as i64)?);
                } else {
                    // Real validation: check records (DNS, HTTP) or send approval mail (EMAIL).
                    writes.extend(super::validate::initial_jobs(&scope, &id, method, &record.sans, now)?);
                }
                if private_ca.is_none() {
                    writes.push(
                        AcmJob::TimeOut(CertificateJob { scope: scope.clone(), id: id.clone() }).enqueue(deadline)?,
                    );
                }
                if let Some(holder) = &req.held_by {
                    writes.extend(holder.writes.iter().cloned());
                }
                if let Some(key) = &token_key {
                    let token = carapace_kernel::stored::encode(
                        "idempotency token",
                        &TokenRow { arn: arn.clone(), fingerprint: fingerprint.clone(), at_ms: now },
                    )?;
                    writes.push(Write::Put {
                        row: Row { key: key.clone(), version: 0, created_ms: now, body: token },
                        expect: token_version,
                    });
                }
                match store.apply(writes).await {
                    Ok(_) => {
                        self.core.wake_workers();
                        return Ok(Some(arn.clone()));
                    }
                    // Another request took a quota slot or the token first: look again.
                    Err(carapace_store::Error::Conflict(conflict))
                        if is_usage_conflict(&conflict) || token_key.as_ref() == Some(&conflict) =>
                    {
                        backoff(attempt).await;
                    }
                    Err(e) => return Err(e.into()),
                }
                Ok(None)
            }
        )
    }
}

impl CertificateManager {
    /// `RootHierarchyType` and `CertificateUsage` as RequestCertificate's documentation (the
    /// botocore model's) gives them: `CertificateUsage` only with an N2 `RootHierarchyType`,
    /// `CLIENT_AUTH_ONLY` only with `N2_AMAZON_MANAGED`, no `RootHierarchyType` together with
    /// `CertificateAuthorityArn`, and N2 certificates validated by DNS; each a
    /// `ValidationException`. Returns the certificate's usage: `CLIENT_AND_SERVER_AUTH` when an
    /// N2 request omits it (the documented default), none for a standard certificate.
    fn check_root_hierarchy(&self, req: &NewCertificate) -> Result<Option<CertificateUsage>, AcmError> {
        let Some(hierarchy) = req.root_hierarchy else {
            return match req.certificate_usage {
                Some(_) => Err(AcmError::Validation(
                    "CertificateUsage can be specified only when RootHierarchyType is N2_AMAZON_MANAGED or N2_SFG2_AMAZON_MANAGED."
                        .into(),
                )),
                None => Ok(None),
            };
        };
        let name = hierarchy.as_str();
        if req.certificate_authority_arn.is_some() {
            return Err(AcmError::Validation(
                "RootHierarchyType cannot be specified together with CertificateAuthorityArn.".into(),
            ));
        }
        let usage = req.certificate_usage.unwrap_or(CertificateUsage::ClientAndServerAuth);
        if hierarchy == RootHierarchy::N2CrossSigned && usage == CertificateUsage::ClientAuthOnly {
            return Err(AcmError::Validation(
                "CertificateUsage CLIENT_AUTH_ONLY is valid only with RootHierarchyType N2_AMAZON_MANAGED.".into(),
            ));
        }
        if req.validation_method.unwrap_or(ValidationMethod::Email) != ValidationMethod::Dns {
            return Err(AcmError::Validation(format!(
                "An Amazon N2 certificate (RootHierarchyType {name}) must use ValidationMethod DNS."
            )));
        }
        if !self.core.ca.issues_in(hierarchy.ca_hierarchy()) {
            // Only an imported CA, whose root key stays with its owner, lacks the cross-signed
            // N2 root: the main root cannot sign it.
            return Err(AcmError::Validation(format!(
                "RootHierarchyType {name} is not available: this Carapace's CA was imported without its root key, which must cross-sign the N2 root."
            )));
        }
        Ok(Some(usage))
    }
}

/// The validation domain of each SAN: the one given in DomainValidationOptions, else the
/// domain itself (approval mail then goes to the domain without a leading `*.`/`www.`).
fn validation_domains(sans: &[String], options: &[(String, String)]) -> Result<Vec<String>, AcmError> {
    for (domain, _) in options {
        let domain = names::canonical(domain);
        if !sans.contains(&domain) {
            return Err(AcmError::InvalidDomainValidationOptions(format!(
                "DomainValidationOptions names {domain}, which is not one of the certificate's domain names."
            )));
        }
    }
    sans.iter()
        .map(|san| match options.iter().find(|(d, _)| names::canonical(d) == *san) {
            Some((_, vd)) => names::check_validation_domain(san, vd),
            None => Ok(san.clone()),
        })
        .collect()
}

fn fingerprint(req: &NewCertificate, sans: &[String], key: KeyAlgorithm, method: ValidationMethod) -> String {
    let text = format!(
        "{sans:?}|{key:?}|{method:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        req.domain_validation_options,
        req.export,
        req.transparency_logging,
        req.managed_by,
        req.tags,
        req.root_hierarchy,
        req.certificate_usage
    );
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()))
}
