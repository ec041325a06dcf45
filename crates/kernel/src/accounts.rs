//! Accounts and their access keys.
//!
//! An account is a 12-digit id; it exists when it has a key. Keys are rows of kind
//! [`KIND`] in the global scope, keyed by access key id. The secret is needed in clear to
//! verify SigV4 (an HMAC), so it is stored sealed under the master key, bound to its key id.

use std::sync::Arc;

use carapace_store::{Key, Row, Scan, Store, Write};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::clock::Clock;
use crate::crypto::MasterKey;

/// Row kind of access keys.
pub const KIND: &str = "iam.access-key";

/// Errors managing keys.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The account id is not 12 digits.
    #[error("account id must be 12 digits, got {0:?}")]
    BadAccountId(String),
    /// No such key.
    #[error("no access key {0}")]
    NoSuchKey(String),
    /// The stored secret could not be read or decrypted (wrong master key?).
    #[error("the secret of access key {key} could not be decrypted; is this the master key the data was written with?")]
    Unsealable {
        /// The access key id.
        key: String,
        /// What failed: the stored row, its base64, the decryption or the secret's UTF-8.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The new secret could not be sealed.
    #[error("sealing the secret failed")]
    Seal(#[source] crate::crypto::CryptoError),
    /// The new key's row does not encode.
    #[error("the access key does not encode")]
    Encode(#[from] crate::stored::RecordError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] carapace_store::Error),
}

/// A stored access key, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessKeyInfo {
    /// The access key id, `AKIA` + 16 characters.
    pub access_key_id: String,
    /// The account the key acts as.
    pub account_id: String,
    /// Creation time, Unix milliseconds.
    pub created_ms: i64,
}

/// A freshly created key: the only time the secret is handed out.
pub struct NewAccessKey {
    /// Id and account.
    pub info: AccessKeyInfo,
    /// The secret access key.
    pub secret: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    account_id: String,
    /// Base64 of the sealed secret.
    sealed_secret: String,
}

/// Manages access keys.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    master: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
}

impl Accounts {
    /// Access keys over this store, sealed with this master key.
    pub fn new(store: Arc<dyn Store>, master: Arc<MasterKey>, clock: Arc<dyn Clock>) -> Self {
        Self { store, master, clock }
    }

    /// Creates a key for `account_id`.
    pub async fn create_key(&self, account_id: &str) -> Result<NewAccessKey, AccountError> {
        if !is_account_id(account_id) {
            return Err(AccountError::BadAccountId(account_id.to_owned()));
        }
        let access_key_id = format!("AKIA{}", random_chars(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"));
        let secret =
            Zeroizing::new(random_chars(40, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"));
        let sealed = self.master.seal(secret.as_bytes(), access_key_id.as_bytes()).map_err(AccountError::Seal)?;
        use base64::Engine as _;
        let stored = StoredKey {
            account_id: account_id.to_owned(),
            sealed_secret: base64::engine::general_purpose::STANDARD.encode(sealed),
        };
        let created_ms = self.clock.now_ms();
        let body = crate::stored::encode("access key", &stored)?;
        self.store
            .apply(vec![Write::Put {
                row: Row { key: Key::new(KIND, "", &access_key_id), version: 0, created_ms, body },
                expect: None,
            }])
            .await?;
        Ok(NewAccessKey {
            info: AccessKeyInfo { access_key_id, account_id: account_id.to_owned(), created_ms },
            secret,
        })
    }

    /// Every key, oldest first.
    pub async fn list_keys(&self) -> Result<Vec<AccessKeyInfo>, AccountError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let rows = self
                .store
                .scan(Scan { kind: KIND, scope: "", id_prefix: None, after, order: Default::default(), limit: 500 })
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some(carapace_store::Cursor { created_ms: last.created_ms, id: last.key.id.clone() });
            for row in &rows {
                if let Ok(stored) = serde_json::from_slice::<StoredKey>(&row.body) {
                    out.push(AccessKeyInfo {
                        access_key_id: row.key.id.clone(),
                        account_id: stored.account_id,
                        created_ms: row.created_ms,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Deletes a key; requests signed with it fail from then on.
    pub async fn revoke_key(&self, access_key_id: &str) -> Result<(), AccountError> {
        let key = Key::new(KIND, "", access_key_id);
        let row = self.store.get(&key).await?.ok_or_else(|| AccountError::NoSuchKey(access_key_id.to_owned()))?;
        self.store.apply(vec![Write::Delete { key, expect: row.version }]).await?;
        Ok(())
    }

    /// The account and secret of a key, for signature verification.
    pub async fn lookup(&self, access_key_id: &str) -> Result<Option<(String, Zeroizing<String>)>, AccountError> {
        let Some(row) = self.store.get(&Key::new(KIND, "", access_key_id)).await? else {
            return Ok(None);
        };
        let unsealable = |source: Box<dyn std::error::Error + Send + Sync>| AccountError::Unsealable {
            key: access_key_id.to_owned(),
            source,
        };
        let stored: StoredKey = serde_json::from_slice(&row.body).map_err(|e| unsealable(e.into()))?;
        use base64::Engine as _;
        let sealed =
            base64::engine::general_purpose::STANDARD.decode(stored.sealed_secret).map_err(|e| unsealable(e.into()))?;
        let secret = self.master.open(&sealed, access_key_id.as_bytes()).map_err(|e| unsealable(e.into()))?;
        // The UTF-8 error alone: a `FromUtf8Error` would carry the secret's bytes.
        let secret = String::from_utf8(secret.to_vec()).map_err(|e| unsealable(e.utf8_error().into()))?;
        Ok(Some((stored.account_id, Zeroizing::new(secret))))
    }
}

/// True for a 12-digit account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A fresh random 12-digit account id (never starting with 0, so it is not mistaken for
/// the emulator's `000000000000`).
pub fn random_account_id() -> String {
    let mut s = random_chars(1, b"123456789");
    s.push_str(&random_chars(11, b"0123456789"));
    s
}

/// `n` characters drawn uniformly from `alphabet` with the system CSPRNG.
fn random_chars(n: usize, alphabet: &[u8]) -> String {
    let mut out = String::with_capacity(n);
    // Rejection sampling keeps the distribution uniform for alphabets that don't divide 256.
    let limit = 256 - (256 % alphabet.len());
    while out.len() < n {
        let mut buf = [0u8; 64];
        if aws_lc_rs::rand::fill(&mut buf).is_err() {
            continue;
        }
        for b in buf {
            if out.len() == n {
                break;
            }
            if usize::from(b) < limit {
                out.push(char::from(alphabet[usize::from(b) % alphabet.len()]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!(is_account_id("123456789012"));
        assert!(!is_account_id("12345678901"));
        assert!(!is_account_id("12345678901x"));
        for _ in 0..100 {
            let id = random_account_id();
            assert!(is_account_id(&id), "{id}");
            assert_ne!(&id[..1], "0");
        }
    }

    #[test]
    fn random_chars_stay_in_alphabet() {
        let s = random_chars(1000, b"AB");
        assert_eq!(s.len(), 1000);
        assert!(s.bytes().all(|b| b == b'A' || b == b'B'));
        assert!(s.contains('A') && s.contains('B'));
    }
}
