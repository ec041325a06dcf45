//! IssueCertificate, GetCertificate and RevokeCertificate.

use carapace_kernel::Owner;
use carapace_kernel::ca::{
    Csr, PrivateCertificate, PrivateIssue, PrivateSigner, SigningAlgorithm, Template, random_serial,
};
use carapace_kernel::jobs::JobSpec as _;
use carapace_kernel::retry::commit;
use carapace_store::{Key, Write};

use crate::authorities::token_write;
use crate::jobs::{IssueJob, PcaJob};
use crate::records::{CaRecord, CaStatus, CaType, CertificateRecord, Issuance, Revoked, UsageMode};
use crate::{CERTIFICATE_KIND, PcaError, PrivateCas, Result, Validity, certificate_row, contended, decode, time_of};

/// How long IssueCertificate's idempotency token keeps answering the same certificate (AWS:
/// one minute).
const ISSUE_TOKEN_WINDOW_MS: i64 = 60_000;
/// How far before issuance a certificate's validity starts when the request does not say
/// (AWS Private CA backdates by an hour, for clocks that run behind).
const BACKDATE_MS: i64 = 3_600_000;
/// The longest validity of a short-lived-certificate CA's certificates.
const SHORT_LIVED_MS: i64 = 7 * 86_400_000;
/// The default template.
const DEFAULT_TEMPLATE: &str = "arn:aws:acm-pca:::template/EndEntityCertificate/V1";

/// What IssueCertificate asks for.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    /// The signing CA.
    pub ca_arn: String,
    /// The request, PEM or DER.
    pub csr: Vec<u8>,
    /// What to sign with.
    pub signing_algorithm: SigningAlgorithm,
    /// The template's ARN (`EndEntityCertificate/V1` when `None`).
    pub template_arn: Option<String>,
    /// The end of validity.
    pub validity: Validity,
    /// The start of validity (an hour ago when `None`).
    pub validity_not_before: Option<Validity>,
    /// `IdempotencyToken`.
    pub idempotency_token: Option<String>,
    /// `ReturnValues` `CERTIFICATE`: sign now and answer the certificate too.
    pub return_certificate: bool,
}

/// `RevocationReason`, with its RFC 5280 CRLReason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// `UNSPECIFIED` (0).
    Unspecified,
    /// `KEY_COMPROMISE` (1).
    KeyCompromise,
    /// `CERTIFICATE_AUTHORITY_COMPROMISE` (2).
    CaCompromise,
    /// `AFFILIATION_CHANGED` (3).
    AffiliationChanged,
    /// `SUPERSEDED` (4).
    Superseded,
    /// `CESSATION_OF_OPERATION` (5).
    CessationOfOperation,
    /// `PRIVILEGE_WITHDRAWN` (9).
    PrivilegeWithdrawn,
    /// `A_A_COMPROMISE` (10).
    AaCompromise,
}

impl RevocationReason {
    fn code(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::KeyCompromise => 1,
            Self::CaCompromise => 2,
            Self::AffiliationChanged => 3,
            Self::Superseded => 4,
            Self::CessationOfOperation => 5,
            Self::PrivilegeWithdrawn => 9,
            Self::AaCompromise => 10,
        }
    }
}

impl PrivateCas {
    /// IssueCertificate: checks the request against the CA and the template and answers the
    /// certificate's ARN (and, with `return_certificate`, the certificate, signed at once);
    /// otherwise the worker signs it. The caller may be another account that the CA's policy
    /// allows; the certificate is the CA's, kept in its owner's scope.
    pub async fn issue_certificate(&self, caller: &Owner, req: IssueRequest) -> Result<(String, Option<String>)> {
        let now = self.now();
        let template_arn = req.template_arn.clone().unwrap_or_else(|| DEFAULT_TEMPLATE.to_owned());
        let template = Template::from_arn(&template_arn).ok_or_else(|| {
            PcaError::InvalidArgs(format!(
                "Template {template_arn} is not supported: Carapace signs with AWS Private CA's base templates (EndEntity, EndEntityClientAuth, EndEntityServerAuth, CodeSigning, OCSPSigning, RootCACertificate, SubordinateCACertificate_PathLen0-3, all V1)."
            ))
        })?;
        let csr = Csr::parse(&req.csr).map_err(|e| PcaError::MalformedCsr(e.to_string()))?;
        let token_id = |ca: &str, token: &str| format!("{ca}/{}/{token}", caller.account);

        let (ca, ca_version, owner) =
            self.shared_authority(caller, &req.ca_arn, "IssueCertificate", Some(&template_arn)).await?;
        let (owner, scope) = (&owner, owner.scope());
        if let Some(token) = &req.idempotency_token
            && let (Some(arn), _) =
                self.token(&scope, "issue", &token_id(&ca.id, token), now, ISSUE_TOKEN_WINDOW_MS).await?
        {
            return Ok((arn, None));
        }
        let status = ca.status_at(now);
        let self_signing = template == Template::RootCa;
        if self_signing {
            if ca.ca_type != CaType::Root || status != CaStatus::PendingCertificate {
                return Err(PcaError::InvalidArgs(format!(
                    "Template {template_arn} issues a root certificate authority's own certificate; {} is a {} certificate authority in the {} state.",
                    req.ca_arn,
                    if ca.ca_type == CaType::Root { "root" } else { "subordinate" },
                    status.as_str()
                )));
            }
            let own = Csr::parse(ca.csr_pem.as_bytes()).map_err(|e| PcaError::fault("reading the CA's request", e))?;
            if own.public_key_der() != csr.public_key_der() {
                return Err(PcaError::InvalidArgs(format!(
                    "Template {template_arn} signs only the certificate authority's own request (GetCertificateAuthorityCsr)."
                )));
            }
        } else if status != CaStatus::Active {
            return Err(PcaError::InvalidState(format!(
                "The certificate authority {} is in the {} state; it must be ACTIVE to issue certificates.",
                req.ca_arn,
                status.as_str()
            )));
        }
        if !req.signing_algorithm.fits(ca.key_algorithm) {
            return Err(PcaError::InvalidArgs(format!(
                "The signing algorithm {} is not valid for the certificate authority's {} key.",
                req.signing_algorithm, ca.key_algorithm
            )));
        }
        if let (Template::SubordinateCa(n), Some(limit)) = (template, ca.path_len)
            && n >= limit
        {
            return Err(PcaError::InvalidArgs(format!(
                "Template {template_arn} asks for a path length of {n}, but the certificate authority's own path length is {limit}."
            )));
        }
        let not_after = req.validity.resolve(now, "Validity")?;
        let not_before = match req.validity_not_before {
            // Backdated, but never before the CA certificate's own start.
            None => (now - BACKDATE_MS).max(ca.not_before_ms.unwrap_or(i64::MIN)),
            Some(v) if matches!(v.kind, crate::ValidityType::Absolute | crate::ValidityType::EndDate) => {
                v.resolve(now, "ValidityNotBefore")?
            }
            Some(_) => {
                return Err(PcaError::InvalidArgs("ValidityNotBefore: the type must be ABSOLUTE or END_DATE.".into()));
            }
        };
        if not_after <= now || not_after <= not_before {
            return Err(PcaError::InvalidArgs(
                "Validity: the certificate would not be valid at any time from now.".into(),
            ));
        }
        if let Some(ca_end) = ca.not_after_ms
            && !self_signing
            && (not_after > ca_end || not_before < ca.not_before_ms.unwrap_or(i64::MIN))
        {
            return Err(PcaError::InvalidArgs(
                "Validity: the certificate's validity must lie within the certificate authority's own.".into(),
            ));
        }
        if ca.usage_mode == UsageMode::ShortLivedCertificate && not_after - not_before > SHORT_LIVED_MS {
            return Err(PcaError::InvalidArgs(
                "Validity: a SHORT_LIVED_CERTIFICATE certificate authority issues certificates of at most 7 days."
                    .into(),
            ));
        }

        let serial = hex::encode(random_serial().map_err(|e| PcaError::fault("drawing a serial number", e))?);
        let arn = format!("{}/certificate/{serial}", ca.arn);
        let mut record = CertificateRecord {
            ca_id: ca.id.clone(),
            serial: serial.clone(),
            template_arn,
            not_before_ms: not_before,
            not_after_ms: not_after,
            signing_algorithm: req.signing_algorithm,
            issuance: Issuance::Pending { csr: hex::encode(csr.der()) },
            revoked: None,
        };
        let mut writes = Vec::with_capacity(3);
        let mut pem = None;
        if req.return_certificate {
            let signed = self.sign(&ca, ca_version, &record, &csr, template)?;
            record.issuance = Issuance::Issued { pem: signed.pem.clone(), issued_ms: now };
            pem = Some(signed.pem);
        } else {
            let job = PcaJob::Issue(IssueJob { scope: scope.clone(), ca_id: ca.id.clone(), serial: serial.clone() });
            writes.push(Write::Enqueue(job.to_new_job(now).map_err(|e| PcaError::fault("enqueuing an issuance", e))?));
        }
        writes.push(Write::Put { row: certificate_row(owner, &record, now)?, expect: None });
        if let Some(token) = &req.idempotency_token {
            let (_, expired) =
                self.token(&scope, "issue", &token_id(&ca.id, token), now, ISSUE_TOKEN_WINDOW_MS).await?;
            writes.push(token_write(&scope, "issue", &token_id(&ca.id, token), &arn, now, expired));
        }
        match self.core.store.apply(writes).await {
            Ok(_) => {}
            // Another request with the same token got there first: its answer is ours.
            Err(carapace_store::Error::Conflict(_)) if req.idempotency_token.is_some() => {
                let token = req.idempotency_token.as_deref().unwrap_or_default();
                let (answer, _) =
                    self.token(&scope, "issue", &token_id(&ca.id, token), now, ISSUE_TOKEN_WINDOW_MS).await?;
                return answer.map(|arn| (arn, None)).ok_or_else(contended);
            }
            Err(e) => return Err(e.into()),
        }
        self.core.wake_workers();
        Ok((arn, pem))
    }

    /// GetCertificate: the certificate and the chain above it (the CA's certificate first).
    pub async fn get_certificate(
        &self,
        owner: &Owner,
        ca_arn: &str,
        certificate_arn: &str,
    ) -> Result<(String, Option<String>)> {
        let serial = certificate_arn
            .strip_prefix(ca_arn)
            .and_then(|rest| rest.strip_prefix("/certificate/"))
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| PcaError::InvalidArn(format!("Invalid certificate ARN: {certificate_arn}")))?;
        let (ca, _, ca_owner) = self.shared_authority(owner, ca_arn, "GetCertificate", None).await?;
        let key = Key::new(CERTIFICATE_KIND, ca_owner.scope(), format!("{}/{serial}", ca.id));
        let row = self
            .core
            .store
            .get(&key)
            .await?
            .ok_or_else(|| PcaError::NotFound(format!("Could not find certificate {certificate_arn}.")))?;
        let record: CertificateRecord = decode(&row)?;
        match record.issuance {
            Issuance::Pending { .. } => Err(PcaError::RequestInProgress(format!(
                "The request to issue certificate {certificate_arn} is still in progress."
            ))),
            Issuance::Failed { reason } => Err(PcaError::RequestFailed(reason)),
            Issuance::Issued { pem, .. } => {
                let chain = match (&ca.certificate_pem, &ca.chain_pem) {
                    // The root CA's own certificate, signed before it had one: no chain.
                    (None, _) => None,
                    (Some(ca_pem), None) => Some(ca_pem.clone()),
                    (Some(ca_pem), Some(chain)) => Some(format!("{}\n{}", ca_pem.trim_end(), chain.trim_start())),
                };
                Ok((pem, chain))
            }
        }
    }

    /// RevokeCertificate: the certificate goes into the CA's next CRL.
    pub async fn revoke_certificate(
        &self,
        owner: &Owner,
        ca_arn: &str,
        serial: &str,
        reason: RevocationReason,
    ) -> Result<()> {
        let normalised: String = serial
            .chars()
            .filter(|c| *c != ':')
            .collect::<String>()
            .to_ascii_lowercase()
            .trim_start_matches('0')
            .to_owned();
        if normalised.is_empty() || !normalised.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PcaError::InvalidRequest(format!(
                "CertificateSerial {serial} is not a hexadecimal serial number."
            )));
        }
        let now = self.now();
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let (ca, _) = self.authority(owner, ca_arn).await?;
            match ca.status_at(now) {
                CaStatus::Active | CaStatus::Disabled | CaStatus::Expired => {}
                status => {
                    return Err(PcaError::InvalidState(format!(
                        "The certificate authority {ca_arn} is in the {} state and cannot revoke certificates.",
                        status.as_str()
                    )));
                }
            }
            let key = Key::new(CERTIFICATE_KIND, owner.scope(), format!("{}/{normalised}", ca.id));
            let row = self.core.store.get(&key).await?.ok_or_else(|| {
                PcaError::NotFound(format!("Could not find a certificate with serial {serial} issued by {ca_arn}."))
            })?;
            let mut record: CertificateRecord = decode(&row)?;
            match record.issuance {
                Issuance::Issued { .. } => {}
                Issuance::Pending { .. } => {
                    return Err(PcaError::RequestInProgress(format!(
                        "The certificate {serial} is still being issued."
                    )));
                }
                Issuance::Failed { .. } => {
                    return Err(PcaError::NotFound(format!("The certificate {serial} was never issued.")));
                }
            }
            if record.revoked.is_some() {
                return Err(PcaError::RequestAlreadyProcessed(format!("The certificate {serial} is already revoked.")));
            }
            record.revoked = Some(Revoked { at_ms: now, reason: reason.code() });
            let mut writes =
                vec![Write::Put { row: certificate_row(owner, &record, row.created_ms)?, expect: Some(row.version) }];
            writes.extend(crate::crl::publish_write(owner, &ca, now)?);
            Ok(commit(self.core.store.as_ref(), writes).await?.then_some(()))
        })?;
        self.core.wake_workers();
        Ok(())
    }

    /// Signs a pending certificate (the worker's half of IssueCertificate). A CA that can no
    /// longer sign fails the certificate with the reason, which GetCertificate then answers.
    pub(crate) async fn sign_pending(&self, scope: &str, ca_id: &str, serial: &str) -> Result<()> {
        let owner = Owner::from_scope(scope).ok_or_else(|| PcaError::fault("an issuance job", "malformed scope"))?;
        let key = Key::new(CERTIFICATE_KIND, scope, format!("{ca_id}/{serial}"));
        let now = self.now();
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let Some(row) = self.core.store.get(&key).await? else { return Ok(Some(())) };
            let mut record: CertificateRecord = decode(&row)?;
            let Issuance::Pending { csr } = &record.issuance else { return Ok(Some(())) };
            let csr = hex::decode(csr).map_err(|e| PcaError::fault("a stored request", e))?;
            let ca_row = self.core.store.get(&Key::new(crate::CA_KIND, scope, ca_id)).await?;
            let ca_version = ca_row.as_ref().map_or(0, |r| r.version);
            let outcome = match ca_row.as_ref().map(decode::<CaRecord>).transpose()? {
                None => Err("The certificate authority no longer exists.".to_owned()),
                Some(ca) => match ca.status_at(now) {
                    CaStatus::Active | CaStatus::PendingCertificate => {
                        let csr = Csr::parse(&csr).map_err(|e| PcaError::fault("a stored request", e))?;
                        let template = Template::from_arn(&record.template_arn)
                            .ok_or_else(|| PcaError::fault("a stored template", "unknown template"))?;
                        Ok(self.sign(&ca, ca_version, &record, &csr, template)?)
                    }
                    status => Err(format!("The certificate authority is {} and cannot sign.", status.as_str())),
                },
            };
            record.issuance = match outcome {
                Ok(signed) => Issuance::Issued { pem: signed.pem, issued_ms: now },
                Err(reason) => Issuance::Failed { reason },
            };
            let put = Write::Put { row: certificate_row(&owner, &record, row.created_ms)?, expect: Some(row.version) };
            Ok(commit(self.core.store.as_ref(), vec![put]).await?.then_some(()))
        })
    }

    /// Signs `record`'s request with `ca`, read at row version `ca_version`.
    fn sign(
        &self,
        ca: &CaRecord,
        ca_version: u64,
        record: &CertificateRecord,
        csr: &Csr,
        template: Template,
    ) -> Result<PrivateCertificate> {
        let signer = self.signer(ca, ca_version, record.signing_algorithm)?;
        let issue = PrivateIssue {
            template,
            not_before: time_of(record.not_before_ms),
            not_after: time_of(record.not_after_ms),
            serial: Some(hex::decode(&record.serial).map_err(|e| PcaError::fault("a serial", e))?),
            crl_url: if template == Template::RootCa {
                None
            } else {
                crate::crl::distribution_point(ca, &self.core.settings.base_url)
            },
            ocsp_url: if template == Template::RootCa {
                None
            } else {
                crate::ocsp::responder_url(ca, &self.core.settings.base_url)
            },
        };
        signer.issue(csr, &issue).map_err(|e| PcaError::fault("signing a certificate", e))
    }
}

/// Loaded signers kept at once; past it the cache starts again (a process uses few CAs).
const SIGNERS_KEPT: usize = 256;

/// Signers by CA ARN, CA row version and signing algorithm.
pub(crate) type SignerCache =
    std::sync::Mutex<std::collections::HashMap<(String, u64, SigningAlgorithm), std::sync::Arc<PrivateSigner>>>;

impl PrivateCas {
    /// `ca`'s signer for `signing`: its key unsealed, its certificate read and checked, kept
    /// while the CA's row stays at `ca_version` (any change to the CA — a new certificate, a
    /// status — makes a new version, so a kept signer never outlives what it was made from).
    pub(crate) fn signer(
        &self,
        ca: &CaRecord,
        ca_version: u64,
        signing: SigningAlgorithm,
    ) -> Result<std::sync::Arc<PrivateSigner>> {
        let key = (ca.arn.clone(), ca_version, signing);
        let cached = self.signers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&key).cloned();
        if let Some(signer) = cached {
            return Ok(signer);
        }
        let ca_der = match &ca.certificate_pem {
            Some(pem) => Some(
                carapace_kernel::ca::parse_certificate(pem)
                    .map_err(|e| PcaError::fault("reading a stored CA certificate", e))?
                    .der,
            ),
            None => None,
        };
        let signer = std::sync::Arc::new(
            PrivateSigner::new(&self.key(ca)?, signing, ca_der.as_deref())
                .map_err(|e| PcaError::fault("loading a CA to sign", e))?,
        );
        let mut signers = self.signers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if signers.len() >= SIGNERS_KEPT {
            signers.clear();
        }
        signers.insert(key, signer.clone());
        Ok(signer)
    }
}

/// A private certificate signed for ACM ([`PrivateCas::sign_for_acm`]).
#[derive(Debug, Clone)]
pub struct AcmIssued {
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// The chain above it, PEM (the CA's certificate first).
    pub chain_pem: String,
    /// The certificate's serial, lower-case hex (what RevokeCertificate takes).
    pub serial: String,
}

impl PrivateCas {
    /// Signs a certificate for ACM's RequestCertificate (and its renewals) with the CA named
    /// by `ca_arn`: `requester`'s own, or another account's in the same Region whose policy
    /// lets it issue with `EndEntityCertificate/V1` and get certificates. The CA signs with its own signing algorithm and
    /// `EndEntityCertificate/V1`, valid until `not_after_ms`, within the CA's own validity.
    pub async fn sign_for_acm(
        &self,
        requester: &Owner,
        ca_arn: &str,
        csr_pem: &str,
        not_after_ms: i64,
    ) -> Result<AcmIssued> {
        let template = Some(DEFAULT_TEMPLATE);
        let (ca, _, _) = self.shared_authority(requester, ca_arn, "IssueCertificate", template).await?;
        let not_after = match ca.not_after_ms {
            Some(ca_end) => not_after_ms.min(ca_end),
            None => not_after_ms,
        };
        let request = IssueRequest {
            ca_arn: ca_arn.to_owned(),
            csr: csr_pem.as_bytes().to_vec(),
            signing_algorithm: ca.signing_algorithm,
            template_arn: None,
            validity: Validity { value: not_after.div_euclid(1000), kind: crate::ValidityType::Absolute },
            validity_not_before: None,
            idempotency_token: None,
            return_certificate: true,
        };
        let (arn, pem) = self.issue_certificate(requester, request).await?;
        let (certificate_pem, chain) = self.get_certificate(requester, ca_arn, &arn).await?;
        debug_assert_eq!(pem.as_deref(), Some(certificate_pem.as_str()));
        Ok(AcmIssued {
            certificate_pem,
            chain_pem: chain.unwrap_or_default(),
            serial: arn.rsplit('/').next().unwrap_or_default().to_owned(),
        })
    }
}
