//! Approval mail: the message ACM's email validation sends, and the trait that sends it.
//!
//! The trait and its data are always here; [`SmtpMailer`] (feature `smtp`) sends through a
//! configured SMTP relay with lettre. Who gets the mail, and the approval tokens its link
//! carries, are the core's rules (`carapace_acm::ownership::email`).
//!
//! ## Exactly-once mail
//!
//! SMTP cannot be made transactional with the store. Each send has a stable id
//! ([`ApprovalMail::message_id`], derived by the core from the certificate, domain and send
//! number) that becomes the mail's `Message-ID`; the core records the send in the same batch
//! that finishes its job. A crash after the relay accepted the mail but before that batch
//! commits re-sends the *same* message (same Message-ID and token), which receiving systems
//! deduplicate.

use std::time::Duration;

#[cfg(feature = "smtp")]
mod smtp;
#[cfg(feature = "smtp")]
pub use smtp::SmtpMailer;

/// Where and how approval mail is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// Relay host name or address.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Upgrade the connection with STARTTLS (required when set).
    pub starttls: bool,
    /// The sender address.
    pub from: String,
    /// Give up on one attempt after this long (the job retries).
    pub timeout: Duration,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 25,
            starttls: false,
            from: "no-reply@carapace.internal".into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Mail failures. [`MailError::Send`] is transient (the relay is down or refused): retried.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message or transport could not be built (bad address, bad config).
    #[error("approval mail: {0}")]
    Build(String),
    /// The relay did not take the message.
    #[error("SMTP relay: {0}")]
    Send(String),
}

/// One approval mail.
#[derive(Debug, Clone)]
pub struct ApprovalMail {
    /// Recipients.
    pub to: Vec<String>,
    /// The domain being approved.
    pub domain: String,
    /// The account asking.
    pub account: String,
    /// The certificate ARN.
    pub arn: String,
    /// Every name on the certificate.
    pub sans: Vec<String>,
    /// The approval link (carries the token).
    pub link: String,
    /// Stable id of this send, used as the Message-ID (`<id@carapace>`).
    pub message_id: String,
}

/// Sends approval mail.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `mail`; an error means the relay did not accept it.
    async fn send(&self, mail: &ApprovalMail) -> Result<(), MailError>;
}
