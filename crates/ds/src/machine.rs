//! The Directory Service state machines: closed enums, every transition in one function
//! per machine, and an exhaustive test of each below.
//!
//! Time-driven steps (a directory finishing creation, a certificate finishing registration)
//! are events like any other; [`super::records`] applies them lazily when a record is read,
//! from the timestamps it stores, so no worker has to be running for them to happen and a
//! restart loses nothing.

use serde::{Deserialize, Serialize};

/// A transition the machine does not allow from the current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{event} is not allowed in state {state}")]
pub struct Refused {
    /// The state the record was in.
    pub state: &'static str,
    /// The event that was refused.
    pub event: &'static str,
}

/// Lifecycle stage of a directory (AWS `DirectoryStage`, the subset Carapace reaches).
///
/// AWS: Requested → Creating → Created → Active. Carapace skips the short `Created` step;
/// deletion removes the directory at once rather than showing `Deleting` (documented
/// difference: nothing is torn down, so there is nothing to wait for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectoryStage {
    /// Accepted, not started.
    Requested,
    /// Being provisioned.
    Creating,
    /// Ready for use.
    Active,
}

/// What happens to a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryEvent {
    /// Provisioning started (after the first delay).
    ProvisioningStarted,
    /// Provisioning finished (after the second delay).
    ProvisioningFinished,
}

impl DirectoryStage {
    /// The name AWS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "Requested",
            Self::Creating => "Creating",
            Self::Active => "Active",
        }
    }

    /// Every transition of the directory machine.
    pub fn on(self, event: DirectoryEvent) -> Result<Self, Refused> {
        use DirectoryEvent::*;
        match (self, event) {
            (Self::Requested, ProvisioningStarted) => Ok(Self::Creating),
            (Self::Creating, ProvisioningFinished) => Ok(Self::Active),
            (state, event) => Err(Refused { state: state.as_str(), event: event.as_str() }),
        }
    }
}

impl DirectoryEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::ProvisioningStarted => "ProvisioningStarted",
            Self::ProvisioningFinished => "ProvisioningFinished",
        }
    }
}

/// State of a registered certificate (AWS `CertificateState`, the subset Carapace reaches:
/// every check runs before the certificate is accepted, so registration cannot fail later,
/// and deregistration removes nothing external, so it cannot fail either).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertificateState {
    /// Accepted, being distributed to the domain controllers.
    Registering,
    /// In use.
    Registered,
    /// Being removed.
    Deregistering,
    /// Removed; no longer listed.
    Deregistered,
}

/// What happens to a registered certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateEvent {
    /// Registration finished (after a delay).
    RegistrationFinished,
    /// `DeregisterCertificate` was called.
    DeregisterRequested,
    /// Deregistration finished (after a delay).
    DeregistrationFinished,
}

impl CertificateState {
    /// The name AWS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registering => "Registering",
            Self::Registered => "Registered",
            Self::Deregistering => "Deregistering",
            Self::Deregistered => "Deregistered",
        }
    }

    /// Whether the certificate still counts: listed, counted against limits, a duplicate.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Registering | Self::Registered)
    }

    /// Every transition of the certificate machine.
    pub fn on(self, event: CertificateEvent) -> Result<Self, Refused> {
        use CertificateEvent::*;
        match (self, event) {
            (Self::Registering, RegistrationFinished) => Ok(Self::Registered),
            // A certificate may be withdrawn while it is still being distributed.
            (Self::Registering | Self::Registered, DeregisterRequested) => Ok(Self::Deregistering),
            (Self::Deregistering, DeregistrationFinished) => Ok(Self::Deregistered),
            (state, event) => Err(Refused { state: state.as_str(), event: event.as_str() }),
        }
    }
}

impl CertificateEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::RegistrationFinished => "RegistrationFinished",
            Self::DeregisterRequested => "DeregisterRequested",
            Self::DeregistrationFinished => "DeregistrationFinished",
        }
    }
}

/// Client LDAPS status of a directory (AWS `LDAPSStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LdapsStatus {
    /// Off (the initial state).
    Disabled,
    /// `EnableLDAPS` accepted; the domain controllers are being checked.
    Enabling,
    /// Every domain controller answered over TLS with a chain to a registered certificate.
    Enabled,
    /// The check failed; the status reason says why.
    EnableFailed,
}

/// What happens to a directory's client LDAPS setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapsEvent {
    /// `EnableLDAPS` was called.
    EnableRequested,
    /// The check of every domain controller succeeded.
    CheckPassed,
    /// The check of some domain controller failed.
    CheckFailed,
    /// `DisableLDAPS` was called.
    DisableRequested,
}

impl LdapsStatus {
    /// The name AWS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "Disabled",
            Self::Enabling => "Enabling",
            Self::Enabled => "Enabled",
            Self::EnableFailed => "EnableFailed",
        }
    }

    /// Every transition of the LDAPS machine. A refused `EnableRequested` /
    /// `DisableRequested` is the client's `InvalidLDAPSStatusException`; a refused check
    /// result is a stale check (LDAPS was disabled or re-enabled meanwhile) and is dropped.
    pub fn on(self, event: LdapsEvent) -> Result<Self, Refused> {
        use LdapsEvent::*;
        match (self, event) {
            // A failed attempt may be retried; an enabled or enabling one may not.
            (Self::Disabled | Self::EnableFailed, EnableRequested) => Ok(Self::Enabling),
            (Self::Enabling, CheckPassed) => Ok(Self::Enabled),
            (Self::Enabling, CheckFailed) => Ok(Self::EnableFailed),
            (Self::Enabling | Self::Enabled | Self::EnableFailed, DisableRequested) => Ok(Self::Disabled),
            (state, event) => Err(Refused { state: state.as_str(), event: event.as_str() }),
        }
    }
}

impl LdapsEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::EnableRequested => "EnableRequested",
            Self::CheckPassed => "CheckPassed",
            Self::CheckFailed => "CheckFailed",
            Self::DisableRequested => "DisableRequested",
        }
    }
}

/// Status of one client authentication type (AWS `ClientAuthenticationStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientAuthStatus {
    /// Off (the initial state).
    Disabled,
    /// On.
    Enabled,
}

/// What happens to a client authentication setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthEvent {
    /// `EnableClientAuthentication` was called.
    EnableRequested,
    /// `DisableClientAuthentication` was called.
    DisableRequested,
}

impl ClientAuthStatus {
    /// The name AWS uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disabled => "Disabled",
            Self::Enabled => "Enabled",
        }
    }

    /// Every transition of the client authentication machine; a refusal is the client's
    /// `InvalidClientAuthStatusException`.
    pub fn on(self, event: ClientAuthEvent) -> Result<Self, Refused> {
        use ClientAuthEvent::*;
        match (self, event) {
            (Self::Disabled, EnableRequested) => Ok(Self::Enabled),
            (Self::Enabled, DisableRequested) => Ok(Self::Disabled),
            (state, event) => Err(Refused { state: state.as_str(), event: event.as_str() }),
        }
    }
}

impl ClientAuthEvent {
    fn as_str(self) -> &'static str {
        match self {
            Self::EnableRequested => "EnableRequested",
            Self::DisableRequested => "DisableRequested",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test lists the full (state × event) table: adding a state or an event without
    // deciding every new pair fails to compile (the arrays) or fails here (the table).

    #[test]
    fn directory_transitions_are_exactly_these() {
        use DirectoryEvent::*;
        use DirectoryStage::*;
        let states = [Requested, Creating, Active];
        let events = [ProvisioningStarted, ProvisioningFinished];
        for s in states {
            for e in events {
                let expected = match (s, e) {
                    (Requested, ProvisioningStarted) => Some(Creating),
                    (Creating, ProvisioningFinished) => Some(Active),
                    _ => None,
                };
                assert_eq!(s.on(e).ok(), expected, "{s:?} + {e:?}");
            }
        }
    }

    #[test]
    fn certificate_transitions_are_exactly_these() {
        use CertificateEvent::*;
        use CertificateState::*;
        let states = [Registering, Registered, Deregistering, Deregistered];
        let events = [RegistrationFinished, DeregisterRequested, DeregistrationFinished];
        for s in states {
            for e in events {
                let expected = match (s, e) {
                    (Registering, RegistrationFinished) => Some(Registered),
                    (Registering, DeregisterRequested) => Some(Deregistering),
                    (Registered, DeregisterRequested) => Some(Deregistering),
                    (Deregistering, DeregistrationFinished) => Some(Deregistered),
                    _ => None,
                };
                assert_eq!(s.on(e).ok(), expected, "{s:?} + {e:?}");
            }
        }
        assert!(Registering.is_live() && Registered.is_live());
        assert!(!Deregistering.is_live() && !Deregistered.is_live());
    }

    #[test]
    fn ldaps_transitions_are_exactly_these() {
        use LdapsEvent::*;
        use LdapsStatus::*;
        let states = [Disabled, Enabling, Enabled, EnableFailed];
        let events = [EnableRequested, CheckPassed, CheckFailed, DisableRequested];
        for s in states {
            for e in events {
                let expected = match (s, e) {
                    (Disabled, EnableRequested) => Some(Enabling),
                    (EnableFailed, EnableRequested) => Some(Enabling),
                    (Enabling, CheckPassed) => Some(Enabled),
                    (Enabling, CheckFailed) => Some(EnableFailed),
                    (Enabling, DisableRequested) => Some(Disabled),
                    (Enabled, DisableRequested) => Some(Disabled),
                    (EnableFailed, DisableRequested) => Some(Disabled),
                    _ => None,
                };
                assert_eq!(s.on(e).ok(), expected, "{s:?} + {e:?}");
            }
        }
        let refused = Enabled.on(EnableRequested).unwrap_err();
        assert_eq!(refused.to_string(), "EnableRequested is not allowed in state Enabled");
    }

    #[test]
    fn client_auth_transitions_are_exactly_these() {
        use ClientAuthEvent::*;
        use ClientAuthStatus::*;
        for s in [Disabled, Enabled] {
            for e in [EnableRequested, DisableRequested] {
                let expected = match (s, e) {
                    (Disabled, EnableRequested) => Some(Enabled),
                    (Enabled, DisableRequested) => Some(Disabled),
                    _ => None,
                };
                assert_eq!(s.on(e).ok(), expected, "{s:?} + {e:?}");
            }
        }
    }
}
