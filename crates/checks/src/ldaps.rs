//! The LDAPS check of a directory's domain controllers: what it must verify
//! ([`LdapsPlan`]) and why it failed ([`LdapsFailure`]); the core decides the plan and what
//! the outcome means for the directory.
//!
//! With feature `ldaps`, [`check`] runs it: TCP, a TLS handshake trusting only the plan's
//! anchors, and a root DSE search built and read by [`ldap`].

use std::net::IpAddr;

#[cfg(feature = "ldaps")]
pub mod ldap;
#[cfg(feature = "ldaps")]
mod probe;
#[cfg(feature = "ldaps")]
pub use probe::{DEFAULT_LDAPS_PORT, ProbeSettings, check};

/// What an LDAPS check must verify.
#[derive(Debug, Clone)]
pub struct LdapsPlan {
    /// The customer's domain controllers to connect to (AD Connector). Empty for Managed
    /// Microsoft AD, whose domain controllers are AWS's: Carapace runs none, so once a
    /// certificate is registered there is nothing further to check and LDAPS is enabled.
    pub targets: Vec<IpAddr>,
    /// DER of every registered `ClientLDAPS` certificate: the only trust anchors.
    pub anchors: Vec<Vec<u8>>,
}

/// Why the LDAPS check of a domain controller failed; the text is the `LDAPSStatusReason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdapsFailure {
    /// No TCP connection (refused, timed out, no route).
    #[error("Domain controller {addr} is unreachable on the LDAPS port: {detail}")]
    Unreachable {
        /// `ip:port`.
        addr: String,
        /// What the network said.
        detail: String,
    },
    /// The server's chain does not lead to a registered `ClientLDAPS` certificate.
    #[error(
        "Domain controller {addr} presented an untrusted certificate chain (no registered ClientLDAPS certificate anchors it): {detail}"
    )]
    UntrustedChain {
        /// `ip:port`.
        addr: String,
        /// What verification said.
        detail: String,
    },
    /// The server's certificate (or one in its chain) is expired or not yet valid.
    #[error("Domain controller {addr} presented an expired certificate: {detail}")]
    Expired {
        /// `ip:port`.
        addr: String,
        /// What verification said.
        detail: String,
    },
    /// TLS failed for another reason (protocol error, alert, timeout mid-handshake).
    #[error("TLS handshake error with domain controller {addr}: {detail}")]
    Handshake {
        /// `ip:port`.
        addr: String,
        /// What TLS said.
        detail: String,
    },
    /// TLS worked but the LDAP root DSE search did not.
    #[error("LDAP error from domain controller {addr}: {detail}")]
    Ldap {
        /// `ip:port`.
        addr: String,
        /// What LDAP said.
        detail: String,
    },
}
