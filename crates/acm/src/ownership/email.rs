//! Email validation's rules: who gets the approval mail, and the approval tokens its link
//! carries.
//!
//! ## Tokens
//!
//! A token is 16 random bytes (128 bits) as hex, so it cannot be guessed. Only its SHA-256
//! is stored (row [`TOKEN_KIND`], id = the hash), with the certificate and domain it
//! approves and its expiry: someone reading the database cannot approve anything. A token is
//! single-use: approving deletes its row in the same batch that marks the domain validated.
//!
//! Sending the mail is `carapace-checks`' [`Mailer`](crate::ownership::Mailer); see
//! [`carapace_checks::email`] for why a send repeated after a crash is the same message.

use crate::ownership::MailError;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
