//! The OCSP responder's encoding layer (RFC 6960): reading an `OCSPRequest` and writing a signed
//! `OCSPResponse`. The HTTP route and the revocation lookup live elsewhere; this file knows
//! neither.
//!
//! The ASN.1 types are x509-ocsp's. Each response is signed by the intermediate that issued the
//! queried certificates (RFC 6960 §4.2.2.2, "the CA who issued the certificate in question"), so
//! no delegated responder certificate exists and none is included: a client already holds the
//! issuer, as it needed it to build the request.

use x509_cert::der::asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString};
use x509_cert::der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_SHA_1, ID_SHA_256, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use x509_cert::der::oid::db::rfc6960::ID_PKIX_OCSP_NONCE;
use x509_cert::der::{Any, DateTime, Decode, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, ResponderId, ResponseData, RevokedInfo,
    SingleResponse, Version,
};

use super::CaError;
use super::authority::CertificateAuthority;
use super::keys::{Signer, SigningAlgorithm};
use super::parse::x509;

/// RFC 8954 §2.1: a responder must reject a nonce longer than 128 octets (or empty) with
/// `malformedRequest`.
const MAX_NONCE_LEN: usize = 128;

/// CertIDs one request may ask about. The responder is unauthenticated, and every CertID costs
/// store reads and a line of a signed answer: one request with hundreds of them would cost
/// hundreds of reads for one small POST. One, as Boulder (Let's Encrypt's CA) takes; relying
/// parties (browsers, OpenSSL's `-cert`, Go's `x/crypto/ocsp`) ask about one certificate at a
/// time. More is `malformedRequest`.
pub const MAX_OCSP_QUERIES: usize = 1;

/// A parsed OCSP request: what it asks about, and what the response must echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    /// One entry per `Request` in the `requestList`, in order.
    pub queries: Vec<OcspQuery>,
    /// The nonce extension's `extnValue` as received (RFC 6960 §4.4.1: the DER of an OCTET
    /// STRING holding the nonce), echoed byte for byte in the response; `None` without one.
    pub nonce: Option<Vec<u8>>,
    /// The CertIDs exactly as received: RFC 6960 §4.2.2.3 has the response name each
    /// certificate with the request's CertID (same hash algorithm).
    cert_ids: Vec<CertId>,
}

impl OcspRequest {
    /// What makes every answer to this request the same whatever else the request carries:
    /// the DER of its one CertID, when it has one CertID and no nonce (a nonce is echoed, so an
    /// answer with one is that request's alone). `None` otherwise.
    pub fn answer_key(&self) -> Option<Vec<u8>> {
        match (&self.nonce, self.cert_ids.as_slice()) {
            (None, [cert_id]) => cert_id.to_der().ok(),
            _ => None,
        }
    }
}

/// One certificate a request asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspQuery {
    /// The id of the intermediate whose name and key hashes the CertID carries (see
    /// [`CertificateAuthority::intermediate_by_id`]); `None` when they match none of ours, or the
    /// CertID uses a hash other than SHA-1 or SHA-256.
    pub intermediate_id: Option<String>,
    /// The serial number's bytes, as in the certificate (the DER INTEGER's content).
    pub serial: Vec<u8>,
}

/// The status of one queried certificate, decided by the caller (RFC 6960 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    /// Issued by this CA, not revoked, not expired beyond what the caller cares about.
    Good,
    /// Revoked.
    Revoked {
        /// When it was revoked (sent in whole seconds).
        at: time::OffsetDateTime,
        /// RFC 5280 §5.3.1 CRLReason code (0–10, 7 unused); `None` omits the reason.
        reason_code: Option<u8>,
    },
    /// Not a certificate this responder knows of.
    Unknown,
}

/// An unsuccessful `OCSPResponseStatus` (RFC 6960 §4.2.1), sent by [`ocsp_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OcspFailure {
    /// The request is not a valid `OCSPRequest`.
    #[error("malformed OCSP request")]
    MalformedRequest,
    /// The responder failed internally.
    #[error("OCSP responder internal error")]
    InternalError,
    /// The responder cannot answer now; the client may retry.
    #[error("OCSP responder busy, try later")]
    TryLater,
    /// The responder requires signed requests (Carapace does not).
    #[error("OCSP request must be signed")]
    SigRequired,
    /// The responder may not answer for (some of) the certificates asked about: another CA's,
    /// or certificates of different intermediates in one request (RFC 5019 §2.2.3).
    #[error("OCSP request not authorized for this responder")]
    Unauthorized,
}

impl OcspFailure {
    /// The `OCSPResponseStatus` ENUMERATED value.
    pub fn code(self) -> u8 {
        match self {
            Self::MalformedRequest => 1,
            Self::InternalError => 2,
            Self::TryLater => 3,
            Self::SigRequired => 5,
            Self::Unauthorized => 6,
        }
    }
}

/// An unsuccessful `OCSPResponse` (DER) carrying only `status` (RFC 6960 §4.2.1: no
/// `responseBytes`).
pub fn ocsp_failure(status: OcspFailure) -> Vec<u8> {
    // SEQUENCE { ENUMERATED status }: five fixed bytes, written directly so this cannot fail
    // (the test compares it with x509-ocsp's encoding).
    vec![0x30, 0x03, 0x0a, 0x01, status.code()]
}

/// What a CertID must carry to name one of our intermediates, for one hash algorithm.
struct IssuerHashes<'a> {
    id: &'a str,
    hash_oid: ObjectIdentifier,
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
}

/// The digest for a CertID hash algorithm we accept.
fn cert_id_digest(oid: &ObjectIdentifier) -> Option<&'static aws_lc_rs::digest::Algorithm> {
    if *oid == ID_SHA_1 {
        Some(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY)
    } else if *oid == ID_SHA_256 {
        Some(&aws_lc_rs::digest::SHA256)
    } else {
        None
    }
}

fn digest(alg: &'static aws_lc_rs::digest::Algorithm, data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(alg, data).as_ref().to_vec()
}

/// The signature AlgorithmIdentifier for what a `Signer` signing with `algorithm` produces
/// (RSA: PKCS#1 v1.5, NULL parameters per RFC 4055 §5; ECDSA: parameters absent per RFC 5758
/// §3.2).
fn signature_algorithm(algorithm: SigningAlgorithm) -> AlgorithmIdentifierOwned {
    let rsa = |oid| AlgorithmIdentifierOwned { oid, parameters: Some(Any::from(Null)) };
    let ecdsa = |oid| AlgorithmIdentifierOwned { oid, parameters: None };
    match algorithm {
        SigningAlgorithm::Sha256WithRsa => rsa(SHA_256_WITH_RSA_ENCRYPTION),
        SigningAlgorithm::Sha384WithRsa => rsa(SHA_384_WITH_RSA_ENCRYPTION),
        SigningAlgorithm::Sha512WithRsa => rsa(SHA_512_WITH_RSA_ENCRYPTION),
        SigningAlgorithm::Sha256WithEcdsa => ecdsa(ECDSA_WITH_SHA_256),
        SigningAlgorithm::Sha384WithEcdsa => ecdsa(ECDSA_WITH_SHA_384),
        SigningAlgorithm::Sha512WithEcdsa => ecdsa(ECDSA_WITH_SHA_512),
    }
}

/// A CertID's hash algorithm, `issuerNameHash` and `issuerKeyHash`.
type CertIdHash = (ObjectIdentifier, Vec<u8>, Vec<u8>);

/// The statuses must answer the queries one to one: anything else is the caller's bug.
fn check_statuses(request: &OcspRequest, statuses: &[OcspStatus]) -> Result<(), CaError> {
    if statuses.len() != request.queries.len() || request.cert_ids.len() != request.queries.len() {
        return Err(CaError::InvalidRequest(format!(
            "{} OCSP statuses for {} queries",
            statuses.len(),
            request.queries.len()
        )));
    }
    Ok(())
}

/// The CertID hashes (RFC 6960 §4.1.1) that name the issuer certificate `der`: SHA-1 and
/// SHA-256 of its subject's DER and of its subjectPublicKey bits, as
/// `(hash algorithm, issuerNameHash, issuerKeyHash)`.
fn cert_id_hashes(der: &[u8]) -> Result<Vec<CertIdHash>, CaError> {
    let cert = x509(der)?;
    let name = cert.subject().as_raw();
    let key = &cert.public_key().subject_public_key.data;
    Ok([ID_SHA_1, ID_SHA_256]
        .into_iter()
        .filter_map(|oid| cert_id_digest(&oid).map(|alg| (oid, digest(alg, name), digest(alg, key))))
        .collect())
}

/// The SHA-1 hash of the subjectPublicKey bits of the certificate `der`: the `issuerKeyHash`
/// with which OCSP clients (OpenSSL, browsers) name its issuer, and its responderID byKey.
fn ocsp_key_hash(der: &[u8]) -> Result<Vec<u8>, CaError> {
    let cert = x509(der)?;
    Ok(digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &cert.public_key().subject_public_key.data))
}

/// The `issuerKeyHash` values that name the issuer certificate `der` in a CertID, by hash:
/// `[("sha1", …), ("sha256", …)]` (what [`OcspRequest::issuer_key_hash`] reports).
pub fn ocsp_key_hashes(der: &[u8]) -> Result<Vec<(&'static str, Vec<u8>)>, CaError> {
    Ok(cert_id_hashes(der)?
        .into_iter()
        .map(|(oid, _, key)| (if oid == ID_SHA_1 { "sha1" } else { "sha256" }, key))
        .collect())
}

/// Parses a DER `OCSPRequest` (RFC 6960 §4.1.1) without matching its CertIDs to any issuer
/// (each query's `intermediate_id` is `None`): what [`CertificateAuthority::parse_ocsp_request`]
/// does for Carapace's own CA, for responders that find the issuer themselves
/// ([`OcspRequest::issuer_key_hash`]). The same checks and failures.
pub fn parse_ocsp_request(der: &[u8]) -> Result<OcspRequest, OcspFailure> {
    let request = x509_ocsp::OcspRequest::from_der(der).map_err(|_| OcspFailure::MalformedRequest)?;
    let tbs = request.tbs_request;
    if tbs.request_list.is_empty() || tbs.request_list.len() > MAX_OCSP_QUERIES {
        return Err(OcspFailure::MalformedRequest);
    }
    let nonce = tbs
        .request_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == ID_PKIX_OCSP_NONCE)
        .map(|e| e.extn_value.as_bytes().to_vec());
    if let Some(value) = &nonce {
        // Old OpenSSL versions sent the nonce bytes without the inner OCTET STRING; take
        // the value as the nonce then.
        let len = OctetString::from_der(value).map_or(value.len(), |inner| inner.as_bytes().len());
        if len == 0 || len > MAX_NONCE_LEN {
            return Err(OcspFailure::MalformedRequest);
        }
    }
    let cert_ids: Vec<CertId> = tbs.request_list.into_iter().map(|r| r.req_cert).collect();
    let queries = cert_ids
        .iter()
        .map(|cid| OcspQuery { intermediate_id: None, serial: cid.serial_number.as_bytes().to_vec() })
        .collect();
    Ok(OcspRequest { queries, nonce, cert_ids })
}

impl OcspRequest {
    /// The `issuerKeyHash` of the first CertID with the hash algorithm it uses (`"sha1"` or
    /// `"sha256"`), or `None` for another hash.
    pub fn issuer_key_hash(&self) -> Option<(&'static str, &[u8])> {
        let cid = self.cert_ids.first()?;
        let name = if cid.hash_algorithm.oid == ID_SHA_1 {
            "sha1"
        } else if cid.hash_algorithm.oid == ID_SHA_256 {
            "sha256"
        } else {
            return None;
        };
        Some((name, cid.issuer_key_hash.as_bytes()))
    }

    /// Whether every CertID names the issuer certificate `der` (its name and key hashes).
    pub fn names_issuer(&self, der: &[u8]) -> bool {
        let Ok(hashes) = cert_id_hashes(der) else { return false };
        self.cert_ids.iter().all(|cid| {
            hashes.iter().any(|(oid, name, key)| {
                *oid == cid.hash_algorithm.oid
                    && name == cid.issuer_name_hash.as_bytes()
                    && key == cid.issuer_key_hash.as_bytes()
            })
        })
    }
}

/// A successful `OCSPResponse` (DER) answering `request` with `statuses`, signed by `signer`
/// as the issuer certificate `signer_der` (responderID byKey, producedAt and thisUpdate
/// `now`, nextUpdate `now + validity`, the request's CertIDs and nonce echoed, no
/// certificates included).
pub(crate) fn signed_response(
    request: &OcspRequest,
    statuses: &[OcspStatus],
    signer: &Signer,
    signer_der: &[u8],
    now: time::OffsetDateTime,
    validity: time::Duration,
) -> Result<Vec<u8>, CaError> {
    check_statuses(request, statuses)?;
    let this_update = ocsp_time(now)?;
    let next_update = ocsp_time(now + validity)?;
    let responses = request
        .cert_ids
        .iter()
        .zip(statuses)
        .map(|(cert_id, status)| {
            let cert_status = match *status {
                OcspStatus::Good => CertStatus::good(),
                OcspStatus::Unknown => CertStatus::unknown(),
                OcspStatus::Revoked { at, reason_code } => CertStatus::revoked(RevokedInfo {
                    revocation_time: ocsp_time(at)?,
                    revocation_reason: reason_code.map(crl_reason).transpose()?,
                }),
            };
            Ok(SingleResponse {
                cert_id: cert_id.clone(),
                cert_status,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            })
        })
        .collect::<Result<Vec<_>, CaError>>()?;
    let response_extensions = match &request.nonce {
        Some(value) => Some(vec![Extension {
            extn_id: ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(value.clone()).map_err(encoding_error)?,
        }]),
        None => None,
    };
    let tbs_response_data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByKey(OctetString::new(ocsp_key_hash(signer_der)?).map_err(encoding_error)?),
        produced_at: this_update,
        responses,
        response_extensions,
    };
    let tbs = tbs_response_data.to_der().map_err(encoding_error)?;
    let signature = rcgen::SigningKey::sign(signer, &tbs)?;
    let basic = BasicOcspResponse {
        tbs_response_data,
        signature_algorithm: signature_algorithm(signer.signing_algorithm()),
        signature: BitString::from_bytes(&signature).map_err(encoding_error)?,
        certs: None,
    };
    OcspResponse::successful(basic).and_then(|r| r.to_der()).map_err(encoding_error)
}

/// An OCSP GeneralizedTime (whole seconds, UTC) for `t`.
fn ocsp_time(t: time::OffsetDateTime) -> Result<OcspGeneralizedTime, CaError> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| CaError::InvalidRequest(format!("OCSP time {t} is before 1970")))?;
    let dt = DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|e| CaError::InvalidRequest(format!("OCSP time {t}: {e}")))?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_date_time(dt)))
}

/// The x509-cert reason for an RFC 5280 §5.3.1 CRLReason code.
fn crl_reason(code: u8) -> Result<CrlReason, CaError> {
    Ok(match code {
        0 => CrlReason::Unspecified,
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => return Err(CaError::InvalidRequest(format!("CRL reason code {code} does not exist"))),
    })
}

fn encoding_error(e: x509_cert::der::Error) -> CaError {
    CaError::InvalidRequest(format!("OCSP response encoding failed: {e}"))
}

impl CertificateAuthority {
    /// The SHA-1 and SHA-256 CertID hashes of each intermediate (RFC 6960 §4.1.1:
    /// `issuerNameHash` over the DER of its subject, `issuerKeyHash` over its subjectPublicKey
    /// bits).
    fn issuer_hashes(&self) -> Result<Vec<IssuerHashes<'_>>, CaError> {
        let mut all = Vec::new();
        for (id, der, _) in self.signing_intermediates() {
            for (hash_oid, name_hash, key_hash) in cert_id_hashes(der)? {
                all.push(IssuerHashes { id, hash_oid, name_hash, key_hash });
            }
        }
        Ok(all)
    }

    /// Parses a DER `OCSPRequest` (RFC 6960 §4.1.1), matching each CertID's `issuerNameHash`
    /// and `issuerKeyHash` (SHA-1 or SHA-256) against our intermediates. A request signature,
    /// if any, is ignored (§4.1.2 makes it optional; the answers are public anyway).
    ///
    /// Fails with [`OcspFailure::MalformedRequest`] for bytes that are not an `OCSPRequest`, an
    /// empty request list or one longer than [`MAX_OCSP_QUERIES`], or a nonce that RFC 8954
    /// §2.1 says to reject (empty or over 128 octets); with [`OcspFailure::InternalError`] if
    /// our own certificates cannot be read.
    pub fn parse_ocsp_request(&self, der: &[u8]) -> Result<OcspRequest, OcspFailure> {
        let mut request = parse_ocsp_request(der)?;
        let hashes = self.issuer_hashes().map_err(|_| OcspFailure::InternalError)?;
        for (query, cid) in request.queries.iter_mut().zip(&request.cert_ids) {
            query.intermediate_id = hashes
                .iter()
                .find(|h| {
                    h.hash_oid == cid.hash_algorithm.oid
                        && h.name_hash == cid.issuer_name_hash.as_bytes()
                        && h.key_hash == cid.issuer_key_hash.as_bytes()
                })
                .map(|h| h.id.to_owned());
        }
        Ok(request)
    }

    /// A successful `OCSPResponse` (DER) answering `request`, with `statuses[i]` the status of
    /// `request.queries[i]`.
    ///
    /// The `BasicOCSPResponse` is signed by the intermediate that issued the queried
    /// certificates, with responderID byKey (SHA-1 of its public key), producedAt and thisUpdate
    /// `now`, nextUpdate `now + validity`, one SingleResponse per query echoing its CertID, and
    /// the request's nonce echoed when present. No certificates are included: the signer is the
    /// issuer, which the client already holds.
    ///
    /// When the queries name no intermediate of ours, or different ones, the answer is the
    /// `unauthorized` response ([`ocsp_failure`]) rather than an error: one response can carry
    /// only one signer.
    ///
    /// Errors: `statuses` not matching the queries one to one, a reason code that does not
    /// exist, times before 1970, or a signing failure.
    pub fn ocsp_response(
        &self,
        request: &OcspRequest,
        statuses: &[OcspStatus],
        now: time::OffsetDateTime,
        validity: time::Duration,
    ) -> Result<Vec<u8>, CaError> {
        check_statuses(request, statuses)?;
        let Some(signer_id) = request.queries.first().and_then(|q| q.intermediate_id.as_deref()) else {
            return Ok(ocsp_failure(OcspFailure::Unauthorized));
        };
        if request.queries.iter().any(|q| q.intermediate_id.as_deref() != Some(signer_id)) {
            return Ok(ocsp_failure(OcspFailure::Unauthorized));
        }
        let Some((_, signer_der, signer)) =
            self.signing_intermediates().into_iter().find(|(id, _, _)| *id == signer_id)
        else {
            // Parsed by another CA instance whose intermediates are not ours.
            return Ok(ocsp_failure(OcspFailure::Unauthorized));
        };

        signed_response(request, statuses, signer, signer_der, now, validity)
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the real clock where no clock is injected
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::OnceLock;

    use time::OffsetDateTime;

    use super::*;
    use crate::crypto::MasterKey;
    use crate::{KeyAlgorithm, KeyFamily, LeafRequest, PrivateKey, generate_key};

    struct Leaf {
        family: KeyFamily,
        pem: String,
        serial: Vec<u8>,
        intermediate_id: String,
    }

    struct Fixture {
        ca: CertificateAuthority,
        leaves: Vec<Leaf>,
        /// A leaf of another CA, and that CA's issuing intermediate.
        foreign_leaf_pem: String,
        foreign_inter_pem: String,
    }

    fn leaf(ca: &CertificateAuthority, key: &PrivateKey, now: OffsetDateTime) -> (String, Vec<u8>, String) {
        let req = LeafRequest {
            common_name: "ocsp.example.com".into(),
            sans: Vec::new(),
            ip_addresses: Vec::new(),
            not_before: now - time::Duration::minutes(5),
            not_after: now + time::Duration::days(30),
            serial: None,
            base_url: "http://127.0.0.1:4566".into(),
        };
        let issued = ca.issue(&req, key, now).unwrap();
        let serial = hex::decode(issued.serial_hex.replace(':', "")).unwrap();
        (issued.certificate_pem, serial, issued.intermediate_id)
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let now = OffsetDateTime::now_utc();
            let (ca, _) = CertificateAuthority::generate(
                &crate::CaProfile::new("Carapace", "http://127.0.0.1:4566"),
                now,
                &MasterKey::generate().unwrap(),
            )
            .unwrap();
            let leaves = [(KeyAlgorithm::Rsa2048, KeyFamily::Rsa), (KeyAlgorithm::EcPrime256v1, KeyFamily::Ec)]
                .into_iter()
                .map(|(alg, family)| {
                    let (pem, serial, intermediate_id) = leaf(&ca, &generate_key(alg).unwrap(), now);
                    Leaf { family, pem, serial, intermediate_id }
                })
                .collect();
            let (other, _) = CertificateAuthority::generate(
                &crate::CaProfile::new("Other", "http://127.0.0.1:4566"),
                now,
                &MasterKey::generate().unwrap(),
            )
            .unwrap();
            let (foreign_leaf_pem, _, _) = leaf(&other, &generate_key(KeyAlgorithm::EcPrime256v1).unwrap(), now);
            Fixture {
                ca,
                leaves,
                foreign_leaf_pem,
                foreign_inter_pem: other.intermediate_pem(KeyFamily::Ec).to_owned(),
            }
        })
    }

    /// A tempdir holding root.pem, inter.pem and leaf.pem for `leaf`.
    fn files(f: &Fixture, leaf: &Leaf) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.pem"), f.ca.root_pem()).unwrap();
        std::fs::write(dir.path().join("inter.pem"), f.ca.intermediate_pem(leaf.family)).unwrap();
        std::fs::write(dir.path().join("leaf.pem"), &leaf.pem).unwrap();
        dir
    }

    /// Runs `openssl ocsp` in `dir`, returning stdout and stderr together; panics on failure.
    fn openssl_ocsp(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("openssl").arg("ocsp").args(args).current_dir(dir).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "openssl ocsp {args:?} failed:\n{text}");
        text
    }

    /// Has openssl write a request for leaf.pem (extra args: hash, nonce) and parses it.
    fn request(f: &Fixture, dir: &Path, extra: &[&str]) -> (PathBuf, OcspRequest) {
        // openssl wants the digest option before -cert.
        let mut args = extra.to_vec();
        args.extend_from_slice(&["-issuer", "inter.pem", "-cert", "leaf.pem", "-reqout", "req.der"]);
        openssl_ocsp(dir, &args);
        let path = dir.join("req.der");
        let parsed = f.ca.parse_ocsp_request(&std::fs::read(&path).unwrap()).unwrap();
        (path, parsed)
    }

    /// Answers `req` with `status` and has openssl check it twice: against the request file
    /// (signature, and the nonce when the request has one; `-issuer` is where openssl finds the
    /// signer, as the response carries no certificate), then against the certificate for the
    /// status lines (`-cert` makes openssl build a fresh request, so no nonce there). Returns
    /// the second output.
    /// `digest` is the CertID hash option the request was made with (openssl matches CertIDs
    /// exactly).
    fn respond_and_verify(f: &Fixture, dir: &Path, req: &OcspRequest, status: OcspStatus, digest: &str) -> String {
        let resp = f.ca.ocsp_response(req, &[status], OffsetDateTime::now_utc(), time::Duration::hours(24)).unwrap();
        std::fs::write(dir.join("resp.der"), resp).unwrap();
        let out = openssl_ocsp(
            dir,
            &["-respin", "resp.der", "-reqin", "req.der", "-issuer", "inter.pem", "-CAfile", "root.pem"],
        );
        assert!(out.contains("Response verify OK"), "{out}");
        // A missing nonce in the response would only warn.
        assert!(!out.contains("WARNING"), "{out}");
        let out = openssl_ocsp(
            dir,
            &[
                "-respin",
                "resp.der",
                digest,
                "-issuer",
                "inter.pem",
                "-cert",
                "leaf.pem",
                "-no_nonce",
                "-CAfile",
                "root.pem",
                "-resp_text",
            ],
        );
        assert!(out.contains("Response verify OK"), "{out}");
        out
    }

    #[test]
    fn sha1_request_with_nonce_good() {
        let f = fixture();
        for leaf in &f.leaves {
            let dir = files(f, leaf);
            let (_, req) = request(f, dir.path(), &[]);
            assert_eq!(req.queries.len(), 1);
            assert_eq!(req.queries[0].intermediate_id.as_deref(), Some(leaf.intermediate_id.as_str()));
            assert_eq!(req.queries[0].serial, leaf.serial);
            assert!(req.nonce.is_some(), "openssl sends a nonce by default");
            let out = respond_and_verify(f, dir.path(), &req, OcspStatus::Good, "-sha1");
            assert!(out.contains("leaf.pem: good"), "{out}");
            assert!(out.contains("OCSP Nonce"), "{out}");
            assert!(out.contains("Responder Id: "), "{out}");
        }
    }

    #[test]
    fn revoked_with_reason() {
        let f = fixture();
        for leaf in &f.leaves {
            let dir = files(f, leaf);
            let (_, req) = request(f, dir.path(), &[]);
            let at = OffsetDateTime::now_utc() - time::Duration::hours(1);
            let out =
                respond_and_verify(f, dir.path(), &req, OcspStatus::Revoked { at, reason_code: Some(1) }, "-sha1");
            assert!(out.contains("leaf.pem: revoked"), "{out}");
            assert!(out.contains("keyCompromise"), "{out}");
        }
    }

    #[test]
    fn sha256_cert_id_without_nonce() {
        let f = fixture();
        for leaf in &f.leaves {
            let dir = files(f, leaf);
            let (_, req) = request(f, dir.path(), &["-sha256", "-no_nonce"]);
            assert_eq!(req.queries[0].intermediate_id.as_deref(), Some(leaf.intermediate_id.as_str()));
            assert_eq!(req.queries[0].serial, leaf.serial);
            assert_eq!(req.nonce, None);
            let out = respond_and_verify(f, dir.path(), &req, OcspStatus::Unknown, "-sha256");
            assert!(out.contains("leaf.pem: unknown"), "{out}");
            assert!(out.contains("Hash Algorithm: sha256"), "{out}");
        }
    }

    #[test]
    fn foreign_certificate_is_unauthorized() {
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inter.pem"), &f.foreign_inter_pem).unwrap();
        std::fs::write(dir.path().join("leaf.pem"), &f.foreign_leaf_pem).unwrap();
        let (_, req) = request(f, dir.path(), &[]);
        assert_eq!(req.queries.len(), 1);
        assert_eq!(req.queries[0].intermediate_id, None);
        let resp = f.ca.ocsp_response(&req, &[OcspStatus::Good], OffsetDateTime::now_utc(), time::Duration::hours(1));
        assert_eq!(resp.unwrap(), ocsp_failure(OcspFailure::Unauthorized));
    }

    #[test]
    fn mixed_intermediates_are_unauthorized() {
        let f = fixture();
        let mut reqs = f.leaves.iter().map(|leaf| {
            let dir = files(f, leaf);
            request(f, dir.path(), &["-no_nonce"]).1
        });
        let (mut rsa, ec) = (reqs.next().unwrap(), reqs.next().unwrap());
        assert_ne!(rsa.queries[0].intermediate_id, ec.queries[0].intermediate_id);
        let now = OffsetDateTime::now_utc();
        let hour = time::Duration::hours(1);
        // Each alone is answered...
        assert_ne!(
            f.ca.ocsp_response(&rsa, &[OcspStatus::Good], now, hour).unwrap(),
            ocsp_failure(OcspFailure::Unauthorized)
        );
        rsa.queries.extend(ec.queries);
        rsa.cert_ids.extend(ec.cert_ids);
        let both = [OcspStatus::Good, OcspStatus::Good];
        assert_eq!(f.ca.ocsp_response(&rsa, &both, now, hour).unwrap(), ocsp_failure(OcspFailure::Unauthorized));
        // ...and a status count that does not match is the caller's bug.
        assert!(f.ca.ocsp_response(&rsa, &[OcspStatus::Good], now, hour).is_err());
    }

    #[test]
    fn garbage_is_malformed() {
        let f = fixture();
        assert_eq!(f.ca.parse_ocsp_request(b"not an OCSP request"), Err(OcspFailure::MalformedRequest));
        assert_eq!(f.ca.parse_ocsp_request(&[]), Err(OcspFailure::MalformedRequest));
        // A well-formed request with an empty request list.
        let empty = x509_ocsp::OcspRequest { tbs_request: Default::default(), optional_signature: None };
        assert_eq!(f.ca.parse_ocsp_request(&empty.to_der().unwrap()), Err(OcspFailure::MalformedRequest));
    }

    #[test]
    fn one_cert_id_per_request() {
        let f = fixture();
        let dir = files(f, &f.leaves[0]);
        let (path, parsed) = request(f, dir.path(), &["-no_nonce"]);
        assert!(parsed.answer_key().is_some(), "one CertID, no nonce: answers can be kept");
        let der = std::fs::read(path).unwrap();
        let mut two = x509_ocsp::OcspRequest::from_der(&der).unwrap();
        let first = two.tbs_request.request_list[0].clone();
        two.tbs_request.request_list.push(first);
        assert_eq!(f.ca.parse_ocsp_request(&two.to_der().unwrap()), Err(OcspFailure::MalformedRequest));
        let (_, with_nonce) = request(f, dir.path(), &[]);
        assert!(with_nonce.nonce.is_some());
        assert_eq!(with_nonce.answer_key(), None, "an answer echoing a nonce is that request's alone");
    }

    #[test]
    fn bad_reason_code_is_refused() {
        let f = fixture();
        let leaf = &f.leaves[0];
        let dir = files(f, leaf);
        let (_, req) = request(f, dir.path(), &[]);
        let at = OffsetDateTime::now_utc();
        for code in [7, 11] {
            let status = OcspStatus::Revoked { at, reason_code: Some(code) };
            assert!(f.ca.ocsp_response(&req, &[status], at, time::Duration::hours(1)).is_err());
        }
    }

    #[test]
    fn failure_responses_parse() {
        let failures = [
            (OcspFailure::MalformedRequest, x509_ocsp::OcspResponse::malformed_request(), "malformedrequest"),
            (OcspFailure::InternalError, x509_ocsp::OcspResponse::internal_error(), "internalerror"),
            (OcspFailure::TryLater, x509_ocsp::OcspResponse::try_later(), "trylater"),
            (OcspFailure::SigRequired, x509_ocsp::OcspResponse::sig_required(), "sigrequired"),
            (OcspFailure::Unauthorized, x509_ocsp::OcspResponse::unauthorized(), "unauthorized"),
        ];
        for (failure, expected, name) in failures {
            let der = ocsp_failure(failure);
            assert_eq!(der, expected.to_der().unwrap());
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("x"), &der).unwrap();
            let out = Command::new("openssl")
                .args(["ocsp", "-respin", "x", "-resp_text", "-noverify"])
                .current_dir(dir.path())
                .output()
                .unwrap();
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let text = text.to_lowercase();
            assert!(text.contains(&format!("responder error: {name} ({})", failure.code())), "{text}");
        }
    }
}
