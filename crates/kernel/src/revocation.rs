//! Which certificates the CA has issued and revoked, for its CRLs and its OCSP answers.
//!
//! Issuing writes a row of kind [`ISSUED_KIND`] and revoking one of kind [`KIND`], each in
//! the same batch that stores the certificate's new state: scope the issuing intermediate's
//! id (the leaf's authority key identifier, as in the `/crl/<id>.crl` URL), id the serial
//! number in hex without leading zero bytes. Rows are global, not per account: a CRL lists
//! every account's revocations, and OCSP answers for any certificate the CA issued.

use carapace_store::{Cursor, Key, Order, Row, Scan, Store, Write};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::ca::{CertificateAuthority, OcspRequest, OcspStatus, RevokedSerial};

/// Row kind of revocations.
pub const KIND: &str = "ca.revocation";
/// Row kind of issued serials (OCSP says `good` only for serials the CA issued).
pub const ISSUED_KIND: &str = "ca.issued";

/// How long a CRL is current (`nextUpdate - thisUpdate`): how long a relying party may cache
/// one. Carapace serves a new one as soon as a revocation is written ([`CrlCache`]).
pub const CRL_VALIDITY: time::Duration = time::Duration::hours(24);

/// How long an OCSP answer is current (`nextUpdate - thisUpdate`).
pub const OCSP_VALIDITY: time::Duration = time::Duration::hours(1);

/// Listing page size when building a CRL.
const PAGE: usize = 1_000;

#[derive(Debug, Deserialize)]
struct Stored {
    revoked_ms: i64,
    #[serde(default)]
    reason_code: Option<u8>,
}

impl Stored {
    /// The row body, `{"revoked_ms":…,"reason_code":…}` (no `reason_code` when none).
    /// Built as a JSON value, whose text form cannot fail, so [`record`] stays infallible
    /// without any encoding error to lose.
    fn body(&self) -> Vec<u8> {
        let mut fields = serde_json::Map::new();
        fields.insert("revoked_ms".to_owned(), self.revoked_ms.into());
        if let Some(code) = self.reason_code {
            fields.insert("reason_code".to_owned(), code.into());
        }
        serde_json::Value::Object(fields).to_string().into_bytes()
    }
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
    let body = Stored { revoked_ms, reason_code }.body();
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

/// A fresh CRL (DER) for the issuer `issuer_id` — an intermediate, or the root, whose CRL
/// would list revoked intermediates (Carapace revokes none, so it is empty) — or `None` when
/// the CA signs no CRL under that id. Its CRL number is `now` in milliseconds, so it grows
/// with every CRL.
pub async fn crl(
    store: &dyn Store,
    ca: &CertificateAuthority,
    issuer_id: &str,
    now: OffsetDateTime,
) -> Result<Option<Vec<u8>>, RevocationError> {
    if !ca.signs_crl(issuer_id) {
        return Ok(None);
    }
    let revoked = revoked(store, issuer_id).await?;
    let number = u64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let der = ca
        .sign_crl(issuer_id, &revoked, number, now, now + CRL_VALIDITY)
        .map_err(|source| RevocationError::Sign { what: "the CRL", source })?;
    Ok(Some(der))
}

/// Signed CRLs, kept per issuer (intermediate or root) so that a flood of unauthenticated
/// `GET /crl/...` costs no signatures.
///
/// A kept CRL is served until a revocation is written under its intermediate or it is
/// `refresh` old. Revocation rows are only ever inserted, so their count changes exactly
/// when a revocation is written — on this node or any other sharing the database — and one
/// `COUNT` per request is all it takes to know the kept CRL is still complete. At most one
/// CRL is signed at a time; requests that arrive meanwhile wait and take the fresh one.
pub struct CrlCache {
    refresh: time::Duration,
    kept: std::sync::Mutex<std::collections::HashMap<String, Kept>>,
    signing: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Kept {
    der: bytes::Bytes,
    revocations: u64,
    signed_at: OffsetDateTime,
}

impl CrlCache {
    /// A cache that re-signs a CRL once it is `refresh` old (`ZERO`: for every request).
    pub fn new(refresh: time::Duration) -> Self {
        Self { refresh, kept: std::sync::Mutex::default(), signing: tokio::sync::Mutex::new(()) }
    }

    /// The current CRL (DER) of the issuer `issuer_id` (an intermediate or the root), or
    /// `None` when the CA signs no CRL under that id.
    pub async fn get(
        &self,
        store: &dyn Store,
        ca: &CertificateAuthority,
        issuer_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<bytes::Bytes>, RevocationError> {
        // Only the CA's own issuers are kept: the map's keys are not the caller's.
        if !ca.signs_crl(issuer_id) {
            return Ok(None);
        }
        let revocations = store.count(KIND, issuer_id, i64::MIN).await?;
        if let Some(der) = self.fresh(issuer_id, revocations, now) {
            return Ok(Some(der));
        }
        let _turn = self.signing.lock().await;
        // Another request may have signed while this one waited.
        let revocations = store.count(KIND, issuer_id, i64::MIN).await?;
        if let Some(der) = self.fresh(issuer_id, revocations, now) {
            return Ok(Some(der));
        }
        let Some(der) = crl(store, ca, issuer_id, now).await? else { return Ok(None) };
        let der = bytes::Bytes::from(der);
        let kept = Kept { der: der.clone(), revocations, signed_at: now };
        self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(issuer_id.to_owned(), kept);
        Ok(Some(der))
    }

    fn fresh(&self, issuer_id: &str, revocations: u64, now: OffsetDateTime) -> Option<bytes::Bytes> {
        let kept = self.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let kept = kept.get(issuer_id)?;
        (kept.revocations == revocations && now < kept.signed_at + self.refresh && now >= kept.signed_at)
            .then(|| kept.der.clone())
    }
}

/// The status of the certificate one OCSP query asks about: `revoked` when a revocation row
/// names its serial under the intermediate of its CertID, `good` when the CA issued it, else
/// `unknown` (a certificate of another CA, or a serial never issued).
pub async fn ocsp_status(
    store: &dyn Store,
    intermediate_id: &str,
    serial: &[u8],
) -> Result<OcspStatus, carapace_store::Error> {
    if let Some(revoked) = status(store, intermediate_id, serial).await? {
        return Ok(OcspStatus::Revoked { at: revoked.revoked_at, reason_code: revoked.reason_code });
    }
    Ok(if was_issued(store, intermediate_id, serial).await? { OcspStatus::Good } else { OcspStatus::Unknown })
}

/// Signed OCSP answers, kept per CertID so that relying parties asking again and again
/// about the same certificate cost one `COUNT` each, not two reads and a signature.
///
/// An answer is kept only when every request with the same CertID gets the same bytes (no
/// nonce: [`OcspRequest::answer_key`]) and it says `good` or `revoked` (an `unknown` serial
/// may be issued a moment later). It is served while no revocation has been written under
/// its intermediate since it was signed (the revocation count, as for [`CrlCache`]: one
/// revocation on any node re-signs every answer of that intermediate, which is rare and
/// cheap) and for half of [`OCSP_VALIDITY`], so that no relying party is handed an answer
/// near its `nextUpdate`.
pub struct OcspCache {
    kept: moka::sync::Cache<Vec<u8>, KeptAnswer>,
}

#[derive(Clone)]
struct KeptAnswer {
    der: bytes::Bytes,
    revocations: u64,
    signed_at: OffsetDateTime,
}

impl OcspCache {
    /// A cache of at most `capacity` answers.
    pub fn new(capacity: u64) -> Self {
        Self { kept: moka::sync::Cache::new(capacity) }
    }

    /// The signed answer (an `OCSPResponse`, DER) to a parsed request with one CertID.
    pub async fn answer(
        &self,
        store: &dyn Store,
        ca: &CertificateAuthority,
        request: &OcspRequest,
        now: OffsetDateTime,
    ) -> Result<bytes::Bytes, RevocationError> {
        let sign = |status: OcspStatus| {
            ca.ocsp_response(request, &[status], now, OCSP_VALIDITY)
                .map_err(|source| RevocationError::Sign { what: "the OCSP response", source })
        };
        let Some(query) = request.queries.first() else { return Err(RevocationError::NoCertId) };
        // A CertID naming no intermediate of ours is answered `unauthorized`, unsigned.
        let Some(issuer) = query.intermediate_id.as_deref() else { return sign(OcspStatus::Unknown).map(Into::into) };
        let key = request.answer_key();
        // Counted before the status is read: a revocation landing in between leaves the kept
        // answer with the older count, and the next request signs again.
        let revocations = match &key {
            Some(_) => Some(store.count(KIND, issuer, i64::MIN).await?),
            None => None,
        };
        if let (Some(key), Some(revocations)) = (&key, revocations)
            && let Some(kept) = self.kept.get(key)
            && kept.revocations == revocations
            && now >= kept.signed_at
            && now < kept.signed_at + OCSP_VALIDITY / 2
        {
            return Ok(kept.der);
        }
        let status = ocsp_status(store, issuer, &query.serial).await?;
        let der = bytes::Bytes::from(sign(status)?);
        if let (Some(key), Some(revocations)) = (key, revocations)
            && status != OcspStatus::Unknown
        {
            self.kept.insert(key, KeptAnswer { der: der.clone(), revocations, signed_at: now });
        }
        Ok(der)
    }
}

/// Records a certificate Carapace signed for itself outside ACM (the approval page's, the
/// edge's default), so OCSP answers `good` for it as for every other.
pub async fn record_self_issued(
    store: &dyn Store,
    issued: &crate::ca::IssuedCertificate,
    now_ms: i64,
) -> Result<(), RevocationError> {
    let serial =
        serial_from_display(&issued.serial_hex).ok_or_else(|| RevocationError::Serial(issued.serial_hex.clone()))?;
    store.apply(vec![record_issued(&issued.intermediate_id, &serial, now_ms)]).await?;
    Ok(())
}

/// Why a CRL or an OCSP answer could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] carapace_store::Error),
    /// Signing failed.
    #[error("signing {what}")]
    Sign {
        /// What was being signed.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: crate::ca::CaError,
    },
    /// An OCSP request without a CertID reached the signer.
    #[error("an OCSP request without a CertID")]
    NoCertId,
    /// A serial as ACM displays it did not read as hex.
    #[error("unreadable serial {0}")]
    Serial(String),
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the real clock where no clock is injected
mod tests {
    use super::*;
    use crate::ca::CertificateAuthority;
    use crate::crypto::MasterKey;

    /// A recorded revocation decodes to what was recorded, with and without a reason.
    #[test]
    fn recorded_revocations_decode() {
        for reason_code in [None, Some(1)] {
            let Write::Put { row, .. } = record("int", &[0, 0x0a, 0x1b], 1_700_000_000_123, reason_code) else {
                panic!("a revocation is a put");
            };
            let revoked = decode(&row).unwrap();
            assert_eq!(revoked.serial, [0x0a, 0x1b]);
            assert_eq!(revoked.revoked_at.unix_timestamp_nanos(), 1_700_000_000_123_000_000);
            assert_eq!(revoked.reason_code, reason_code);
        }
        let Write::Put { row, .. } = record("int", &[1], 5, None) else { panic!("a revocation is a put") };
        assert_eq!(row.body, br#"{"revoked_ms":5}"#);
    }

    /// A CRL is signed once per revocation (or refresh), not per GET.
    #[tokio::test]
    async fn a_kept_crl_is_served_until_a_revocation_or_its_refresh() {
        let t0 = OffsetDateTime::now_utc();
        let master = MasterKey::generate().unwrap();
        let (ca, _) =
            CertificateAuthority::generate(&crate::ca::CaProfile::new("Test", "http://127.0.0.1:4566"), t0, &master)
                .unwrap();
        let store = carapace_store::sqlite::SqliteStore::open_in_memory().unwrap();
        let id = ca.intermediates()[0].id.clone();
        let cache = CrlCache::new(time::Duration::hours(1));
        let at = |secs: i64| t0 + time::Duration::seconds(secs);
        let first = cache.get(&store, &ca, &id, at(0)).await.unwrap().unwrap();
        // A CRL signed later would differ (its number and thisUpdate are the signing time).
        assert_eq!(cache.get(&store, &ca, &id, at(60)).await.unwrap().unwrap(), first, "kept");
        store.apply(vec![record(&id, &[0x0a, 0x1b], at(61).unix_timestamp() * 1000, Some(1))]).await.unwrap();
        let revoked = cache.get(&store, &ca, &id, at(62)).await.unwrap().unwrap();
        assert_ne!(revoked, first, "a revocation is listed at once");
        assert_eq!(cache.get(&store, &ca, &id, at(63)).await.unwrap().unwrap(), revoked);
        assert_ne!(cache.get(&store, &ca, &id, at(62 + 3_600)).await.unwrap().unwrap(), revoked, "refreshed");
        assert_eq!(cache.get(&store, &ca, "00", at(0)).await.unwrap(), None, "unknown intermediates are not kept");
        let every_time = CrlCache::new(time::Duration::ZERO);
        let one = every_time.get(&store, &ca, &id, at(0)).await.unwrap().unwrap();
        assert_ne!(every_time.get(&store, &ca, &id, at(1)).await.unwrap().unwrap(), one, "refresh 0 signs every time");
    }
}
