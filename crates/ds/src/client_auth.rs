//! Smart-card client authentication: `EnableClientAuthentication`,
//! `DisableClientAuthentication` and `DescribeClientAuthenticationSettings`.

use super::machine::{CertificateState, ClientAuthEvent};
use super::records::{CertificateKind, ClientAuthKind, ClientAuthRecord, DirectoryRecord};
use super::{Directories, DsError, Page, Result, machine, offset_page, retry};

impl Directories {
    /// `EnableClientAuthentication`. The two types are alternatives: enabling one while
    /// the other is enabled is refused (disable the other first).
    pub async fn enable_client_auth(&self, scope: &str, directory_id: &str, kind: ClientAuthKind) -> Result<()> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = self.directory(scope, directory_id).await?;
            require_client_auth_supported(&directory)?;
            let current = directory.client_auth(kind);
            let next = current.status.on(ClientAuthEvent::EnableRequested).map_err(|_| {
                DsError::InvalidClientAuthStatus(format!(
                    "{} client authentication is already enabled for directory {directory_id}.",
                    kind.as_str()
                ))
            })?;
            if let Some(other) = ClientAuthKind::ALL
                .into_iter()
                .find(|k| *k != kind && directory.client_auth(*k).status == machine::ClientAuthStatus::Enabled)
            {
                return Err(DsError::InvalidClientAuthStatus(format!(
                    "{} client authentication is enabled for directory {directory_id}; disable it before enabling {}.",
                    other.as_str(),
                    kind.as_str()
                )));
            }
            let registered =
                self.live_certificates(scope, directory_id, now).await?.into_iter().any(|c| {
                    c.record.kind == CertificateKind::ClientCertAuth && c.state == CertificateState::Registered
                });
            if !registered {
                return Err(DsError::NoAvailableCertificate(format!(
                    "Directory {directory_id} has no registered ClientCertAuth certificate."
                )));
            }
            directory.set_client_auth(ClientAuthRecord { kind, status: next, updated_ms: now });
            self.put_directory(scope, &directory, version).await
        })
        .await
    }

    /// `DisableClientAuthentication`.
    pub async fn disable_client_auth(&self, scope: &str, directory_id: &str, kind: ClientAuthKind) -> Result<()> {
        retry(|| async {
            let now = self.now();
            let (mut directory, version) = self.directory(scope, directory_id).await?;
            require_client_auth_supported(&directory)?;
            let next = directory.client_auth(kind).status.on(ClientAuthEvent::DisableRequested).map_err(|_| {
                DsError::InvalidClientAuthStatus(format!(
                    "{} client authentication is already disabled for directory {directory_id}.",
                    kind.as_str()
                ))
            })?;
            directory.set_client_auth(ClientAuthRecord { kind, status: next, updated_ms: now });
            self.put_directory(scope, &directory, version).await
        })
        .await
    }

    /// `DescribeClientAuthenticationSettings`: one type, or all types.
    pub async fn describe_client_auth(
        &self,
        scope: &str,
        directory_id: &str,
        kind: Option<ClientAuthKind>,
        limit: Option<usize>,
        token: Option<&str>,
    ) -> Result<Page<ClientAuthRecord>> {
        let (directory, _) = self.directory(scope, directory_id).await?;
        require_client_auth_supported(&directory)?;
        let all: Vec<ClientAuthRecord> = ClientAuthKind::ALL
            .into_iter()
            .filter(|k| kind.is_none_or(|want| want == *k))
            .map(|k| directory.client_auth(k))
            .collect();
        offset_page(all, limit, token)
    }
}

fn require_client_auth_supported(directory: &DirectoryRecord) -> Result<()> {
    if CertificateKind::ClientCertAuth.supported_on(directory.kind) {
        Ok(())
    } else {
        Err(DsError::Unsupported(format!(
            "Client authentication is not supported for {} directories.",
            directory.kind.as_str()
        )))
    }
}
