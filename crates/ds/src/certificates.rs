//! Registered certificates: `RegisterCertificate`, `DescribeCertificate`,
//! `ListCertificates` and `DeregisterCertificate` (what a certificate must be is in
//! [`super::certificate`]).

use carapace_store::{Cursor, Order, Scan, Write};

use super::machine::{CertificateEvent, CertificateState, LdapsStatus};
use super::records::{CertificateKind, CertificateRecord, DirectoryRecord};
use super::{
    CERTIFICATE_KIND, CertificateView, Directories, DsError, Page, Result, certificate, certificate_row, decode,
    decode_cursor, directory_row, encode_cursor, index, page_size, random_hex, require_active, retry,
};

/// What to register.
#[derive(Debug, Clone)]
pub struct NewCertificate {
    /// `CertificateData` (PEM).
    pub data: String,
    /// What for.
    pub kind: CertificateKind,
    /// `ClientCertAuthSettings.OCSPUrl`.
    pub ocsp_url: Option<String>,
}

impl Directories {
    /// `RegisterCertificate`; returns the certificate id.
    pub async fn register_certificate(&self, scope: &str, directory_id: &str, new: &NewCertificate) -> Result<String> {
        retry(|| self.try_register(scope, directory_id, new)).await
    }

    async fn try_register(&self, scope: &str, directory_id: &str, new: &NewCertificate) -> Result<String> {
        let now = self.now();
        let (directory, version) = self.directory(scope, directory_id).await?;
        if !new.kind.supported_on(directory.kind) {
            return Err(DsError::Unsupported(format!(
                "{} certificates are not supported for {} directories.",
                new.kind.as_str(),
                directory.kind.as_str()
            )));
        }
        require_active(&directory, now)?;
        let inspected = certificate::inspect(&new.data, now)?;
        // Rows of finished deregistrations are swept here, in the same batch, the next time
        // a certificate is added: nothing else reads them.
        let mut live = Vec::new();
        let mut swept = Vec::new();
        for row in self.certificate_rows(scope, directory_id).await? {
            let record: CertificateRecord = decode(&row)?;
            let state = record.state_at(now);
            if state.is_live() {
                live.push(CertificateView { record, state });
            } else if state == CertificateState::Deregistered {
                swept.push(Write::Delete { key: row.key, expect: row.version });
            }
        }
        if live.iter().any(|c| c.record.kind == new.kind && c.record.fingerprint == inspected.fingerprint) {
            return Err(DsError::CertificateAlreadyExists(format!(
                "The certificate is already registered with directory {directory_id}."
            )));
        }
        let limit = new.kind.limit();
        if live.iter().filter(|c| c.record.kind == new.kind).count() >= limit {
            return Err(DsError::CertificateLimitExceeded(format!(
                "Directory {directory_id} already has the maximum of {limit} {} certificates.",
                new.kind.as_str()
            )));
        }
        let record = CertificateRecord {
            id: format!("c-{}", random_hex(5)?),
            directory_id: directory_id.to_owned(),
            kind: new.kind,
            pem: inspected.pem,
            common_name: inspected.common_name,
            not_after_ms: inspected.not_after_ms,
            fingerprint: inspected.fingerprint,
            ocsp_url: new.ocsp_url.clone(),
            registered_ms: now,
            state: CertificateState::Registering,
            state_since_ms: now,
        };
        // Rewriting the directory at the version read serialises this against other
        // registrations (limits, duplicates) and against LDAPS / deregistration changes.
        let mut writes = vec![
            Write::Put { row: directory_row(scope, &directory, now)?, expect: Some(version) },
            Write::Put { row: certificate_row(scope, &record, now)?, expect: None },
        ];
        writes.extend(swept);
        self.core.store.apply(writes).await?;
        Ok(record.id)
    }

    /// `DescribeCertificate`.
    pub async fn describe_certificate(
        &self,
        scope: &str,
        directory_id: &str,
        certificate_id: &str,
    ) -> Result<CertificateView> {
        let now = self.now();
        let (directory, _) = self.directory(scope, directory_id).await?;
        require_certificates_supported(&directory)?;
        let (view, _) = self.certificate(scope, directory_id, certificate_id, now).await?;
        Ok(view)
    }

    /// `ListCertificates`: live and deregistering certificates, oldest first.
    pub async fn list_certificates(
        &self,
        scope: &str,
        directory_id: &str,
        limit: Option<usize>,
        token: Option<&str>,
    ) -> Result<Page<CertificateView>> {
        let now = self.now();
        let (directory, _) = self.directory(scope, directory_id).await?;
        require_certificates_supported(&directory)?;
        let limit = page_size(limit);
        let mut after = token.map(decode_cursor).transpose()?;
        let mut items: Vec<(Cursor, CertificateView)> = Vec::new();
        // The directory's certificates only, from the index (an id prefix would be a filter
        // on every certificate of the account). Deregistered rows are skipped, so a page may
        // need more than one scan.
        let clauses = [index::directory_clause(directory_id)];
        loop {
            let scan = Scan {
                kind: CERTIFICATE_KIND,
                scope,
                id_prefix: None,
                after: after.clone(),
                order: Order::Ascending,
                limit: limit + 1,
            };
            let page = self.core.store.scan_filtered(scan, &clauses, 10 * (limit + 1)).await?;
            let resume = page.resume;
            let exhausted = resume.is_none();
            for row in page.rows {
                let cursor = Cursor { created_ms: row.created_ms, id: row.key.id.clone() };
                let record: CertificateRecord = decode(&row)?;
                let state = record.state_at(now);
                if state != CertificateState::Deregistered {
                    items.push((cursor, CertificateView { record, state }));
                }
            }
            if exhausted || items.len() > limit {
                break;
            }
            after = resume;
        }
        let more = items.len() > limit;
        items.truncate(limit);
        let next_token = if more { items.last().map(|(c, _)| encode_cursor(c)) } else { None };
        Ok(Page { items: items.into_iter().map(|(_, v)| v).collect(), next_token })
    }

    /// `DeregisterCertificate`.
    pub async fn deregister_certificate(&self, scope: &str, directory_id: &str, certificate_id: &str) -> Result<()> {
        retry(|| async {
            let now = self.now();
            let (directory, version) = self.directory(scope, directory_id).await?;
            require_certificates_supported(&directory)?;
            require_active(&directory, now)?;
            let (target, cert_version) = self.certificate(scope, directory_id, certificate_id, now).await?;
            let next = target
                .state
                .on(CertificateEvent::DeregisterRequested)
                .map_err(|_| DsError::CertificateNotFound(certificate_id.to_owned()))?;
            let in_use = match target.record.kind {
                CertificateKind::ClientLdaps => {
                    matches!(directory.ldaps.status, LdapsStatus::Enabled | LdapsStatus::Enabling)
                }
                CertificateKind::ClientCertAuth => directory.any_client_auth_enabled(),
            };
            if in_use {
                let others = self
                    .live_certificates(scope, directory_id, now)
                    .await?
                    .into_iter()
                    .filter(|c| c.record.kind == target.record.kind && c.record.id != certificate_id)
                    .count();
                if others == 0 {
                    let what = match target.record.kind {
                        CertificateKind::ClientLdaps => "LDAPS",
                        CertificateKind::ClientCertAuth => "client certificate authentication",
                    };
                    return Err(DsError::CertificateInUse(format!(
                        "Certificate {certificate_id} is the last {} certificate and {what} is enabled for directory {directory_id}; disable {what} first.",
                        target.record.kind.as_str()
                    )));
                }
            }
            let mut record = target.record;
            record.state = next;
            record.state_since_ms = now;
            self.core
                .store
                .apply(vec![
                    Write::Put { row: directory_row(scope, &directory, now)?, expect: Some(version) },
                    Write::Put { row: certificate_row(scope, &record, now)?, expect: Some(cert_version) },
                ])
                .await?;
            Ok(())
        })
        .await
    }
}

fn require_certificates_supported(directory: &DirectoryRecord) -> Result<()> {
    if [CertificateKind::ClientLdaps, CertificateKind::ClientCertAuth].iter().any(|k| k.supported_on(directory.kind)) {
        Ok(())
    } else {
        Err(DsError::Unsupported(format!(
            "Certificates are not supported for {} directories.",
            directory.kind.as_str()
        )))
    }
}
