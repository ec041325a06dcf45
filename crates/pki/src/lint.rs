//! Checks of a CA certificate against the CA/Browser Forum TLS Baseline Requirements (BR)
//! profiles of root and subordinate CA certificates and RFC 5280: what `carapace ca import`
//! reports about an operator's own CA, which it imports whatever the findings.
//!
//! pkilint (the CA/B Forum's linter) is Python and Carapace one binary, so the checks pkilint's
//! `lint_cabf_serverauth_cert` makes on CA certificates that matter most are made here, under
//! pkilint's finding codes so that a finding can be looked up there: subject naming, basic
//! constraints, key usage, key identifiers, the subordinate CA's policies, CRL distribution
//! point, EKU and AIA, the root's validity period, and the key. They are not all of pkilint's
//! checks (no string encodings, DER, policy qualifiers or name constraints): for a full lint,
//! run pkilint on the certificates. The test suite runs pkilint over what Carapace's own CA
//! issues (tests/python/test_pkilint.py).

use std::fmt;

use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{DistributionPointName, GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_PKIX_AUTHORITY_INFO_ACCESS, OID_X509_COMMON_NAME, OID_X509_COUNTRY_NAME, OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER,
    OID_X509_EXT_BASIC_CONSTRAINTS, OID_X509_EXT_CERTIFICATE_POLICIES, OID_X509_EXT_CRL_DISTRIBUTION_POINTS,
    OID_X509_EXT_EXTENDED_KEY_USAGE, OID_X509_EXT_KEY_USAGE, OID_X509_EXT_SUBJECT_KEY_IDENTIFIER,
    OID_X509_ORGANIZATION_NAME, OID_X509_ORGANIZATIONAL_UNIT,
};

use super::CaError;
use super::keys::KeyAlgorithm;
use super::parse::{certificates_der, spki_key_algorithm, x509};

/// BR 7.1.2.1.1: a root CA certificate is valid for at least 2922 days (8 years)…
const ROOT_MIN_VALIDITY_DAYS: i64 = 2922;
/// …and at most 9132 days (25 years).
const ROOT_MAX_VALIDITY_DAYS: i64 = 9132;

/// Which BR profile a CA certificate is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    /// A self-signed root (BR 7.1.2.1).
    Root,
    /// A CA certificate issued by a root, signing TLS leaves (BR 7.1.2.6).
    Subordinate,
}

impl fmt::Display for CaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Root => "root",
            Self::Subordinate => "intermediate",
        })
    }
}

/// How much a finding matters, in pkilint's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// A SHOULD or RECOMMENDED the certificate does not follow.
    Warning,
    /// A MUST the certificate breaks.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
        })
    }
}

/// One requirement a CA certificate does not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// pkilint's code for the same finding, e.g. `cabf.serverauth.ca.country_attribute_absent`
    /// (`carapace.` for what only Carapace checks).
    pub code: String,
    /// What is wrong, and the section that requires it.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)
    }
}

/// Checks the single CA certificate in `pem_text` against the profile of `role` at `now`.
pub fn ca_certificate(pem_text: &str, role: CaRole, now: OffsetDateTime) -> Result<Vec<Finding>, CaError> {
    let der = certificates_der(pem_text)?
        .into_iter()
        .next()
        .ok_or_else(|| CaError::InvalidCertificate("no PEM CERTIFICATE block found".into()))?;
    Ok(lint(&x509(&der)?, role, now))
}

fn lint(cert: &X509Certificate<'_>, role: CaRole, now: OffsetDateTime) -> Vec<Finding> {
    use Severity::{Error, Warning};
    let mut findings = Vec::new();
    let mut find =
        |severity, code: &str, message: String| findings.push(Finding { severity, code: code.into(), message });

    // BR 7.1.2.10.2: countryName, organizationName and commonName MUST be present.
    for (oid, name, code) in [
        (OID_X509_COUNTRY_NAME, "countryName", "country"),
        (OID_X509_ORGANIZATION_NAME, "organizationName", "organization_name"),
        (OID_X509_COMMON_NAME, "commonName", "common_name"),
    ] {
        if !cert.subject().iter_attributes().any(|a| *a.attr_type() == oid) {
            find(
                Error,
                &format!("cabf.serverauth.ca.{code}_attribute_absent"),
                format!("the subject has no {name} (BR 7.1.2.10.2)"),
            );
        }
    }

    // BR 7.1.2.10.2: organizationalUnitName MUST NOT be present.
    if cert.subject().iter_attributes().any(|a| *a.attr_type() == OID_X509_ORGANIZATIONAL_UNIT) {
        find(
            Error,
            "cabf.serverauth.ca.organizational_unit_name_attribute_present",
            "the subject has an organizationalUnitName, which BR 7.1.2.10.2 forbids".into(),
        );
    }

    // Which extensions each profile requires (MUST: an error when absent) or recommends
    // (SHOULD: a warning): BR 7.1.2.1.2 for a root, 7.1.2.6.1 for a TLS subordinate CA. Rows:
    // the extension, pkilint's name for it, then what a root and what a subordinate owe it.
    let (classifier, profile) = match role {
        CaRole::Root => ("cabf.serverauth.root", "BR 7.1.2.1.2"),
        CaRole::Subordinate => ("cabf.serverauth.ca", "BR 7.1.2.6.1"),
    };
    let extension = |oid| cert.extensions().iter().find(|e| e.oid == oid);
    let expected = [
        (OID_X509_EXT_BASIC_CONSTRAINTS, "basic_constraints", Some(Error), Some(Error)),
        (OID_X509_EXT_KEY_USAGE, "key_usage", Some(Error), Some(Error)),
        (OID_X509_EXT_SUBJECT_KEY_IDENTIFIER, "subject_key_identifier", Some(Error), Some(Error)),
        (OID_X509_EXT_AUTHORITY_KEY_IDENTIFIER, "authority_key_identifier", Some(Warning), Some(Error)),
        (OID_X509_EXT_CERTIFICATE_POLICIES, "certificate_policies", None, Some(Error)),
        (OID_X509_EXT_CRL_DISTRIBUTION_POINTS, "crl_distribution_points", None, Some(Error)),
        (OID_X509_EXT_EXTENDED_KEY_USAGE, "extended_key_usage", None, Some(Error)),
        (OID_PKIX_AUTHORITY_INFO_ACCESS, "authority_info_access", None, Some(Warning)),
    ];
    for (oid, code, root, subordinate) in expected {
        let severity = match role {
            CaRole::Root => root,
            CaRole::Subordinate => subordinate,
        };
        if let Some(severity) = severity
            && extension(oid).is_none()
        {
            let word = if severity == Error { "requires" } else { "recommends" };
            find(
                severity,
                &format!("{classifier}.{code}_extension_absent"),
                format!("no {code} extension ({profile} {word} it)"),
            );
        }
    }
    if role == CaRole::Root {
        if extension(OID_X509_EXT_EXTENDED_KEY_USAGE).is_some() {
            find(
                Error,
                "cabf.serverauth.root.extended_key_usage_extension_present",
                "a root has no extKeyUsage (BR 7.1.2.1.2)".into(),
            );
        }
        if extension(OID_X509_EXT_CERTIFICATE_POLICIES).is_some() {
            find(
                Warning,
                "cabf.serverauth.root.certificate_policies_extension_present",
                "certificatePolicies is NOT RECOMMENDED in a root (BR 7.1.2.1.2)".into(),
            );
        }
    }

    // RFC 5280 §4.2.1.9, BR 7.1.2.10.4 and 7.1.2.1.4: basicConstraints critical, cA TRUE.
    if let Some(ext) = extension(OID_X509_EXT_BASIC_CONSTRAINTS) {
        if !ext.critical {
            find(
                Error,
                "pkix.basic_constraints_extension_not_critical",
                "basicConstraints is not critical (RFC 5280 §4.2.1.9)".into(),
            );
        }
        if let ParsedExtension::BasicConstraints(bc) = ext.parsed_extension()
            && !bc.ca
        {
            find(
                Error,
                "cabf.serverauth.ca_basic_constraints_ca_bit_not_set",
                "basicConstraints has cA FALSE (BR 7.1.2.10.4)".into(),
            );
        }
    }

    // RFC 5280 §4.2.1.3, BR 7.1.2.10.7: keyUsage critical, with keyCertSign and cRLSign.
    if let Some(ext) = extension(OID_X509_EXT_KEY_USAGE) {
        if !ext.critical {
            find(Error, "pkix.key_usage_extension_not_critical", "keyUsage is not critical (BR 7.1.2.10.7)".into());
        }
        if let ParsedExtension::KeyUsage(ku) = ext.parsed_extension() {
            if !ku.key_cert_sign() {
                find(
                    Error,
                    "pkix.ca_certificate_keycertsign_keyusage_not_set",
                    "keyUsage lacks keyCertSign (BR 7.1.2.10.7)".into(),
                );
            }
            if !ku.crl_sign() {
                find(Error, "cabf.ca_certificate_required_ku_missing", "keyUsage lacks cRLSign (BR 7.1.2.10.7)".into());
            }
        }
    }

    // BR 7.1.2.10.6: a TLS subordinate CA's extKeyUsage has serverAuth and not anyExtendedKeyUsage.
    if role == CaRole::Subordinate
        && let Some(ParsedExtension::ExtendedKeyUsage(eku)) =
            extension(OID_X509_EXT_EXTENDED_KEY_USAGE).map(|e| e.parsed_extension())
    {
        if !eku.server_auth {
            find(
                Error,
                "cabf.serverauth.ca.serverauth_eku_absent",
                "extKeyUsage lacks serverAuth (BR 7.1.2.10.6)".into(),
            );
        }
        if eku.any {
            find(
                Error,
                "cabf.serverauth.ca.anyeku_eku_present",
                "extKeyUsage has anyExtendedKeyUsage (BR 7.1.2.10.6)".into(),
            );
        }
    }

    // BR 7.1.2.11.2: the CRL distribution point is an http:// URL.
    if let Some(ParsedExtension::CRLDistributionPoints(points)) =
        extension(OID_X509_EXT_CRL_DISTRIBUTION_POINTS).map(|e| e.parsed_extension())
    {
        let http = points.points.iter().any(|p| match &p.distribution_point {
            Some(DistributionPointName::FullName(names)) => {
                names.iter().any(|n| matches!(n, GeneralName::URI(uri) if uri.starts_with("http://")))
            }
            _ => false,
        });
        if !http {
            find(
                Error,
                "cabf.no_http_crldp_uri",
                "the CRL distribution point has no http:// URL (BR 7.1.2.11.2)".into(),
            );
        }
    }

    // BR 7.1.2.1.1: a root is valid for 2922 to 9132 days.
    let (not_before, not_after) = (cert.validity().not_before.to_datetime(), cert.validity().not_after.to_datetime());
    let days = (not_after - not_before).whole_days();
    if role == CaRole::Root && days < ROOT_MIN_VALIDITY_DAYS {
        find(
            Error,
            "cabf.serverauth.root_validity_period_too_short",
            format!("valid {days} days; BR 7.1.2.1.1 requires at least {ROOT_MIN_VALIDITY_DAYS}"),
        );
    }
    if role == CaRole::Root && days > ROOT_MAX_VALIDITY_DAYS {
        find(
            Error,
            "cabf.serverauth.root_validity_period_too_long",
            format!("valid {days} days; BR 7.1.2.1.1 allows at most {ROOT_MAX_VALIDITY_DAYS}"),
        );
    }
    // Not a BR rule but Carapace's: a CA that is not valid now signs nothing it issues.
    if now < not_before || now > not_after {
        find(
            Error,
            "carapace.ca_certificate_not_valid_now",
            format!("valid {not_before} to {not_after}, not now ({now}): no leaf can be issued under it"),
        );
    }

    // BR 6.1.5: RSA moduli of at least 2048 bits (a multiple of 8), or a P-256/384/521 key.
    match spki_key_algorithm(cert.public_key()) {
        Some(KeyAlgorithm::Rsa1024) => find(
            Error,
            "cabf.rsa_modulus_invalid_length",
            "an RSA key of 1024 bits; BR 6.1.5 requires at least 2048".into(),
        ),
        Some(_) => {}
        None => find(
            Warning,
            "carapace.unrecognized_public_key",
            "a public key other than RSA of 2048, 3072 or 4096 bits or ECDSA P-256, P-384 or P-521 (BR 6.1.5)".into(),
        ),
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::certificate_pem;

    /// 2026-01-01T00:00:00Z.
    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap()
    }

    /// A self-signed CA certificate with nothing but what rcgen writes by default.
    fn bare_ca(days: i64, key_usages: Vec<rcgen::KeyUsagePurpose>) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "Bare Root");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = key_usages;
        params.not_before = now() - time::Duration::minutes(1);
        params.not_after = params.not_before + time::Duration::days(days);
        certificate_pem(params.self_signed(&key).unwrap().der())
    }

    fn codes(pem: &str, role: CaRole) -> Vec<String> {
        ca_certificate(pem, role, now()).unwrap().into_iter().map(|f| f.code).collect()
    }

    #[test]
    fn a_short_lived_root_without_subject_or_key_usage() {
        let found = codes(&bare_ca(30, Vec::new()), CaRole::Root);
        for code in [
            "cabf.serverauth.ca.country_attribute_absent",
            "cabf.serverauth.ca.organization_name_attribute_absent",
            "cabf.serverauth.root.key_usage_extension_absent",
            "cabf.serverauth.root_validity_period_too_short",
        ] {
            assert!(found.iter().any(|c| c == code), "{code} not in {found:?}");
        }
        assert!(!found.iter().any(|c| c == "cabf.serverauth.ca.common_name_attribute_absent"), "{found:?}");
    }

    #[test]
    fn key_usage_without_crl_signing_and_a_root_too_long_lived() {
        let pem = bare_ca(9200, vec![rcgen::KeyUsagePurpose::KeyCertSign]);
        let found = codes(&pem, CaRole::Root);
        assert!(found.iter().any(|c| c == "cabf.ca_certificate_required_ku_missing"), "{found:?}");
        assert!(found.iter().any(|c| c == "cabf.serverauth.root_validity_period_too_long"), "{found:?}");
        // As a subordinate it also lacks the subordinate's extensions.
        let found = codes(&pem, CaRole::Subordinate);
        assert!(found.iter().any(|c| c == "cabf.serverauth.ca.crl_distribution_points_extension_absent"), "{found:?}");
        assert!(!found.iter().any(|c| c.contains("validity_period")), "{found:?}");
    }
}
