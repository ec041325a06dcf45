//! The OCSP responder for private CAs whose `OcspConfiguration` is enabled: certificates
//! they issue name it in their authority information access (`http://<OcspCustomCname>`, or
//! Carapace's `<base_url>/pca/ocsp`), and it answers for every such CA, finding the CA by the
//! key hash in the request's CertID as AWS Private CA's shared responder does. Answers are
//! signed by the CA itself (RFC 6960 §4.2.2.2) and computed per request, so a revocation is
//! answered `revoked` as soon as RevokeCertificate returns.

use carapace_kernel::Owner;
use carapace_kernel::ca::{OcspFailure, OcspStatus, ocsp_failure, parse_ocsp_request};
use carapace_store::{Key, Row, Write};

use crate::records::{CaRecord, CaStatus, CertificateRecord, Issuance};
use crate::{CA_KIND, CERTIFICATE_KIND, PcaError, PrivateCas, Result, decode, time_of};

/// Row kind of the issuer index: scope `""`, id `<hash>/<hex of issuerKeyHash>` (`sha1`,
/// `sha256`), body `<scope> <CA id>`.
pub const ISSUER_KIND: &str = "pca.ocsp-issuer";

/// How long an answer may be relied on (nextUpdate − thisUpdate).
const ANSWER_VALIDITY: time::Duration = time::Duration::hours(1);

impl PrivateCas {
    /// The index writes that let the responder find CA `ca_id` of `owner` by the key hashes
    /// of its certificate `der`; none for hashes indexed already (a renewed certificate keeps
    /// its key).
    pub(crate) async fn issuer_writes(&self, owner: &Owner, ca_id: &str, der: &[u8], now: i64) -> Result<Vec<Write>> {
        let hashes = carapace_kernel::ca::ocsp_key_hashes(der).map_err(|e| PcaError::fault("a CA certificate", e))?;
        let body = format!("{} {ca_id}", owner.scope()).into_bytes();
        let mut writes = Vec::with_capacity(hashes.len());
        for (hash, value) in hashes {
            let key = Key::new(ISSUER_KIND, "", format!("{hash}/{}", hex::encode(value)));
            if self.core.store.get(&key).await?.is_none() {
                let row = Row { key, version: 0, created_ms: now, body: body.clone() };
                writes.push(Write::Put { row, expect: None });
            }
        }
        Ok(writes)
    }
}

/// The responder URL certificates of `ca` name, if its OCSP is enabled.
pub(crate) fn responder_url(ca: &CaRecord, base_url: &str) -> Option<String> {
    let ocsp = ca.revocation.ocsp.as_ref().filter(|o| o.enabled)?;
    Some(match ocsp.custom_cname.as_deref().filter(|c| !c.is_empty()) {
        Some(cname) => format!("http://{cname}"),
        None => format!("{}/pca/ocsp", base_url.trim_end_matches('/')),
    })
}

impl PrivateCas {
    /// Answers a DER `OCSPRequest`: a DER `OCSPResponse`, `unauthorized` for a CA that is not
    /// Carapace's, has OCSP disabled or is deleted.
    pub async fn ocsp(&self, request: &[u8]) -> Vec<u8> {
        match self.answer(request).await {
            Ok(answer) => answer,
            Err(Answered(failure)) => ocsp_failure(failure),
        }
    }

    async fn answer(&self, der: &[u8]) -> std::result::Result<Vec<u8>, Answered> {
        let request = parse_ocsp_request(der)?;
        let (hash, key_hash) = request.issuer_key_hash().ok_or(OcspFailure::Unauthorized)?;
        let index = Key::new(ISSUER_KIND, "", format!("{hash}/{}", hex::encode(key_hash)));
        let row = self.core.store.get(&index).await.map_err(internal)?.ok_or(OcspFailure::Unauthorized)?;
        let text = String::from_utf8_lossy(&row.body).into_owned();
        let (scope, ca_id) = text.split_once(' ').ok_or(OcspFailure::InternalError)?;
        let ca_row = self.core.store.get(&Key::new(CA_KIND, scope, ca_id)).await.map_err(internal)?;
        let ca_row = ca_row.ok_or(OcspFailure::Unauthorized)?;
        let ca: CaRecord = decode(&ca_row).map_err(internal)?;
        let enabled = ca.revocation.ocsp.as_ref().is_some_and(|o| o.enabled);
        if !enabled || ca.status == CaStatus::Deleted {
            return Err(OcspFailure::Unauthorized.into());
        }
        let mut statuses = Vec::with_capacity(request.queries.len());
        for query in &request.queries {
            let start = query.serial.iter().position(|b| *b != 0).unwrap_or(query.serial.len());
            let serial = hex::encode(&query.serial[start..]);
            let key = Key::new(CERTIFICATE_KIND, scope, format!("{ca_id}/{serial}"));
            let status = match self.core.store.get(&key).await.map_err(internal)? {
                None => OcspStatus::Unknown,
                Some(row) => {
                    let record: CertificateRecord = decode(&row).map_err(internal)?;
                    match (&record.issuance, record.revoked) {
                        (Issuance::Issued { .. }, Some(r)) => {
                            OcspStatus::Revoked { at: time_of(r.at_ms), reason_code: Some(r.reason) }
                        }
                        (Issuance::Issued { .. }, None) => OcspStatus::Good,
                        _ => OcspStatus::Unknown,
                    }
                }
            };
            statuses.push(status);
        }
        if ca.certificate_pem.is_none() {
            return Err(OcspFailure::Unauthorized.into());
        }
        let signer = self.signer(&ca, ca_row.version, ca.signing_algorithm).map_err(internal)?;
        signer.ocsp_response(&request, &statuses, time_of(self.now()), ANSWER_VALIDITY).map_err(internal)
    }
}

/// An answer that is an unsuccessful `OCSPResponseStatus`.
struct Answered(OcspFailure);

impl From<OcspFailure> for Answered {
    fn from(f: OcspFailure) -> Self {
        Self(f)
    }
}

fn internal(e: impl std::fmt::Display) -> Answered {
    tracing::error!(error = %e, "private CA OCSP answer failed");
    Answered(OcspFailure::InternalError)
}
