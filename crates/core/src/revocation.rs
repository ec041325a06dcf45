//! Which certificates the CA has issued and revoked, for its CRLs and its OCSP answers.
//!
//! Issuing writes a row of kind [`ISSUED_KIND`] and revoking one of kind [`KIND`], each in
//! the same batch that stores the certificate's new state: scope the issuing intermediate's
//! id (the leaf's authority key identifier, as in the `/crl/<id>.crl` URL), id the serial
//! number in hex without leading zero bytes. Rows are global, not per account: a CRL lists
//! every account's revocations, and OCSP answers for any certificate the CA issued.

use carapace_store::{Cursor, Key, Order, Row, Scan, Store, Write};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ca::{CertificateAuthority, RevokedSerial};

/// Row kind of revocations.
pub const KIND: &str = "ca.revocation";
/// Row kind of issued serials (OCSP says `good` only for serials the CA issued).
pub const ISSUED_KIND: &str = "ca.issued";

/// How long a CRL is current (`nextUpdate - thisUpdate`). A CRL is signed afresh for every
/// request, so a revocation is listed at once; this bounds how long a relying party may
/// cache one.
pub const CRL_VALIDITY: time::Duration = time::Duration::hours(24);

/// Listing page size when building a CRL.
const PAGE: usize = 1_000;

#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    revoked_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason_code: Option<u8>,
}

/// A serial number's id: its magnitude (leading zero bytes dropped), lower-case hex.
pub fn serial_id(serial: &[u8]) -> String {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    hex::encode(&serial[start..])
}

/// Parses ACM's `0a:1b:...` serial display into bytes.
pub fn serial_from_display(display: &str) -> Option<Vec<u8>> {
    hex::decode(display.replace(':', "")).ok()
}

/// The write that records an issued serial (an insert: serials are random, 128 bits).
pub fn record_issued(intermediate_id: &str, serial: &[u8], issued_ms: i64) -> Write {
    let key = Key::new(ISSUED_KIND, intermediate_id, serial_id(serial));
    Write::Put { row: Row { key, version: 0, created_ms: issued_ms, body: Vec::new() }, expect: None }
}

/// Whether the CA issued this serial under this intermediate.
pub async fn was_issued(
    store: &dyn Store,
    intermediate_id: &str,
    serial: &[u8],
) -> Result<bool, carapace_store::Error> {
    Ok(store.get(&Key::new(ISSUED_KIND, intermediate_id, serial_id(serial))).await?.is_some())
}

/// The write that records a revocation (an insert: a serial is revoked once).
pub fn record(intermediate_id: &str, serial: &[u8], revoked_ms: i64, reason_code: Option<u8>) -> Write {
    let body = serde_json::to_vec(&Stored { revoked_ms, reason_code }).unwrap_or_default();
    let key = Key::new(KIND, intermediate_id, serial_id(serial));
    Write::Put { row: Row { key, version: 0, created_ms: revoked_ms, body }, expect: None }
}

fn decode(row: &Row) -> Result<RevokedSerial, carapace_store::Error> {
    let corrupt = || carapace_store::Error::Backend(format!("revocation {} does not decode", row.key));
    let stored: Stored = serde_json::from_slice(&row.body).map_err(|_| corrupt())?;
    let serial = hex::decode(&row.key.id).map_err(|_| corrupt())?;
    let revoked_at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(stored.revoked_ms) * 1_000_000).map_err(|_| corrupt())?;
    Ok(RevokedSerial { serial, revoked_at, reason_code: stored.reason_code })
}

/// The revocation of one serial, if it was revoked.
pub async fn status(
    store: &dyn Store,
    intermediate_id: &str,
    serial: &[u8],
) -> Result<Option<RevokedSerial>, carapace_store::Error> {
    match store.get(&Key::new(KIND, intermediate_id, serial_id(serial))).await? {
        Some(row) => decode(&row).map(Some),
        None => Ok(None),
    }
}

/// Every revocation under one intermediate, oldest first.
pub async fn revoked(store: &dyn Store, intermediate_id: &str) -> Result<Vec<RevokedSerial>, carapace_store::Error> {
    let mut all = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let scan =
            Scan { kind: KIND, scope: intermediate_id, id_prefix: None, after, order: Order::Ascending, limit: PAGE };
        let rows = store.scan(scan).await?;
        for row in &rows {
            all.push(decode(row)?);
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE => {
                after = Some(Cursor { created_ms: last.created_ms, id: last.key.id.clone() });
            }
            _ => return Ok(all),
        }
    }
}

/// A fresh CRL (DER) for the intermediate `intermediate_id`, or `None` when the CA has no
/// such intermediate. Its CRL number is `now` in milliseconds, so it grows with every CRL.
pub async fn crl(
    store: &dyn Store,
    ca: &CertificateAuthority,
    intermediate_id: &str,
    now: OffsetDateTime,
) -> Result<Option<Vec<u8>>, RevocationError> {
    if ca.intermediate_by_id(intermediate_id).is_none() {
        return Ok(None);
    }
    let revoked = revoked(store, intermediate_id).await?;
    let number = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let der = ca
        .sign_crl(intermediate_id, &revoked, number, now, now + CRL_VALIDITY)
        .map_err(|e| RevocationError::Sign(e.to_string()))?;
    Ok(Some(der))
}

/// Why a CRL could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] carapace_store::Error),
    /// Signing failed.
    #[error("signing the CRL: {0}")]
    Sign(String),
}
