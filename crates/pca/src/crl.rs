//! CRLs: checking a `CrlConfiguration`, the distribution point issued certificates name, and
//! publishing — the CA signs a complete CRL of its revoked certificates and writes it where
//! AWS Private CA would put it in S3, `<bucket>/<CustomPath or crl>/<CA id>.crl` (DER), here
//! under [`crate::PcaSettings::buckets_dir`] and served at `<base_url>/s3/<bucket>/<key>`.
//!
//! A CRL is published when a CA gets its certificate, when a certificate is revoked and when
//! the configuration changes — each through a durable job written with the change — and
//! again halfway through each CRL's validity, so a published CRL never lapses while its CA
//! lives.

use std::path::PathBuf;

use carapace_kernel::Owner;
use carapace_kernel::ca::{PrivateSigner, RevokedSerial};
use carapace_kernel::jobs::JobSpec as _;
use carapace_kernel::retry::commit;
use carapace_store::{Key, Write};

use crate::jobs::{CrlJob, PcaJob};
use crate::records::{CaRecord, CaStatus, CertificateRecord, CrlConfig, Revocation};
use crate::{CA_KIND, CERTIFICATE_KIND, PcaError, PrivateCas, Result, ca_row, contended, decode, time_of};

/// A CRL's validity when `ExpirationInDays` is not given.
const DEFAULT_EXPIRATION_DAYS: i32 = 7;
const DAY_MS: i64 = 86_400_000;

/// Checks a revocation configuration before it is stored. Partitioned CRLs are not in
/// [`Revocation`]: the wire layer refuses them by name.
pub(crate) fn check_configuration(revocation: &Revocation) -> Result<()> {
    if let Some(cname) = revocation.ocsp.as_ref().and_then(|o| o.custom_cname.as_deref()).filter(|c| !c.is_empty())
        && (cname.contains("://") || !cname.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)))
    {
        return Err(PcaError::InvalidArgs(format!(
            "RevocationConfiguration.OcspConfiguration: OcspCustomCname {cname} must be a host name without a protocol."
        )));
    }
    let Some(crl) = revocation.crl() else { return Ok(()) };
    let bucket = crl.bucket.as_deref().ok_or_else(|| {
        PcaError::InvalidArgs(
            "RevocationConfiguration.CrlConfiguration: S3BucketName is required when Enabled is true.".into(),
        )
    })?;
    // S3's bucket naming rules; they also keep the name one safe path segment.
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..");
    if !valid_bucket {
        return Err(PcaError::InvalidArgs(format!(
            "RevocationConfiguration.CrlConfiguration: {bucket} is not a valid S3 bucket name."
        )));
    }
    if let Some(path) = crl.custom_path.as_deref().filter(|p| !p.is_empty())
        && !path.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
    {
        return Err(PcaError::InvalidArgs(format!(
            "RevocationConfiguration.CrlConfiguration: CustomPath {path} is not a valid object key prefix."
        )));
    }
    if let Some(cname) = crl.custom_cname.as_deref().filter(|c| !c.is_empty())
        && (cname.contains("://") || !cname.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b)))
    {
        return Err(PcaError::InvalidArgs(format!(
            "RevocationConfiguration.CrlConfiguration: CustomCname {cname} must be a host name without a protocol."
        )));
    }
    Ok(())
}

/// Checks a bucket name against S3's naming rules, which also keep it one safe path segment.
pub(crate) fn check_bucket(bucket: &str, member: &str) -> Result<()> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.as_bytes()[0].is_ascii_alphanumeric()
        && bucket.as_bytes()[bucket.len() - 1].is_ascii_alphanumeric()
        && !bucket.contains("..");
    if valid {
        Ok(())
    } else {
        Err(PcaError::InvalidArgs(format!("{member}: {bucket} is not a valid S3 bucket name.")))
    }
}

/// The CRL's object key in its bucket.
fn object_key(crl: &CrlConfig, ca_id: &str) -> String {
    let folder = crl.custom_path.as_deref().filter(|p| !p.is_empty()).unwrap_or("crl");
    format!("{folder}/{ca_id}.crl")
}

/// The CRL distribution point certificates signed by `ca` name: `http://<CustomCname>/<key>`
/// when a CNAME is configured (AWS's form), else where Carapace serves the bucket. `None`
/// when the CA publishes no CRL or omits the extension.
pub(crate) fn distribution_point(ca: &CaRecord, base_url: &str) -> Option<String> {
    let crl = ca.revocation.crl().filter(|c| !c.omit_extension)?;
    let key = object_key(crl, &ca.id);
    Some(match crl.custom_cname.as_deref().filter(|c| !c.is_empty()) {
        Some(cname) => format!("http://{cname}/{key}"),
        None => format!("{}/s3/{}/{key}", base_url.trim_end_matches('/'), crl.bucket.as_deref().unwrap_or_default()),
    })
}

/// The job that publishes `ca`'s CRL now, if it publishes one.
pub(crate) fn publish_write(owner: &Owner, ca: &CaRecord, now: i64) -> Result<Option<Write>> {
    if ca.revocation.crl().is_none() || ca.certificate_pem.is_none() {
        return Ok(None);
    }
    let job = PcaJob::PublishCrl(CrlJob {
        scope: owner.scope(),
        ca_id: ca.id.clone(),
        nonce: uuid::Uuid::new_v4().to_string(),
    });
    Ok(Some(Write::Enqueue(job.to_new_job(now).map_err(|e| PcaError::fault("enqueuing a CRL", e))?)))
}

impl PrivateCas {
    /// Publishes the CRL of CA `ca_id`: numbers it (the CA row's counter, so numbers grow
    /// across nodes), signs it with every revoked certificate, writes it, and schedules the
    /// next one halfway through its validity. Nothing when the CA no longer publishes.
    pub(crate) async fn publish_crl(&self, scope: &str, ca_id: &str) -> Result<Option<PathBuf>> {
        let _one_at_a_time = self.publishing.lock().await;
        let owner = Owner::from_scope(scope).ok_or_else(|| PcaError::fault("a CRL job", "malformed scope"))?;
        let now = self.now();
        let key = Key::new(CA_KIND, scope, ca_id);
        let record = carapace_kernel::optimistic!(PcaError, contended(), |_attempt| {
            let Some(row) = self.core.store.get(&key).await? else { return Ok(Some(None)) };
            let mut record: CaRecord = decode(&row)?;
            if record.status == CaStatus::Deleted
                || record.revocation.crl().is_none()
                || record.certificate_pem.is_none()
            {
                return Ok(Some(None));
            }
            record.crl_number += 1;
            let put = Write::Put { row: ca_row(&owner, &record)?, expect: Some(row.version) };
            Ok(commit(self.core.store.as_ref(), vec![put]).await?.then_some(Some(record)))
        })?;
        let Some(record) = record else { return Ok(None) };
        let crl = record.revocation.crl().cloned().unwrap_or_default();
        let days = crl.expiration_days.unwrap_or(DEFAULT_EXPIRATION_DAYS).max(1);
        let revoked = self.revoked(scope, ca_id).await?;
        let signer = PrivateSigner::new(
            &self.key(&record)?,
            record.signing_algorithm,
            Some(&pem_der(record.certificate_pem.as_deref().unwrap_or_default())?),
        )
        .map_err(|e| PcaError::fault("loading a CA to sign its CRL", e))?;
        let der = signer
            .sign_crl(&revoked, record.crl_number, time_of(now), time_of(now + i64::from(days) * DAY_MS))
            .map_err(|e| PcaError::fault("signing a CRL", e))?;
        let bucket = crl.bucket.as_deref().unwrap_or_default();
        let path = self.settings.buckets_dir.join(bucket).join(object_key(&crl, ca_id));
        write_atomically(&path, &der).await.map_err(|e| PcaError::fault("writing a CRL", e))?;
        // The next CRL, halfway through this one's validity.
        let next = PcaJob::PublishCrl(CrlJob {
            scope: scope.to_owned(),
            ca_id: ca_id.to_owned(),
            nonce: format!("refresh-{}", record.crl_number),
        });
        let run_at = now + i64::from(days) * DAY_MS / 2;
        let enqueue = next.to_new_job(run_at).map_err(|e| PcaError::fault("enqueuing a CRL", e))?;
        self.core.store.apply(vec![Write::Enqueue(enqueue)]).await?;
        tracing::debug!(ca = %record.arn, number = record.crl_number, revoked = revoked.len(), path = %path.display(), "published a CRL");
        Ok(Some(path))
    }

    /// Every revoked certificate of CA `ca_id`.
    async fn revoked(&self, scope: &str, ca_id: &str) -> Result<Vec<RevokedSerial>> {
        let prefix = format!("{ca_id}/");
        let rows =
            carapace_kernel::rows::scan_all(self.core.store.as_ref(), CERTIFICATE_KIND, scope, Some(&prefix)).await?;
        let mut out = Vec::new();
        for row in &rows {
            let record: CertificateRecord = decode(row)?;
            if let Some(revoked) = record.revoked {
                out.push(RevokedSerial {
                    serial: hex::decode(&record.serial).map_err(|e| PcaError::fault("a stored serial", e))?,
                    revoked_at: time_of(revoked.at_ms),
                    reason_code: Some(revoked.reason),
                });
            }
        }
        Ok(out)
    }
}

/// The DER of the first certificate in `pem`.
fn pem_der(pem_text: &str) -> Result<Vec<u8>> {
    carapace_kernel::ca::parse_certificate(pem_text)
        .map(|c| c.der)
        .map_err(|e| PcaError::fault("reading a stored CA certificate", e))
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a part.
pub(crate) async fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().ok_or_else(|| std::io::Error::other("no parent directory"))?;
    tokio::fs::create_dir_all(dir).await?;
    let tmp = dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}
