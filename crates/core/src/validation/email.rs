//! Email validation: who gets the approval mail, the mail itself (sent with lettre through a
//! configured SMTP relay), and the approval tokens its link carries.
//!
//! ## Tokens
//!
//! A token is 16 random bytes (128 bits) as hex, so it cannot be guessed. Only its SHA-256
//! is stored (row [`TOKEN_KIND`], id = the hash), with the certificate and domain it
//! approves and its expiry: someone reading the database cannot approve anything. A token is
//! single-use: approving deletes its row in the same batch that marks the domain validated.
//!
//! ## Exactly-once mail
//!
//! SMTP cannot be made transactional with the store. Each send has a stable id
//! ([`ApprovalMail::message_id`], derived from the certificate, domain and send number) that
//! becomes the mail's `Message-ID`; the send is recorded in the same batch that finishes its
//! job. A crash after the relay accepted the mail but before that batch commits re-sends the
//! *same* message (same Message-ID and token), which receiving systems deduplicate.

use std::time::Duration;

use lettre::message::Body;
use lettre::message::Mailbox;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::transport::smtp::client::Tls;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Row kind of approval tokens (scope `""`, id = hex SHA-256 of the token).
pub const TOKEN_KIND: &str = "acm.approval-token";

/// The local parts ACM mails for a validation domain.
pub const LOCAL_PARTS: [&str; 5] = ["admin", "administrator", "hostmaster", "postmaster", "webmaster"];

/// The domain approval mail goes to: the validation domain without a leading `*.` or
/// `www.` (as ACM does).
pub fn mail_domain(validation_domain: &str) -> String {
    let d = validation_domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let d = d.strip_prefix("*.").unwrap_or(&d);
    d.strip_prefix("www.").unwrap_or(d).to_owned()
}

/// The five approval addresses of a validation domain.
pub fn approval_addresses(validation_domain: &str) -> Vec<String> {
    let domain = mail_domain(validation_domain);
    LOCAL_PARTS.iter().map(|p| format!("{p}@{domain}")).collect()
}

/// A fresh approval token: `(token for the link, hash to store)`. 128 random bits as 32
/// hex digits: unguessable, and short enough to keep the link on one mail line.
pub fn new_token() -> Result<(String, String), MailError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| MailError::Build("random number generator failed".into()))?;
    let token = hex::encode(bytes);
    let hash = token_hash(&token);
    Ok((token, hash))
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes()))
}

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

/// Sends approval mail through the relay.
#[derive(Debug, Clone)]
pub struct Mailer {
    settings: SmtpSettings,
}

impl Mailer {
    /// A mailer for `settings`.
    pub fn new(settings: SmtpSettings) -> Self {
        Self { settings }
    }

    /// The message for `mail`, as sent.
    pub fn message(&self, mail: &ApprovalMail) -> Result<Message, MailError> {
        let from: Mailbox = self.settings.from.parse().map_err(|e| MailError::Build(format!("from address: {e}")))?;
        let mut builder = Message::builder()
            .from(from)
            .subject(format!("Certificate approval for {}", mail.domain))
            .message_id(Some(format!("<{}@carapace>", mail.message_id)));
        for to in &mail.to {
            builder = builder.to(to.parse().map_err(|e| MailError::Build(format!("recipient {to}: {e}")))?);
        }
        let body = format!(
            "Account {account} asked Carapace for a certificate\n\
             that includes {domain}.\n\n\
             Domains on the certificate:\n{sans}\n\n\
             If you own {domain} and want to approve it,\n\
             open this link and choose \"I Approve\":\n\n{link}\n\n\
             The link works once and expires with the request's\n\
             validation window. If you did not expect this mail,\n\
             ignore it: nothing is issued without approval.\n",
            account = mail.account,
            domain = mail.domain,
            sans = mail.sans.join("\n"),
            link = mail.link,
        );
        // 8bit keeps the link on one line (quoted-printable would fold it) for people and tests
        // that read the raw mail.
        // (Lines over 76 characters — a very long base URL — fall back to quoted-printable.)
        let body = Body::new_with_encoding(body.clone(), ContentTransferEncoding::EightBit)
            .unwrap_or_else(|_| Body::new(body));
        builder.header(ContentType::TEXT_PLAIN).body(body).map_err(|e| MailError::Build(e.to_string()))
    }

    /// Sends `mail`; an error means the relay did not accept it.
    pub async fn send(&self, mail: &ApprovalMail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        let builder = if self.settings.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&self.settings.host)
                .map_err(|e| MailError::Build(e.to_string()))?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.settings.host.clone()).tls(Tls::None)
        };
        let transport = builder.port(self.settings.port).timeout(Some(self.settings.timeout)).build();
        transport.send(message).await.map_err(|e| MailError::Send(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    #[test]
    fn addresses_strip_wildcard_and_www() {
        assert_eq!(
            approval_addresses("*.www.Example.com"),
            vec![
                "admin@example.com",
                "administrator@example.com",
                "hostmaster@example.com",
                "postmaster@example.com",
                "webmaster@example.com"
            ]
        );
        assert_eq!(mail_domain("www.example.com"), "example.com");
        assert_eq!(mail_domain("shop.example.com"), "shop.example.com");
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, ha) = new_token().unwrap();
        let (b, _) = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(token_hash(&a), ha);
        assert_ne!(ha, a);
    }

    /// A minimal SMTP sink: accepts one message and returns its DATA.
    async fn sink() -> (u16, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (r, mut w) = stream.into_split();
            let mut lines = BufReader::new(r).lines();
            w.write_all(b"220 sink\r\n").await.unwrap();
            let mut data = String::new();
            let mut in_data = false;
            while let Some(line) = lines.next_line().await.unwrap() {
                if in_data {
                    if line == "." {
                        in_data = false;
                        w.write_all(b"250 ok\r\n").await.unwrap();
                    } else {
                        data.push_str(&line);
                        data.push('\n');
                    }
                    continue;
                }
                let upper = line.to_ascii_uppercase();
                if upper.starts_with("EHLO") {
                    w.write_all(b"250 sink\r\n").await.unwrap();
                } else if upper.starts_with("DATA") {
                    in_data = true;
                    w.write_all(b"354 go\r\n").await.unwrap();
                } else if upper.starts_with("QUIT") {
                    w.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                } else {
                    w.write_all(b"250 ok\r\n").await.unwrap();
                }
            }
            data
        });
        (port, task)
    }

    #[tokio::test]
    async fn sends_through_a_plain_relay_and_fails_when_it_is_down() {
        let (port, task) = sink().await;
        let mailer = Mailer::new(SmtpSettings { port, ..SmtpSettings::default() });
        let mail = ApprovalMail {
            to: approval_addresses("example.com"),
            domain: "example.com".into(),
            account: "123456789012".into(),
            arn: "arn:aws:acm:us-east-1:123456789012:certificate/0e3b4a52-8f0d-4c8e-9d6b-2f1a3c4d5e6f".into(),
            sans: vec!["example.com".into()],
            link: "https://127.0.0.1:4567/approve/0123456789abcdef0123456789abcdef".into(),
            message_id: "send-1".into(),
        };
        mailer.send(&mail).await.unwrap();
        let data = task.await.unwrap();
        assert!(data.contains("Message-ID: <send-1@carapace>"), "{data}");
        assert!(data.contains("Content-Transfer-Encoding: 8bit"), "{data}");
        assert!(data.contains("\nhttps://127.0.0.1:4567/approve/0123456789abcdef0123456789abcdef\n"), "{data}");
        // Nothing listens there any more: a transient error.
        let down = Mailer::new(SmtpSettings { port, timeout: Duration::from_secs(2), ..SmtpSettings::default() });
        assert!(matches!(down.send(&mail).await, Err(MailError::Send(_))));
    }
}
