//! Get/PutAccountConfiguration: the account's expiry-event settings.
//!
//! PutAccountConfiguration carries an idempotency token: within an hour, a call with a token
//! already used is "the same request" and changes nothing (ACM: it returns the original
//! result), even if its value differs.

use carapace_store::{Key, Row, Write};
use serde::{Deserialize, Serialize};

use super::request::IDEMPOTENCY_KIND;
use super::{AcmError, CertificateManager, IDEMPOTENCY_WINDOW_MS, Owner};
use carapace_kernel::retry::commit;

/// Row kind of account configuration (`<scope>`, id `config`).
pub const CONFIG_KIND: &str = "acm.account-config";
/// ACM's default: expiry events start 45 days before expiry.
pub const DEFAULT_DAYS_BEFORE_EXPIRY: u32 = 45;

/// An account's ACM configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountConfiguration {
    /// Days before expiry when expiry events start.
    pub days_before_expiry: u32,
}

impl Default for AccountConfiguration {
    fn default() -> Self {
        Self { days_before_expiry: DEFAULT_DAYS_BEFORE_EXPIRY }
    }
}

impl CertificateManager {
    /// GetAccountConfiguration.
    pub async fn account_configuration(&self, owner: &Owner) -> Result<AccountConfiguration, AcmError> {
        match self.core.store.get(&Key::new(CONFIG_KIND, owner.scope(), "config")).await? {
            Some(row) => Ok(carapace_kernel::stored::decode("account configuration", &row.body)?),
            None => Ok(AccountConfiguration::default()),
        }
    }

    /// PutAccountConfiguration. `days_before_expiry` must be 1..=45 (ACM's range).
    ///
    /// Without it (no `ExpiryEvents`, or an empty one) ACM refuses the call and changes
    /// nothing: its message is recorded in getmoto/moto's `tests/test_acm/test_acm.py`,
    /// `test_put_account_configuration_without_parameters` (marked `aws_verified`). That
    /// recording omits `ExpiryEvents`; an empty `ExpiryEvents` gets the same answer here
    /// because it configures no more.
    pub async fn put_account_configuration(
        &self,
        owner: &Owner,
        days_before_expiry: Option<u32>,
        idempotency_token: &str,
    ) -> Result<(), AcmError> {
        let Some(days) = days_before_expiry else {
            return Err(AcmError::Validation("Configuration for events is empty.".into()));
        };
        if !(1..=DEFAULT_DAYS_BEFORE_EXPIRY).contains(&days) {
            return Err(AcmError::Validation(format!(
                "DaysBeforeExpiry must be between 1 and {DEFAULT_DAYS_BEFORE_EXPIRY}; got {days}."
            )));
        }
        let scope = owner.scope();
        let store = self.core.store.as_ref();
        let token_key = Key::new(IDEMPOTENCY_KIND, &scope, format!("account-config/{idempotency_token}"));
        let config_key = Key::new(CONFIG_KIND, &scope, "config");
        let busy =
            || AcmError::Conflict("The account configuration is being changed by another request; try again.".into());
        carapace_kernel::optimistic!(AcmError, busy(), |_| {
            let now = self.now_ms();
            let token = store.get(&token_key).await?;
            let token_expect = match &token {
                Some(row) => {
                    let at: i64 = carapace_kernel::stored::decode("idempotency token", &row.body)?;
                    if now < at + IDEMPOTENCY_WINDOW_MS {
                        return Ok(Some(())); // the same request again
                    }
                    Some(row.version)
                }
                None => None,
            };
            let current = store.get(&config_key).await?;
            let mut config = match &current {
                Some(row) => carapace_kernel::stored::decode("account configuration", &row.body)?,
                None => AccountConfiguration::default(),
            };
            config.days_before_expiry = days;
            let body = carapace_kernel::stored::encode("account configuration", &config)?;
            let token_body = carapace_kernel::stored::encode("idempotency token", &now)?;
            let writes = vec![
                Write::Put {
                    row: Row { key: config_key.clone(), version: 0, created_ms: now, body },
                    expect: current.map(|r| r.version),
                },
                Write::Put {
                    row: Row { key: token_key.clone(), version: 0, created_ms: now, body: token_body },
                    expect: token_expect,
                },
            ];
            Ok(commit(store, writes).await?.then_some(()))
        })
    }
}
