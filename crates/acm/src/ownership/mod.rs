//! Checking domain ownership for real: DNS CNAME and CAA lookups, approval mail and its
//! tokens, HTTP validation fetches.
//!
//! What is asked of the network are the traits of `carapace-checks`, re-exported here
//! ([`DnsChecker`], [`HttpChecker`], [`Mailer`], bundled as [`Checkers`]); the binary hands
//! the real ones to the ACM worker ([`crate::CertificateManager::with_checkers`]).
//! The core keeps the rules: the ACM validation jobs ([`crate::AcmJobs`]) decide what
//! the answers mean for a certificate, and [`email`] says who gets approval mail and how its
//! tokens are made and stored.

pub mod email;

pub use carapace_checks::{
    ApprovalMail, Checkers, CnameCheck, DnsChecker, DnsError, HttpCheckError, HttpChecker, MailError, Mailer,
    SmtpSettings,
};
