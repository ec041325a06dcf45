//! Carapace's outbound checks: everything the rules ask of the network. DNS CNAME, CAA and
//! address lookups, HTTP validation fetches, approval mail, webhook delivery of events, and
//! the LDAPS probe of a directory's domain controllers.
//!
//! ## Two halves, one crate
//!
//! - **Always compiled: the traits and their plain data.** [`DnsChecker`], [`HttpChecker`],
//!   [`Mailer`], [`WebhookClient`] and the values they take and return ([`CnameCheck`],
//!   [`ApprovalMail`], [`SmtpSettings`], [`ldaps::LdapsPlan`], [`ldaps::LdapsFailure`], the
//!   errors). These need nothing but `async-trait` and `thiserror`.
//! - **Behind features: the implementations**, each with its heavy dependencies:
//!   `dns` ([`dns::Resolver`], hickory-resolver), `http` ([`http::Fetcher`], hyper),
//!   `smtp` ([`email::SmtpMailer`], lettre), `webhooks` ([`webhook::HttpsWebhooks`],
//!   hyper-rustls and the system's roots), `ldaps` ([`ldaps::check`], rustls) and
//!   `testing` ([`testing::TestDns`], a real DNS server on loopback for tests). All but
//!   `testing` are default features.
//!
//! `carapace-core` depends on this crate with `default-features = false`: its rules see only
//! the traits, and none of hickory, lettre, hyper or rustls is in its dependency graph. The
//! binary (`carapace`) builds the implementations from its configuration and hands them to
//! the core ([`Checkers::live`] for ACM validation, [`webhook::HttpsWebhooks`] for events).
//!
//! ## Why the traits live here and not in the core
//!
//! The core's own tests validate certificates against a real DNS server and a real SMTP
//! sink, so they need the implementations. Were the traits in the core, this crate would
//! depend on the core to implement them, and the core's tests could not use it: a
//! dev-dependency back onto this crate would link a second copy of the core whose traits are
//! not the ones under test. With the traits here, nothing in this crate knows the core, and
//! the core takes the implementations as a dev-dependency (features `dns`, `http`, `smtp`,
//! `testing`) only for its tests.
//!
//! This crate is not the rules: what a CNAME mismatch or a refused mail means for a
//! certificate, and what an LDAPS failure means for a directory, the core decides.

pub mod dns;
pub mod email;
pub mod http;
pub mod ldaps;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod webhook;

use std::sync::Arc;

pub use dns::{CnameCheck, DnsChecker, DnsError};
pub use email::{ApprovalMail, MailError, Mailer, SmtpSettings};
pub use http::{HttpCheckError, HttpChecker};
pub use webhook::{WebhookClient, WebhookError};

/// The three checkers ACM's domain validation uses. Cheap to clone.
#[derive(Clone)]
pub struct Checkers {
    /// Validation CNAMEs and CAA records.
    pub dns: Arc<dyn DnsChecker>,
    /// HTTP validation files.
    pub http: Arc<dyn HttpChecker>,
    /// Approval mail.
    pub mail: Arc<dyn Mailer>,
}

impl std::fmt::Debug for Checkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkers").finish_non_exhaustive()
    }
}

#[cfg(all(feature = "http", feature = "smtp"))]
impl Checkers {
    /// The real checkers: DNS through `name_servers` (the system's resolvers when empty),
    /// each query bounded by `timeout`; HTTP validation resolving through the same servers,
    /// each hop bounded by `timeout`, connecting to `http_port` for URLs that name none;
    /// mail through the relay `smtp` names.
    pub fn live(
        name_servers: Vec<std::net::SocketAddr>,
        timeout: std::time::Duration,
        http_port: u16,
        smtp: SmtpSettings,
    ) -> Self {
        let dns = dns::Resolver::new(name_servers, timeout);
        let http = http::Fetcher::new(dns.clone(), timeout).with_default_port(http_port);
        Self { dns: Arc::new(dns), http: Arc::new(http), mail: Arc::new(email::SmtpMailer::new(smtp)) }
    }
}
