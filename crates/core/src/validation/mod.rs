//! Checking domain ownership for real: DNS CNAME and CAA lookups, approval mail and its
//! tokens, HTTP validation fetches.
//!
//! These are standalone components; the ACM validation jobs
//! ([`crate::acm::AcmJobs`]) call them and decide what the answers
//! mean for a certificate.

pub mod dns;
pub mod email;
pub mod http;

pub use dns::{CnameCheck, DnsChecker, DnsError};
pub use email::{ApprovalMail, MailError, Mailer, SmtpSettings};
pub use http::{HttpCheckError, HttpChecker};
#[cfg(any(test, feature = "testing"))]
pub mod testing;
