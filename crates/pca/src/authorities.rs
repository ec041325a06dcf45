//! CreateCertificateAuthority, DescribeCertificateAuthority, ListCertificateAuthorities,
//! UpdateCertificateAuthority, DeleteCertificateAuthority, RestoreCertificateAuthority,
//! GetCertificateAuthorityCsr, GetCertificateAuthorityCertificate and
//! ImportCertificateAuthorityCertificate.

use base64::Engine as _;
use carapace_kernel::Owner;
use carapace_kernel::ca::{
    CaCertificateProblem, KeyAlgorithm, SigningAlgorithm, ca_csr, check_ca_certificate, generate_key,
};
use carapace_kernel::retry::commit;
use carapace_store::{Cursor, Key, Order, Row, Scan, Write};

use crate::records::{CaRecord, CaStatus, CaSubject, CaType, Revocation, UsageMode};
use crate::{
    AuthorityView, CA_KIND, MAX_AUTHORITIES, Page, PcaError, PrivateCas, QUOTA_KIND, Result, TOKEN_KIND, ca_arn,
    ca_row, contended, decode, time_of,
};

/// How long CreateCertificateAuthority's idempotency token keeps answering the same CA
/// (AWS: five minutes).
const CREATE_TOKEN_WINDOW_MS: i64 = 5 * 60_000;
/// The default restoration window of a deleted CA, in days.
const DEFAULT_RESTORE_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

/// What CreateCertificateAuthority asks for.
#[derive(Debug, Clone)]
pub struct NewAuthority {
    /// Root or subordinate.
    pub ca_type: CaType,
    /// The key's algorithm.
    pub key_algorithm: KeyAlgorithm,
    /// What the CA signs with.
    pub signing_algorithm: SigningAlgorithm,
    /// The subject.
    pub subject: CaSubject,
    /// Revocation configuration.
    pub revocation: Revocation,
    /// Usage mode.
    pub usage_mode: UsageMode,
    /// `KeyStorageSecurityStandard`, as asked (default `FIPS_140_2_LEVEL_3_OR_HIGHER`).
    pub key_storage: String,
    /// Tags.
    pub tags: Vec<(String, Option<String>)>,
    /// `IdempotencyToken`.
    pub idempotency_token: Option<String>,
}

/// `Validity.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityType {
    /// `END_DATE`: `YYYYMMDDHHMMSS` (UTC).
    EndDate,
    /// `ABSOLUTE`: Unix seconds.
    Absolute,
    /// `DAYS` from now.
    Days,
    /// `MONTHS` from now (calendar months).
    Months,
    /// `YEARS` from now (calendar years).
    Years,
}

/// A `Validity`: a point in time, or a span from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// The value.
    pub value: i64,
    /// How to read it.
    pub kind: ValidityType,
}

impl Validity {
    /// The time this validity names, counted from `now_ms` for the relative kinds.
    pub fn resolve(self, now_ms: i64, member: &str) -> Result<i64> {
        let invalid = || PcaError::InvalidArgs(format!("{member}: {} is not a valid value.", self.value));
        let now = time_of(now_ms);
        let at = match self.kind {
            ValidityType::Absolute => time::OffsetDateTime::from_unix_timestamp(self.value).map_err(|_| invalid())?,
            ValidityType::EndDate => {
                let digits = format!("{:014}", self.value);
                let part = |r: std::ops::Range<usize>| digits.get(r).and_then(|s| s.parse::<u32>().ok());
                let (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) =
                    (part(0..4), part(4..6), part(6..8), part(8..10), part(10..12), part(12..14))
                else {
                    return Err(invalid());
                };
                let month = u8::try_from(mo).ok().and_then(|m| time::Month::try_from(m).ok()).ok_or_else(invalid)?;
                let date = time::Date::from_calendar_date(i32::try_from(y).map_err(|_| invalid())?, month, d as u8)
                    .map_err(|_| invalid())?;
                let clock = time::Time::from_hms(h as u8, mi as u8, s as u8).map_err(|_| invalid())?;
                time::PrimitiveDateTime::new(date, clock).assume_utc()
            }
            // `Value` is any positive long: out-of-range spans are invalid, never an overflow.
            ValidityType::Days => self
                .value
                .checked_mul(86_400)
                .and_then(|secs| now.checked_add(time::Duration::seconds(secs)))
                .ok_or_else(invalid)?,
            ValidityType::Months => add_months(now, self.value).ok_or_else(invalid)?,
            ValidityType::Years => {
                add_months(now, self.value.checked_mul(12).ok_or_else(invalid)?).ok_or_else(invalid)?
            }
        };
        i64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| invalid())
    }
}

/// `t` plus `months` calendar months, the day clamped to the target month's length.
fn add_months(t: time::OffsetDateTime, months: i64) -> Option<time::OffsetDateTime> {
    let index = (i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1).checked_add(months)?;
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    let month = time::Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?;
    let day = t.day().min(month.length(year));
    t.replace_day(1).ok()?.replace_year(year).ok()?.replace_month(month).ok()?.replace_day(day).ok()
}

impl PrivateCas {
    /// CreateCertificateAuthority: generates the key and the request; the CA waits for its
    /// certificate (`PENDING_CERTIFICATE`). Key generation happens within the request, so
    /// the `CREATING` state AWS shows for a moment is never observed.
    pub async fn create_authority(&self, owner: &Owner, new: NewAuthority) -> Result<String> {
        if !new.signing_algorithm.fits(new.key_algorithm) {
            return Err(PcaError::InvalidArgs(format!(
                "The signing algorithm {} is not valid for the key algorithm {}.",
                new.signing_algorithm, new.key_algorithm
            )));
        }
        let subject = new.subject.to_pki()?;
        crate::tags::check_tags(&new.tags)?;
        crate::crl::check_configuration(&new.revocation)?;
        let now = self.now();
        let scope = owner.scope();
        let token = new.idempotency_token.as_deref();
        if let Some(token) = token
            && let (Some(arn), _) = self.token(&scope, "create", token, now, CREATE_TOKEN_WINDOW_MS).await?
        {
            return Ok(arn);
        }

        let key_algorithm = new.key_algorithm;
        let key = tokio::task::spawn_blocking(move || generate_key(key_algorithm))
            .await
            .map_err(|e| PcaError::fault("generating a CA key", e))?
            .map_err(|e| PcaError::fault("generating a CA key", e))?;
        let csr_pem = ca_csr(&key, new.signing_algorithm, &subject)
            .map_err(|e| PcaError::fault("writing the CA's request", e))?;
        let id = uuid::Uuid::new_v4().to_string();
        let arn = ca_arn(owner, &id);
        let sealed = self
            .core
            .master_key
            .seal(key.pkcs8_der(), arn.as_bytes())
            .map_err(|e| PcaError::fault("sealing a CA key", e))?;
        let record = CaRecord {
            id,
            arn: arn.clone(),
            account: owner.account.clone(),
            ca_type: new.ca_type,
            status: CaStatus::PendingCertificate,
            status_before_delete: None,
            created_ms: now,
            last_state_change_ms: now,
            key_algorithm: new.key_algorithm,
            signing_algorithm: new.signing_algorithm,
            subject: new.subject,
            key_sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
            csr_pem,
            certificate_pem: None,
            chain_pem: None,
            serial: None,
            not_before_ms: None,
            not_after_ms: None,
            path_len: None,
            revocation: new.revocation,
            usage_mode: new.usage_mode,
            key_storage: new.key_storage,
            restorable_until_ms: None,
            tags: new.tags,
            crl_number: 0,
            permissions: Vec::new(),
            policy: None,
        };
        let row = ca_row(owner, &record)?;
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            // A create with the same token that won a race answers for both.
            let mut token_version = None;
            if let Some(token) = token {
                match self.token(&scope, "create", token, now, CREATE_TOKEN_WINDOW_MS).await? {
                    (Some(winner), _) => return Ok(Some(winner)),
                    (None, version) => token_version = version,
                }
            }
            // The quota guard is written at the version read, so two creates cannot both
            // take the last place.
            let guard_key = Key::new(QUOTA_KIND, &scope, "authorities");
            let guard = self.core.store.get(&guard_key).await?;
            let live = self.all_authorities(&scope).await?.iter().filter(|ca| !ca.is_gone(now)).count();
            if live >= MAX_AUTHORITIES {
                return Err(PcaError::LimitExceeded(format!(
                    "You have exceeded the quota of {MAX_AUTHORITIES} certificate authorities in this Region."
                )));
            }
            let mut writes = vec![
                Write::Put {
                    row: Row { key: guard_key, version: 0, created_ms: now, body: live.to_string().into_bytes() },
                    expect: guard.map(|g| g.version),
                },
                Write::Put { row: row.clone(), expect: None },
            ];
            if let Some(token) = token {
                writes.push(token_write(&scope, "create", token, &arn, now, token_version));
            }
            Ok(commit(self.core.store.as_ref(), writes).await?.then(|| arn.clone()))
        })
    }

    /// DescribeCertificateAuthority (the caller's CA, or one shared with it).
    pub async fn describe_authority(&self, owner: &Owner, arn: &str) -> Result<AuthorityView> {
        let (record, _, _) = self.shared_authority(owner, arn, "DescribeCertificateAuthority", None).await?;
        let status = record.status_at(self.now());
        Ok(AuthorityView { record, status })
    }

    /// ListCertificateAuthorities: the caller's CAs, oldest first, `max` (1 to 1000, at most
    /// 100 returned, as AWS does) a page.
    pub async fn list_authorities(
        &self,
        owner: &Owner,
        max: Option<i32>,
        next_token: Option<&str>,
    ) -> Result<Page<AuthorityView>> {
        let limit = max.map_or(100, |m| usize::try_from(m).unwrap_or(100).clamp(1, 100));
        let after = match next_token {
            None => None,
            Some(token) => Some(decode_cursor(token)?),
        };
        let now = self.now();
        let scope = owner.scope();
        let rows = self
            .core
            .store
            .scan(Scan {
                kind: CA_KIND,
                scope: &scope,
                id_prefix: None,
                after,
                order: Order::Ascending,
                limit: limit + 1,
            })
            .await?;
        let more = rows.len() > limit;
        let rows = &rows[..rows.len().min(limit)];
        let next_token = more.then(|| rows.last().map(encode_cursor)).flatten();
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let record: CaRecord = decode(row)?;
            if !record.is_gone(now) {
                let status = record.status_at(now);
                items.push(AuthorityView { record, status });
            }
        }
        Ok(Page { items, next_token })
    }

    /// GetCertificateAuthorityCsr: the CA's request, PEM.
    pub async fn authority_csr(&self, owner: &Owner, arn: &str) -> Result<String> {
        let (record, _) = self.authority(owner, arn).await?;
        if record.status == CaStatus::Deleted {
            return Err(PcaError::InvalidState(format!("The certificate authority {arn} is deleted.")));
        }
        Ok(record.csr_pem)
    }

    /// GetCertificateAuthorityCertificate: the CA's certificate and, for a subordinate, its
    /// chain.
    pub async fn authority_certificate(&self, owner: &Owner, arn: &str) -> Result<(String, Option<String>)> {
        let (record, _, _) = self.shared_authority(owner, arn, "GetCertificateAuthorityCertificate", None).await?;
        let status = record.status_at(self.now());
        match (record.status, record.certificate_pem) {
            (CaStatus::Deleted, _) | (_, None) => Err(PcaError::InvalidState(format!(
                "The certificate authority {arn} is in the {} state and has no certificate.",
                status.as_str()
            ))),
            (_, Some(certificate)) => Ok((certificate, record.chain_pem)),
        }
    }

    /// ImportCertificateAuthorityCertificate: installs the CA's certificate after checking it
    /// as AWS does (see [`check_ca_certificate`]); the CA becomes `ACTIVE`, or keeps its
    /// status when a certificate replaces another. A root's certificate must be self-signed;
    /// a subordinate's must come with its chain.
    pub async fn import_authority_certificate(
        &self,
        owner: &Owner,
        arn: &str,
        certificate: &[u8],
        chain: Option<&[u8]>,
    ) -> Result<()> {
        let text = |bytes: &[u8], what: &str| {
            std::str::from_utf8(bytes)
                .map(str::to_owned)
                .map_err(|_| PcaError::MalformedCertificate(format!("The {what} is not PEM text.")))
        };
        let certificate = text(certificate, "certificate")?;
        let chain = chain.map(|c| text(c, "certificate chain")).transpose()?;
        let now = self.now();
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let (mut record, version) = self.authority(owner, arn).await?;
            match record.status_at(now) {
                CaStatus::PendingCertificate | CaStatus::Active | CaStatus::Disabled | CaStatus::Expired => {}
                CaStatus::Deleted => {
                    return Err(PcaError::InvalidState(format!("The certificate authority {arn} is deleted.")));
                }
            }
            if record.ca_type == CaType::Root && chain.is_some() {
                return Err(PcaError::InvalidRequest(
                    "A root certificate authority's certificate is self-signed and takes no certificate chain.".into(),
                ));
            }
            if record.ca_type == CaType::Subordinate && chain.is_none() {
                return Err(PcaError::InvalidRequest(
                    "A subordinate certificate authority's certificate needs its certificate chain.".into(),
                ));
            }
            let key = self.key(&record)?;
            let der =
                check_ca_certificate(&key, &certificate, chain.as_deref(), time_of(now)).map_err(|e| match e {
                    CaCertificateProblem::Malformed(why) => PcaError::MalformedCertificate(why),
                    CaCertificateProblem::Mismatch => PcaError::CertificateMismatch(e.to_string()),
                    CaCertificateProblem::Invalid(why) => PcaError::InvalidRequest(why),
                })?;
            let parsed = carapace_kernel::ca::parse_certificate_der(&der)
                .map_err(|e| PcaError::fault("reading an installed CA certificate", e))?;
            record.certificate_pem = Some(parsed.to_pem());
            record.chain_pem = chain.clone();
            record.serial = Some(parsed.serial_hex.clone());
            record.not_before_ms = Some(ms(parsed.not_before));
            record.not_after_ms = Some(ms(parsed.not_after));
            record.path_len = parsed.path_len_constraint.and_then(|n| u8::try_from(n).ok());
            if record.status == CaStatus::PendingCertificate {
                record.status = CaStatus::Active;
                record.last_state_change_ms = now;
            }
            let mut writes = vec![Write::Put { row: ca_row(owner, &record)?, expect: Some(version) }];
            writes.extend(crate::crl::publish_write(owner, &record, now)?);
            writes.extend(self.issuer_writes(owner, &record.id, &der, now).await?);
            Ok(commit(self.core.store.as_ref(), writes).await?.then_some(()))
        })?;
        self.core.wake_workers();
        Ok(())
    }

    /// UpdateCertificateAuthority: `ACTIVE` / `DISABLED`, and the revocation configuration.
    pub async fn update_authority(
        &self,
        owner: &Owner,
        arn: &str,
        status: Option<CaStatus>,
        revocation: Option<Revocation>,
    ) -> Result<()> {
        if let Some(revocation) = &revocation {
            crate::crl::check_configuration(revocation)?;
        }
        let now = self.now();
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let (mut record, version) = self.authority(owner, arn).await?;
            let current = record.status_at(now);
            if let Some(status) = status {
                match (current, status) {
                    (CaStatus::Active | CaStatus::Disabled, CaStatus::Active | CaStatus::Disabled) => {
                        if record.status != status {
                            record.status = status;
                            record.last_state_change_ms = now;
                        }
                    }
                    (_, CaStatus::Active | CaStatus::Disabled) => {
                        return Err(PcaError::InvalidState(format!(
                            "The certificate authority {arn} is in the {} state; only an ACTIVE or DISABLED certificate authority can change its status.",
                            current.as_str()
                        )));
                    }
                    (_, other) => {
                        return Err(PcaError::InvalidArgs(format!(
                            "Status {} cannot be set; use ACTIVE or DISABLED.",
                            other.as_str()
                        )));
                    }
                }
            } else if current == CaStatus::Deleted {
                return Err(PcaError::InvalidState(format!("The certificate authority {arn} is deleted.")));
            }
            let mut writes = Vec::with_capacity(2);
            if let Some(revocation) = &revocation {
                record.revocation = revocation.clone();
                writes.extend(crate::crl::publish_write(owner, &record, now)?);
            }
            writes.push(Write::Put { row: ca_row(owner, &record)?, expect: Some(version) });
            Ok(commit(self.core.store.as_ref(), writes).await?.then_some(()))
        })?;
        self.core.wake_workers();
        Ok(())
    }

    /// DeleteCertificateAuthority. An `ACTIVE` CA must be disabled first. A CA that never had
    /// a certificate is removed at once; any other is `DELETED` and restorable for
    /// `days` (7 to 30, default 30).
    pub async fn delete_authority(&self, owner: &Owner, arn: &str, days: Option<i32>) -> Result<()> {
        let now = self.now();
        let days = days.map_or(DEFAULT_RESTORE_DAYS, i64::from);
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let (mut record, version) = self.authority(owner, arn).await?;
            let write = match record.status_at(now) {
                CaStatus::Active => {
                    return Err(PcaError::InvalidState(format!(
                        "The certificate authority {arn} is ACTIVE. Disable it before deleting it."
                    )));
                }
                CaStatus::Deleted => {
                    return Err(PcaError::InvalidState(format!("The certificate authority {arn} is already deleted.")));
                }
                CaStatus::PendingCertificate => {
                    Write::Delete { key: Key::new(CA_KIND, owner.scope(), &record.id), expect: version }
                }
                status @ (CaStatus::Disabled | CaStatus::Expired) => {
                    record.status_before_delete =
                        Some(if status == CaStatus::Expired { record.status } else { status });
                    record.status = CaStatus::Deleted;
                    record.last_state_change_ms = now;
                    record.restorable_until_ms = Some(now + days * DAY_MS);
                    Write::Put { row: ca_row(owner, &record)?, expect: Some(version) }
                }
            };
            Ok(commit(self.core.store.as_ref(), vec![write]).await?.then_some(()))
        })
    }

    /// RestoreCertificateAuthority: a `DELETED` CA within its window returns to the status it
    /// had.
    pub async fn restore_authority(&self, owner: &Owner, arn: &str) -> Result<()> {
        let now = self.now();
        carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let (mut record, version) = self.authority(owner, arn).await?;
            if record.status != CaStatus::Deleted {
                return Err(PcaError::InvalidState(format!(
                    "The certificate authority {arn} is not deleted ({}).",
                    record.status_at(now).as_str()
                )));
            }
            record.status = record.status_before_delete.take().unwrap_or(CaStatus::Disabled);
            record.restorable_until_ms = None;
            record.last_state_change_ms = now;
            let row = ca_row(owner, &record)?;
            Ok(commit(self.core.store.as_ref(), vec![Write::Put { row, expect: Some(version) }]).await?.then_some(()))
        })
    }

    /// Every CA of `scope`.
    async fn all_authorities(&self, scope: &str) -> Result<Vec<CaRecord>> {
        let rows = carapace_kernel::rows::scan_all(self.core.store.as_ref(), CA_KIND, scope, None).await?;
        rows.iter().map(decode).collect()
    }

    /// The ARN an idempotency token of `operation` answered with within `window_ms`, if any,
    /// and the version of its row (to replace an expired one).
    pub(crate) async fn token(
        &self,
        scope: &str,
        operation: &str,
        token: &str,
        now: i64,
        window_ms: i64,
    ) -> Result<(Option<String>, Option<u64>)> {
        let row = self.core.store.get(&Key::new(TOKEN_KIND, scope, format!("{operation}/{token}"))).await?;
        let Some(row) = row else { return Ok((None, None)) };
        let body = String::from_utf8_lossy(&row.body);
        let answered = body.split_once(':').and_then(|(at, arn)| Some((at.parse::<i64>().ok()?, arn)));
        Ok(match answered {
            Some((at, arn)) if now - at < window_ms => (Some(arn.to_owned()), None),
            _ => (None, Some(row.version)),
        })
    }
}

/// The write that records `token`'s answer, replacing the expired row at `expect` if any.
/// (A replaced row keeps its creation time, so the window counts from the row's body.)
pub(crate) fn token_write(
    scope: &str,
    operation: &str,
    token: &str,
    arn: &str,
    now: i64,
    expect: Option<u64>,
) -> Write {
    let key = Key::new(TOKEN_KIND, scope, format!("{operation}/{token}"));
    let body = format!("{now}:{arn}").into_bytes();
    Write::Put { row: Row { key, version: 0, created_ms: now, body }, expect }
}

fn ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn encode_cursor(row: &Row) -> String {
    hex::encode(format!("{}:{}", row.created_ms, row.key.id))
}

fn decode_cursor(token: &str) -> Result<Cursor> {
    let text = hex::decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or(PcaError::InvalidNextToken)?;
    let (created, id) = text.split_once(':').ok_or(PcaError::InvalidNextToken)?;
    Ok(Cursor { created_ms: created.parse().map_err(|_| PcaError::InvalidNextToken)?, id: id.to_owned() })
}
