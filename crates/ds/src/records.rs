//! What is stored for a directory and a registered certificate, and how their current
//! state is read from the stored timestamps.

use serde::{Deserialize, Serialize};

use super::machine::{
    CertificateEvent, CertificateState, ClientAuthStatus, DirectoryEvent, DirectoryStage, LdapsStatus,
};

/// How long a directory stays in each of `Requested` and `Creating` by default,
/// milliseconds (see [`super::Directories::with_directory_step_ms`]).
///
/// AWS takes 5–45 minutes; Carapace keeps the stages observable (SDK code that polls for
/// `Active` is exercised) but short.
pub const DIRECTORY_STEP_MS: i64 = 150;

fn default_step_ms() -> i64 {
    DIRECTORY_STEP_MS
}
/// How long a certificate stays `Registering`, milliseconds.
pub const REGISTER_DELAY_MS: i64 = 200;
/// How long a certificate stays `Deregistering`, milliseconds.
pub const DEREGISTER_DELAY_MS: i64 = 200;
/// How long LDAPS stays `Enabling` before the domain controllers are checked, milliseconds.
pub const LDAPS_CHECK_DELAY_MS: i64 = 200;

/// The three kinds of directory Carapace creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryKind {
    /// `CreateDirectory`.
    SimpleAd,
    /// `CreateMicrosoftAD`.
    MicrosoftAd,
    /// `ConnectDirectory` (AD Connector to customer domain controllers).
    AdConnector,
}

impl DirectoryKind {
    /// The AWS `DirectoryType` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SimpleAd => "SimpleAD",
            Self::MicrosoftAd => "MicrosoftAD",
            Self::AdConnector => "ADConnector",
        }
    }
}

/// The two kinds of registered certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertificateKind {
    /// CA certificate the domain controllers' LDAPS server certificates chain to.
    ClientLdaps,
    /// CA certificate smart-card user certificates chain to.
    ClientCertAuth,
}

impl CertificateKind {
    /// The AWS `CertificateType` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientLdaps => "ClientLDAPS",
            Self::ClientCertAuth => "ClientCertAuth",
        }
    }

    /// How many live certificates of this kind one directory may hold (AWS quotas).
    pub fn limit(self) -> usize {
        match self {
            Self::ClientLdaps => 5,
            Self::ClientCertAuth => 100,
        }
    }

    /// Whether a directory of `kind` takes certificates of this kind: client LDAPS needs
    /// customer-visible domain controllers (Managed Microsoft AD, AD Connector); smart-card
    /// authentication is an AD Connector feature.
    pub fn supported_on(self, kind: DirectoryKind) -> bool {
        match self {
            Self::ClientLdaps => matches!(kind, DirectoryKind::MicrosoftAd | DirectoryKind::AdConnector),
            Self::ClientCertAuth => kind == DirectoryKind::AdConnector,
        }
    }
}

/// The client authentication types (AWS `ClientAuthenticationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientAuthKind {
    /// Smart card only.
    SmartCard,
    /// Smart card, or a password when no card is presented.
    SmartCardOrPassword,
}

impl ClientAuthKind {
    /// Every type, in the order `DescribeClientAuthenticationSettings` lists them.
    pub const ALL: [Self; 2] = [Self::SmartCard, Self::SmartCardOrPassword];

    /// The AWS name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SmartCard => "SmartCard",
            Self::SmartCardOrPassword => "SmartCardOrPassword",
        }
    }
}

/// The client LDAPS setting of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LdapsRecord {
    /// Current status.
    pub status: LdapsStatus,
    /// Why `EnableFailed`, as shown in `LDAPSStatusReason`.
    pub reason: Option<String>,
    /// Last status change, Unix milliseconds; absent until LDAPS is first enabled.
    pub updated_ms: Option<i64>,
    /// The id of the check the current `Enabling` waits for; a result for another id is
    /// stale (LDAPS was disabled or re-enabled meanwhile) and dropped.
    pub check_id: Option<String>,
    /// When that check should run, Unix milliseconds.
    pub check_due_ms: i64,
}

impl Default for LdapsRecord {
    fn default() -> Self {
        Self { status: LdapsStatus::Disabled, reason: None, updated_ms: None, check_id: None, check_due_ms: 0 }
    }
}

/// One client authentication type's setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientAuthRecord {
    /// Which type.
    pub kind: ClientAuthKind,
    /// Current status.
    pub status: ClientAuthStatus,
    /// Last change, Unix milliseconds.
    pub updated_ms: i64,
}

/// A stored directory (row kind [`super::DIRECTORY_KIND`], id `d-<10 hex>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryRecord {
    /// `d-<10 hex>`.
    pub id: String,
    /// What was created.
    pub kind: DirectoryKind,
    /// Fully qualified domain name.
    pub name: String,
    /// NetBIOS name (given, or the first label of `name`).
    pub short_name: String,
    /// Free text.
    pub description: Option<String>,
    /// `Small` / `Large` (Simple AD, AD Connector).
    pub size: Option<String>,
    /// `Standard` / `Enterprise` (Managed Microsoft AD).
    pub edition: Option<String>,
    /// `IPv4` / `IPv6` / `Dual-stack` when given.
    pub network_type: Option<String>,
    /// VPC id as given (checked against the model's pattern only: there is no EC2 here).
    pub vpc_id: String,
    /// Subnet ids as given.
    pub subnet_ids: Vec<String>,
    /// AD Connector: the customer's DNS servers / domain controllers (IPv4).
    pub customer_dns_ips: Vec<String>,
    /// AD Connector: the customer's DNS servers / domain controllers (IPv6).
    pub customer_dns_ips_v6: Vec<String>,
    /// AD Connector: the service account in the customer's directory.
    pub customer_user_name: Option<String>,
    /// Salted PBKDF2 hash of the password given at creation; never the password.
    pub password_hash: String,
    /// Synthetic security group id (`sg-<17 hex>`), as AWS creates one per directory.
    pub security_group_id: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
    /// How long each of `Requested` and `Creating` lasts for this directory, milliseconds
    /// (fixed at creation, so a changed setting never moves an existing directory back).
    #[serde(default = "default_step_ms")]
    pub step_ms: i64,
    /// Tags in insertion order; keys are unique.
    pub tags: Vec<(String, String)>,
    /// Client LDAPS.
    #[serde(default)]
    pub ldaps: LdapsRecord,
    /// Client authentication settings that were ever changed.
    #[serde(default)]
    pub client_auth: Vec<ClientAuthRecord>,
}

impl DirectoryRecord {
    /// The stage at `now_ms` and when it began: `Requested` for `step_ms`, then
    /// `Creating` as long again, then `Active`.
    pub fn stage_at(&self, now_ms: i64) -> (DirectoryStage, i64) {
        let mut stage = DirectoryStage::Requested;
        let mut since = self.created_ms;
        let steps = [
            (self.created_ms + self.step_ms, DirectoryEvent::ProvisioningStarted),
            (self.created_ms + 2 * self.step_ms, DirectoryEvent::ProvisioningFinished),
        ];
        for (at, event) in steps {
            if now_ms >= at
                && let Ok(next) = stage.on(event)
            {
                stage = next;
                since = at;
            }
        }
        (stage, since)
    }

    /// The status of one client authentication type.
    pub fn client_auth(&self, kind: ClientAuthKind) -> ClientAuthRecord {
        self.client_auth.iter().find(|c| c.kind == kind).cloned().unwrap_or(ClientAuthRecord {
            kind,
            status: ClientAuthStatus::Disabled,
            updated_ms: self.created_ms,
        })
    }

    /// Replaces one client authentication type's setting.
    pub fn set_client_auth(&mut self, record: ClientAuthRecord) {
        self.client_auth.retain(|c| c.kind != record.kind);
        self.client_auth.push(record);
    }

    /// Whether any client authentication type is enabled.
    pub fn any_client_auth_enabled(&self) -> bool {
        self.client_auth.iter().any(|c| c.status == ClientAuthStatus::Enabled)
    }

    /// The DNS addresses shown in `DnsIpAddrs`: the customer's for an AD Connector; for
    /// Simple AD and Managed Microsoft AD, two stable synthetic addresses derived from the
    /// id (there are no domain controllers to address).
    pub fn dns_ip_addrs(&self) -> Vec<String> {
        match self.kind {
            DirectoryKind::AdConnector => self.customer_dns_ips.clone(),
            DirectoryKind::SimpleAd | DirectoryKind::MicrosoftAd => {
                let hex = self.id.trim_start_matches("d-");
                let byte = |i: usize| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
                vec![format!("10.{}.{}.10", byte(0), byte(2)), format!("10.{}.{}.11", byte(0), byte(2))]
            }
        }
    }
}

/// A stored certificate registration (row kind [`super::CERTIFICATE_KIND`], id
/// `<directory id>/<certificate id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// `c-<10 hex>`.
    pub id: String,
    /// The directory it is registered with.
    pub directory_id: String,
    /// What it is for.
    pub kind: CertificateKind,
    /// The certificate, PEM.
    pub pem: String,
    /// Subject common name.
    pub common_name: String,
    /// `notAfter`, Unix milliseconds.
    pub not_after_ms: i64,
    /// SHA-256 of the DER, hex.
    pub fingerprint: String,
    /// `ClientCertAuthSettings.OCSPUrl`.
    pub ocsp_url: Option<String>,
    /// Registration time, Unix milliseconds.
    pub registered_ms: i64,
    /// The stored state: `Registering` or `Deregistering`; the later `Registered` /
    /// `Deregistered` follow from [`Self::state_at`].
    pub state: CertificateState,
    /// When the stored state began, Unix milliseconds.
    pub state_since_ms: i64,
}

impl CertificateRecord {
    /// The state at `now_ms`: the stored one, advanced by the time-driven events that are due.
    pub fn state_at(&self, now_ms: i64) -> CertificateState {
        let (delay, event) = match self.state {
            CertificateState::Registering => (REGISTER_DELAY_MS, CertificateEvent::RegistrationFinished),
            CertificateState::Deregistering => (DEREGISTER_DELAY_MS, CertificateEvent::DeregistrationFinished),
            settled @ (CertificateState::Registered | CertificateState::Deregistered) => return settled,
        };
        if now_ms >= self.state_since_ms + delay { self.state.on(event).unwrap_or(self.state) } else { self.state }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> DirectoryRecord {
        DirectoryRecord {
            id: "d-0a1b2c3d4e".into(),
            kind: DirectoryKind::SimpleAd,
            name: "corp.example.com".into(),
            short_name: "corp".into(),
            description: None,
            size: Some("Small".into()),
            edition: None,
            network_type: None,
            vpc_id: "vpc-12345678".into(),
            subnet_ids: vec![],
            customer_dns_ips: vec![],
            customer_dns_ips_v6: vec![],
            customer_user_name: None,
            password_hash: String::new(),
            security_group_id: "sg-0".into(),
            created_ms: 1_000,
            step_ms: DIRECTORY_STEP_MS,
            tags: vec![],
            ldaps: LdapsRecord::default(),
            client_auth: vec![],
        }
    }

    #[test]
    fn directory_stages_follow_the_clock() {
        let d = directory();
        assert_eq!(d.stage_at(1_000), (DirectoryStage::Requested, 1_000));
        assert_eq!(d.stage_at(1_000 + DIRECTORY_STEP_MS - 1).0, DirectoryStage::Requested);
        assert_eq!(d.stage_at(1_000 + DIRECTORY_STEP_MS), (DirectoryStage::Creating, 1_000 + DIRECTORY_STEP_MS));
        assert_eq!(d.stage_at(1_000 + 2 * DIRECTORY_STEP_MS), (DirectoryStage::Active, 1_000 + 2 * DIRECTORY_STEP_MS));
        assert_eq!(d.stage_at(i64::MAX / 2).0, DirectoryStage::Active);
        assert_eq!(d.dns_ip_addrs(), vec!["10.10.27.10", "10.10.27.11"]);
    }

    #[test]
    fn certificate_states_follow_the_clock() {
        let mut c = CertificateRecord {
            id: "c-0123456789".into(),
            directory_id: "d-0a1b2c3d4e".into(),
            kind: CertificateKind::ClientLdaps,
            pem: String::new(),
            common_name: "CA".into(),
            not_after_ms: 0,
            fingerprint: String::new(),
            ocsp_url: None,
            registered_ms: 5_000,
            state: CertificateState::Registering,
            state_since_ms: 5_000,
        };
        assert_eq!(c.state_at(5_000), CertificateState::Registering);
        assert_eq!(c.state_at(5_000 + REGISTER_DELAY_MS), CertificateState::Registered);
        c.state = CertificateState::Deregistering;
        c.state_since_ms = 9_000;
        assert_eq!(c.state_at(9_000), CertificateState::Deregistering);
        assert_eq!(c.state_at(9_000 + DEREGISTER_DELAY_MS), CertificateState::Deregistered);
    }

    #[test]
    fn certificate_kinds_know_where_they_are_supported() {
        use CertificateKind::*;
        use DirectoryKind::*;
        for (cert, dir, ok) in [
            (ClientLdaps, SimpleAd, false),
            (ClientLdaps, MicrosoftAd, true),
            (ClientLdaps, AdConnector, true),
            (ClientCertAuth, SimpleAd, false),
            (ClientCertAuth, MicrosoftAd, false),
            (ClientCertAuth, AdConnector, true),
        ] {
            assert_eq!(cert.supported_on(dir), ok, "{cert:?} on {dir:?}");
        }
    }
}
