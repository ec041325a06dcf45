//! CreateCertificateAuthorityAuditReport and DescribeCertificateAuthorityAuditReport.
//!
//! A report lists every certificate the CA signed, with its revocation, in AWS's audit report
//! format (<https://docs.aws.amazon.com/privateca/latest/userguide/PcaAuditReport.html>): JSON
//! (an array of objects) or CSV with the same fields. It is written to
//! `audit-report/<CA id>/<report id>.<json|csv>` in the named bucket within the call, so the
//! report is `SUCCESS` as soon as it can be described.

use carapace_kernel::Owner;
use carapace_store::{Key, Row, Write};
use serde::{Deserialize, Serialize};

use crate::crl::{check_bucket, write_atomically};
use crate::records::{CertificateRecord, Issuance};
use crate::{CERTIFICATE_KIND, PcaError, PrivateCas, Result, decode, encode, time_of};

/// Row kind of audit reports (id `<CA id>/<report id>`).
pub const REPORT_KIND: &str = "pca.audit-report";

/// `AuditReportResponseFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ReportFormat {
    /// A JSON array.
    Json,
    /// Comma-separated values with a header line.
    Csv,
}

/// A written report, as DescribeCertificateAuthorityAuditReport shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditReport {
    /// The report's id.
    pub id: String,
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// When it was written, Unix ms.
    pub created_ms: i64,
}

/// One line of a report, with AWS's field names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Line {
    aws_account_id: String,
    certificate_arn: String,
    serial: String,
    subject: String,
    not_before: String,
    not_after: String,
    issued_at: String,
    revoked_at: String,
    revocation_reason: String,
    template_arn: String,
}

const FIELDS: [&str; 10] = [
    "awsAccountId",
    "certificateArn",
    "serial",
    "subject",
    "notBefore",
    "notAfter",
    "issuedAt",
    "revokedAt",
    "revocationReason",
    "templateArn",
];

impl PrivateCas {
    /// CreateCertificateAuthorityAuditReport: writes the report and answers its id and key.
    pub async fn create_audit_report(
        &self,
        owner: &Owner,
        ca_arn: &str,
        bucket: &str,
        format: ReportFormat,
    ) -> Result<AuditReport> {
        check_bucket(bucket, "S3BucketName")?;
        let (ca, _) = self.authority(owner, ca_arn).await?;
        if ca.status == crate::records::CaStatus::Deleted {
            return Err(PcaError::InvalidState(format!("The certificate authority {ca_arn} is deleted.")));
        }
        let prefix = format!("{}/", ca.id);
        let rows =
            carapace_kernel::rows::scan_all(self.core.store.as_ref(), CERTIFICATE_KIND, &owner.scope(), Some(&prefix))
                .await?;
        let mut lines = Vec::with_capacity(rows.len());
        for row in &rows {
            let record: CertificateRecord = decode(row)?;
            let Issuance::Issued { pem, issued_ms } = &record.issuance else { continue };
            let parsed = carapace_kernel::ca::parse_certificate(pem)
                .map_err(|e| PcaError::fault("reading an issued certificate", e))?;
            lines.push(Line {
                aws_account_id: owner.account.clone(),
                certificate_arn: format!("{}/certificate/{}", ca.arn, record.serial),
                serial: parsed.serial_hex,
                subject: parsed.subject,
                not_before: report_time(record.not_before_ms),
                not_after: report_time(record.not_after_ms),
                issued_at: report_time(*issued_ms),
                revoked_at: record.revoked.map(|r| report_time(r.at_ms)).unwrap_or_default(),
                revocation_reason: record.revoked.map(|r| reason_name(r.reason).to_owned()).unwrap_or_default(),
                template_arn: record.template_arn.clone(),
            });
        }
        let (extension, body) = match format {
            ReportFormat::Json => {
                ("json", serde_json::to_vec(&lines).map_err(|e| PcaError::fault("writing an audit report", e))?)
            }
            ReportFormat::Csv => ("csv", csv(&lines).into_bytes()),
        };
        let now = self.now();
        let report = AuditReport {
            id: uuid::Uuid::new_v4().to_string(),
            bucket: bucket.to_owned(),
            key: String::new(),
            created_ms: now,
        };
        let report = AuditReport { key: format!("audit-report/{}/{}.{extension}", ca.id, report.id), ..report };
        let path = self.settings.buckets_dir.join(bucket).join(&report.key);
        write_atomically(&path, &body).await.map_err(|e| PcaError::fault("writing an audit report", e))?;
        let row = Row {
            key: Key::new(REPORT_KIND, owner.scope(), format!("{}/{}", ca.id, report.id)),
            version: 0,
            created_ms: now,
            body: encode(&report)?,
        };
        self.core.store.apply(vec![Write::Put { row, expect: None }]).await?;
        Ok(report)
    }

    /// DescribeCertificateAuthorityAuditReport.
    pub async fn describe_audit_report(&self, owner: &Owner, ca_arn: &str, report_id: &str) -> Result<AuditReport> {
        let (ca, _) = self.authority(owner, ca_arn).await?;
        let row = self
            .core
            .store
            .get(&Key::new(REPORT_KIND, owner.scope(), format!("{}/{report_id}", ca.id)))
            .await?
            .ok_or_else(|| PcaError::NotFound(format!("Could not find audit report {report_id}.")))?;
        decode(&row)
    }
}

/// AWS's report time format, e.g. `2020-02-26T18:39:57+0000`.
fn report_time(ms: i64) -> String {
    let t = time_of(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+0000",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The API name of a CRLReason code.
fn reason_name(code: u8) -> &'static str {
    match code {
        1 => "KEY_COMPROMISE",
        2 => "CERTIFICATE_AUTHORITY_COMPROMISE",
        3 => "AFFILIATION_CHANGED",
        4 => "SUPERSEDED",
        5 => "CESSATION_OF_OPERATION",
        9 => "PRIVILEGE_WITHDRAWN",
        10 => "A_A_COMPROMISE",
        _ => "UNSPECIFIED",
    }
}

/// The lines as CSV (RFC 4180: fields with commas, quotes or line breaks are quoted).
fn csv(lines: &[Line]) -> String {
    let field = |s: &str| {
        if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
    };
    let mut out = FIELDS.join(",");
    out.push_str("\r\n");
    for l in lines {
        let fields = [
            &l.aws_account_id,
            &l.certificate_arn,
            &l.serial,
            &l.subject,
            &l.not_before,
            &l.not_after,
            &l.issued_at,
            &l.revoked_at,
            &l.revocation_reason,
            &l.template_arn,
        ];
        out.push_str(&fields.iter().map(|f| field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}
