//! [`SmtpMailer`]: approval mail through a configured SMTP relay, with lettre.

use lettre::message::Body;
use lettre::message::Mailbox;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::transport::smtp::client::Tls;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{ApprovalMail, MailError, Mailer, SmtpSettings};

/// Sends approval mail through the relay.
#[derive(Debug, Clone)]
pub struct SmtpMailer {
    settings: SmtpSettings,
}

impl SmtpMailer {
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
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &ApprovalMail) -> Result<(), MailError> {
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
    use std::time::Duration;

    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

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
        let mailer = SmtpMailer::new(SmtpSettings { port, ..SmtpSettings::default() });
        let mail = ApprovalMail {
            to: vec!["admin@example.com".into(), "webmaster@example.com".into()],
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
        let down = SmtpMailer::new(SmtpSettings { port, timeout: Duration::from_secs(2), ..SmtpSettings::default() });
        assert!(matches!(down.send(&mail).await, Err(MailError::Send(_))));
    }
}
