//! What a user must publish to prove control of a domain: the DNS CNAME, the HTTP redirect
//! and the approval addresses. (Checking them is the validation workers' job.)
//!
//! ## DNS records
//!
//! ACM's record for a domain is a CNAME named `_<32 hex>.<domain>.` pointing at
//! `_<32 hex>.<10 letters>.<validation zone>.`. Both parts are HMAC-SHA256 of the account and
//! the domain under a server secret, so:
//! - the same domain in the same account gets the same record on every certificate and in
//!   every region (a record left in place validates the next certificate at once, as in ACM);
//! - a wildcard `*.example.com` uses the record of `example.com`;
//! - different accounts and domains get unrelated records, and nobody can predict another
//!   account's record without the secret.
//!
//! The secret is 32 random bytes generated on first use and stored sealed under the master
//! key (row [`SECRET_KIND`]), so every node of a cluster derives the same records.

use aws_lc_rs::hmac;
use base64::Engine as _;
use carapace_store::{Key, Row, Store, Write};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::error::AcmError;
use super::names::base_domain;
use carapace_kernel::crypto::MasterKey;

/// Row kind of the validation secret (one row, global scope, id [`SECRET_ID`]).
pub const SECRET_KIND: &str = "acm.validation-secret";
/// Id of the validation secret row.
pub const SECRET_ID: &str = "v1";
/// The zone validation CNAMEs point into. Clearly Carapace's own, never a real AWS name.
pub const VALIDATION_ZONE: &str = "acm-validations.carapace.internal";

/// A CNAME the owner of a domain publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// `_<32 hex>.<domain>.`
    pub name: String,
    /// `_<32 hex>.<10 letters>.<zone>.`
    pub value: String,
}

/// An HTTP redirect for HTTP validation (CloudFront-managed certificates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRedirect {
    /// `http://<domain>/.well-known/pki-validation/<token>.txt`
    pub redirect_from: String,
    /// Where Carapace serves the expected content.
    pub redirect_to: String,
}

/// The server secret records are derived from.
pub struct ValidationSecret(Zeroizing<[u8; 32]>);

#[derive(Serialize, Deserialize)]
struct StoredSecret {
    sealed: String,
}

impl ValidationSecret {
    /// A secret from raw bytes (tests).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Loads the secret, creating and storing it on first use. When two nodes create it at
    /// once, the loser of the insert reads the winner's.
    pub async fn load_or_create(store: &dyn Store, master: &MasterKey, now_ms: i64) -> Result<Self, AcmError> {
        let key = Key::new(SECRET_KIND, "", SECRET_ID);
        let aad = format!("{SECRET_KIND}/{SECRET_ID}");
        if let Some(row) = store.get(&key).await? {
            return Self::open(&row, master, &aad);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut()).map_err(AcmError::fault("drawing the validation secret"))?;
        let stored = StoredSecret {
            sealed: base64::engine::general_purpose::STANDARD.encode(
                master
                    .seal(bytes.as_ref(), aad.as_bytes())
                    .map_err(AcmError::fault("sealing the validation secret"))?,
            ),
        };
        let body = carapace_kernel::stored::encode("validation secret", &stored)?;
        let row = Row { key: key.clone(), version: 0, created_ms: now_ms, body };
        match store.apply(vec![Write::Put { row, expect: None }]).await {
            Ok(_) => Ok(Self(bytes)),
            Err(carapace_store::Error::Conflict(_)) => {
                let row =
                    store.get(&key).await?.ok_or_else(|| AcmError::Internal("validation secret vanished".into()))?;
                Self::open(&row, master, &aad)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn open(row: &Row, master: &MasterKey, aad: &str) -> Result<Self, AcmError> {
        let stored: StoredSecret = carapace_kernel::stored::decode("validation secret", &row.body)?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(stored.sealed)
            .map_err(AcmError::fault("validation secret"))?;
        let opened = master.open(&sealed, aad.as_bytes()).map_err(AcmError::fault("validation secret"))?;
        let bytes: [u8; 32] = opened
            .as_slice()
            .try_into()
            .map_err(|_| AcmError::Internal("validation secret has the wrong length".into()))?;
        Ok(Self(Zeroizing::new(bytes)))
    }

    fn mac(&self, purpose: &str, account: &str, domain: &str) -> hmac::Tag {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.0.as_ref());
        let mut ctx = hmac::Context::with_key(&key);
        // NUL separators: no (purpose, account, domain) triple can collide with another.
        for part in [purpose, account, domain] {
            ctx.update(part.as_bytes());
            ctx.update(&[0]);
        }
        ctx.sign()
    }

    /// The DNS record for `domain` in `account` (a wildcard uses its base domain's record).
    pub fn dns_record(&self, account: &str, domain: &str) -> ResourceRecord {
        let base = base_domain(domain);
        let name = self.mac("cname-name", account, base);
        let value = self.mac("cname-value", account, base);
        let letters: String = value.as_ref()[16..26].iter().map(|b| char::from(b'a' + b % 26)).collect();
        ResourceRecord {
            name: format!("_{}.{base}.", hex::encode(&name.as_ref()[..16])),
            value: format!("_{}.{letters}.{VALIDATION_ZONE}.", hex::encode(&value.as_ref()[..16])),
        }
    }

    /// The token in `domain`'s HTTP validation URLs (32 hex digits; a wildcard uses its base
    /// domain's).
    fn http_token(&self, account: &str, domain: &str) -> String {
        hex::encode(&self.mac("http-token", account, base_domain(domain)).as_ref()[..16])
    }

    /// The HTTP redirect for `domain` in `account`, served under `base_url`.
    pub fn http_redirect(&self, account: &str, domain: &str, base_url: &str) -> HttpRedirect {
        let base = base_domain(domain);
        let token = self.http_token(account, domain);
        HttpRedirect {
            redirect_from: format!("http://{base}/.well-known/pki-validation/{token}.txt"),
            redirect_to: format!(
                "{}/acm-validations/{account}/.well-known/pki-validation/{token}.txt",
                base_url.trim_end_matches('/')
            ),
        }
    }

    /// The approval token of one mail send (`send_id` names certificate, domain and send):
    /// 128 bits as 32 hex digits. Derived rather than random so a send repeated after a
    /// crash carries the same token; unguessable without the secret.
    pub fn approval_token(&self, send_id: &str) -> String {
        hex::encode(&self.mac("approval-token", "", send_id).as_ref()[..16])
    }

    /// The content expected at an HTTP validation URL.
    pub fn http_content(&self, account: &str, domain: &str) -> String {
        self.http_content_for_token(account, &self.http_token(account, domain))
    }

    /// The content served at `RedirectTo` for the URL token `token` of `account`. Derived
    /// from the token (not the domain) so the page that serves it needs no lookup: the URL
    /// alone names the content, and nobody can compute it without the secret.
    pub fn http_content_for_token(&self, account: &str, token: &str) -> String {
        hex::encode(self.mac("http-content", account, &token.to_ascii_lowercase()).as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_have_acms_shape_and_are_stable() {
        let s = ValidationSecret::from_bytes([7; 32]);
        let r = s.dns_record("123456789012", "www.example.com");
        let name = r.name.strip_suffix(".www.example.com.").unwrap();
        assert_eq!(name.len(), 33);
        assert!(name.starts_with('_') && name[1..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let value = r.value.strip_suffix(&format!(".{VALIDATION_ZONE}.")).unwrap();
        let (hash, letters) = value.split_once('.').unwrap();
        assert_eq!(hash.len(), 33);
        assert_eq!(letters.len(), 10);
        assert!(letters.bytes().all(|b| b.is_ascii_lowercase()));
        assert_eq!(s.dns_record("123456789012", "www.example.com"), r, "deterministic");
    }

    #[test]
    fn wildcard_shares_the_base_record_and_accounts_differ() {
        let s = ValidationSecret::from_bytes([1; 32]);
        assert_eq!(s.dns_record("123456789012", "*.example.com"), s.dns_record("123456789012", "example.com"));
        assert_ne!(s.dns_record("111111111111", "example.com"), s.dns_record("222222222222", "example.com"));
        assert_ne!(s.dns_record("111111111111", "a.example.com"), s.dns_record("111111111111", "b.example.com"));
        let other = ValidationSecret::from_bytes([2; 32]);
        assert_ne!(other.dns_record("123456789012", "example.com"), s.dns_record("123456789012", "example.com"));
    }

    #[test]
    fn http_redirects() {
        let s = ValidationSecret::from_bytes([3; 32]);
        let r = s.http_redirect("123456789012", "*.example.com", "https://carapace.test/");
        assert!(r.redirect_from.starts_with("http://example.com/.well-known/pki-validation/"));
        assert!(r.redirect_to.starts_with("https://carapace.test/acm-validations/123456789012/"));
        assert_eq!(s.http_content("1", "a.com").len(), 64);
        // What `RedirectTo` serves is what the check expects.
        let token = r.redirect_to.rsplit('/').next().unwrap().strip_suffix(".txt").unwrap();
        assert_eq!(s.http_content_for_token("123456789012", token), s.http_content("123456789012", "example.com"));
        assert_ne!(s.http_content_for_token("111111111111", token), s.http_content("123456789012", "example.com"));
    }

    #[tokio::test]
    async fn secret_is_created_once_and_reloaded() {
        let store = carapace_store::sqlite::SqliteStore::open_in_memory().unwrap();
        let master = MasterKey::generate().unwrap();
        let a = ValidationSecret::load_or_create(&store, &master, 1).await.unwrap();
        let b = ValidationSecret::load_or_create(&store, &master, 2).await.unwrap();
        assert_eq!(a.dns_record("1", "x.com"), b.dns_record("1", "x.com"));
        let row = store.get(&Key::new(SECRET_KIND, "", SECRET_ID)).await.unwrap().unwrap();
        assert!(!row.body.windows(32).any(|w| w == a.0.as_ref()), "stored sealed");
    }
}
