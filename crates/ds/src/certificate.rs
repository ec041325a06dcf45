//! The checks `RegisterCertificate` makes on `CertificateData` before accepting it.
//!
//! AWS documents them in the LDAPS and smart-card guides: one PEM-encoded X.509
//! certificate, not expiring within 90 days, not signed with RSASSA-PSS (Directory
//! Service's domain controllers cannot use PSS-signed CA certificates). Carapace does not
//! require the CA flag: AWS accepts an issuing or a self-signed server certificate as the
//! trust anchor too, and the LDAPS check then simply fails if it does not anchor the chain.

/// How long a certificate must still be valid at registration (AWS: 90 days).
pub const MIN_REMAINING_VALIDITY_DAYS: i64 = 90;

const DAY_MS: i64 = 86_400_000;

/// What was read from an accepted certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectedCertificate {
    /// The DER bytes (what the LDAPS check trusts).
    pub der: Vec<u8>,
    /// The PEM text, normalised (one block, `\n` line ends).
    pub pem: String,
    /// The subject's common name; empty when the subject has none.
    pub common_name: String,
    /// `notBefore`, Unix milliseconds.
    pub not_before_ms: i64,
    /// `notAfter`, Unix milliseconds.
    pub not_after_ms: i64,
    /// SHA-256 of the DER, lowercase hex: the identity used to refuse duplicates.
    pub fingerprint: String,
}

/// Why `CertificateData` was refused; each is an `InvalidCertificateException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateProblem {
    /// Not exactly one PEM `CERTIFICATE` block holding a parseable X.509 certificate. The
    /// reason is a sentence for the caller, never a parser's debug text.
    #[error("The certificate PEM that was provided has incorrect encoding: {0}.")]
    Encoding(String),
    /// `notAfter` has passed.
    #[error("The certificate has expired.")]
    Expired,
    /// `notAfter` is less than 90 days away.
    #[error(
        "The certificate expires in {days_left} days; a certificate must be valid for at least 90 more days to be registered."
    )]
    ExpiresSoon {
        /// Whole days left.
        days_left: i64,
    },
    /// `notBefore` is in the future.
    #[error("The certificate is not valid yet.")]
    NotYetValid,
    /// Signed with RSASSA-PSS, which Directory Service does not support.
    #[error(
        "The certificate is signed with RSASSA-PSS, which is not supported; use a certificate signed with PKCS#1 v1.5 RSA or ECDSA."
    )]
    RsassaPss,
}

/// Parses and checks `CertificateData` at time `now_ms`.
pub fn inspect(certificate_data: &str, now_ms: i64) -> Result<InspectedCertificate, CertificateProblem> {
    let blocks = pem::parse_many(certificate_data.trim()).map_err(|_| {
        CertificateProblem::Encoding(
            "it is not PEM text, base64 between -----BEGIN CERTIFICATE----- and -----END CERTIFICATE----- lines".into(),
        )
    })?;
    let block = match blocks.as_slice() {
        [one] if one.tag() == "CERTIFICATE" => one,
        [one] => {
            return Err(CertificateProblem::Encoding(format!("expected a CERTIFICATE block, found {}", one.tag())));
        }
        [] => return Err(CertificateProblem::Encoding("no PEM block found".into())),
        more => {
            return Err(CertificateProblem::Encoding(format!(
                "expected one certificate, found {} PEM blocks",
                more.len()
            )));
        }
    };
    let der = block.contents().to_vec();
    let cert = carapace_kernel::ca::parse_certificate_der(&der).map_err(|_| {
        CertificateProblem::Encoding("the CERTIFICATE block does not hold a well-formed DER X.509 certificate".into())
    })?;
    if cert.is_rsassa_pss() {
        return Err(CertificateProblem::RsassaPss);
    }
    let millis = |t: time::OffsetDateTime| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    let not_before_ms = millis(cert.not_before);
    let not_after_ms = millis(cert.not_after);
    if not_after_ms <= now_ms {
        return Err(CertificateProblem::Expired);
    }
    if not_before_ms > now_ms {
        return Err(CertificateProblem::NotYetValid);
    }
    let left_ms = not_after_ms - now_ms;
    if left_ms < MIN_REMAINING_VALIDITY_DAYS * DAY_MS {
        return Err(CertificateProblem::ExpiresSoon { days_left: left_ms / DAY_MS });
    }
    let common_name = cert.common_name.clone().unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &der);
    Ok(InspectedCertificate {
        pem: pem::encode_config(block, pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF)),
        der,
        common_name,
        not_before_ms,
        not_after_ms,
        fingerprint: hex::encode(digest.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

    const NOW_MS: i64 = 1_750_000_000_000;

    fn cert_valid_for(days_before: i64, days_after: i64, alg: &'static rcgen::SignatureAlgorithm) -> String {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "Corp Root CA");
        params.distinguished_name = dn;
        let now = time::OffsetDateTime::from_unix_timestamp(NOW_MS / 1000).unwrap();
        params.not_before = now - time::Duration::days(days_before);
        params.not_after = now + time::Duration::days(days_after);
        let key = KeyPair::generate_for(alg).unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn accepts_a_certificate_and_reads_its_fields() {
        let pem = cert_valid_for(1, 365, &rcgen::PKCS_ECDSA_P256_SHA256);
        let c = inspect(&format!("\n{pem}\n\n"), NOW_MS).unwrap();
        assert_eq!(c.common_name, "Corp Root CA");
        assert_eq!(c.not_after_ms, NOW_MS + 365 * DAY_MS);
        assert_eq!(c.not_before_ms, NOW_MS - DAY_MS);
        assert_eq!(c.fingerprint.len(), 64);
        assert_eq!(c.pem.trim(), pem.trim().replace("\r\n", "\n"));
    }

    #[test]
    fn refuses_bad_encodings() {
        for bad in [
            "hello",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let err = inspect(bad, NOW_MS).unwrap_err();
            assert!(matches!(err, CertificateProblem::Encoding(_)), "{bad}");
            // A sentence, not a parser's debug text (`Der(UnexpectedTag { .. })`).
            let message = err.to_string();
            assert!(!message.contains(['{', '(', '_']) && message.ends_with('.'), "{message}");
        }
        assert_eq!(
            inspect("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", NOW_MS).unwrap_err().to_string(),
            "The certificate PEM that was provided has incorrect encoding: the CERTIFICATE block does not hold a \
             well-formed DER X.509 certificate."
        );
        let one = cert_valid_for(1, 365, &rcgen::PKCS_ECDSA_P256_SHA256);
        let two = format!("{one}{one}");
        let err = inspect(&two, NOW_MS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "The certificate PEM that was provided has incorrect encoding: expected one certificate, found 2 PEM blocks."
        );
    }

    #[test]
    fn refuses_certificates_expiring_within_90_days() {
        let pem = cert_valid_for(1, 89, &rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(inspect(&pem, NOW_MS), Err(CertificateProblem::ExpiresSoon { days_left: 89 }));
        let pem = cert_valid_for(1, 90, &rcgen::PKCS_ECDSA_P256_SHA256);
        assert!(inspect(&pem, NOW_MS).is_ok());
        let pem = cert_valid_for(10, -1, &rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(inspect(&pem, NOW_MS), Err(CertificateProblem::Expired));
        let pem = cert_valid_for(-1, 400, &rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(inspect(&pem, NOW_MS), Err(CertificateProblem::NotYetValid));
    }

    #[test]
    fn refuses_rsassa_pss() {
        // rcgen cannot sign with PSS; this one was made with
        // `openssl req -x509 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sha256`.
        let pem = include_str!("testdata/rsassa-pss-ca.pem");
        assert_eq!(inspect(pem, NOW_MS), Err(CertificateProblem::RsassaPss));
    }
}
