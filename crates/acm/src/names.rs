//! Domain names, ARNs and tags: the checks ACM makes beyond what the model's patterns say.

use std::collections::HashSet;

use super::{AcmError, Owner};

/// Longest DomainName (the subject common name): RFC 5280's `ub-common-name` is 64.
pub const MAX_COMMON_NAME_OCTETS: usize = 64;
/// Longest SAN DNS name.
pub const MAX_SAN_OCTETS: usize = 253;
/// Longest DNS label.
pub const MAX_LABEL_OCTETS: usize = 63;
/// Tags one certificate may carry.
pub const MAX_TAGS: usize = 50;

/// A tag as stored: ACM tags have a key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value, absent when the tag was given without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The canonical form of a requested domain: lower case (DNS names are case-insensitive,
/// so `Example.COM` and `example.com` are one name on a certificate).
pub fn canonical(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}

/// The domain a wildcard stands for: `*.example.com` → `example.com`. Validating the base
/// domain proves control of the wildcard (ACM uses one record for both).
pub fn base_domain(domain: &str) -> &str {
    domain.strip_prefix("*.").unwrap_or(domain)
}

/// Checks the names of a request and returns the SAN list: the DomainName first, then the
/// other names in request order, lower-cased, duplicates removed.
pub fn subject_alternative_names(
    domain_name: &str,
    sans: &[String],
    max_domains: u32,
) -> Result<Vec<String>, AcmError> {
    let domain = canonical(domain_name);
    if domain.len() > MAX_COMMON_NAME_OCTETS {
        // The model allows 253; the common name cannot hold more than 64 octets.
        return Err(AcmError::Validation(format!(
            "1 validation error detected: Value '{domain_name}' at 'domainName' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_COMMON_NAME_OCTETS}"
        )));
    }
    check_name(&domain)?;
    let mut out = vec![domain.clone()];
    let mut seen: HashSet<String> = HashSet::from([domain]);
    for san in sans {
        let name = canonical(san);
        check_name(&name)?;
        if seen.insert(name.clone()) {
            out.push(name);
        }
    }
    if out.len() > max_domains as usize {
        return Err(AcmError::LimitExceeded(format!(
            "Cannot request more than {max_domains} names in a certificate (requested {}).",
            out.len()
        )));
    }
    Ok(out)
}

/// Name rules the model's pattern does not express.
fn check_name(name: &str) -> Result<(), AcmError> {
    let invalid =
        |why: &str| AcmError::InvalidDomainValidationOptions(format!("Domain name '{name}' is invalid: {why}."));
    if name.len() > MAX_SAN_OCTETS {
        return Err(invalid("longer than 253 octets"));
    }
    let base = base_domain(name);
    if base.contains('*') {
        return Err(invalid("a wildcard must be the whole leftmost label"));
    }
    let labels: Vec<&str> = base.split('.').collect();
    if labels.len() < 2 {
        return Err(invalid("not a fully qualified domain name"));
    }
    for label in &labels {
        if label.is_empty() {
            return Err(invalid("empty label"));
        }
        if label.len() > MAX_LABEL_OCTETS {
            return Err(invalid("a label is longer than 63 octets"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(invalid("a label starts or ends with a hyphen"));
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(invalid("only letters, digits and hyphens are allowed"));
        }
    }
    // A name made only of digits and dots is an IP address, which ACM does not certify.
    if labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Err(invalid("IP addresses are not supported"));
    }
    Ok(())
}

/// Checks a `ValidationDomain` for `domain`: it must be the domain itself (without a
/// leading `*.`) or one of its superdomains (`example.com` for `www.example.com`).
pub fn check_validation_domain(domain: &str, validation_domain: &str) -> Result<String, AcmError> {
    let base = base_domain(domain);
    let vd = canonical(validation_domain);
    let ok = base == vd || (base.ends_with(&vd) && base[..base.len() - vd.len()].ends_with('.') && vd.contains('.'));
    if ok {
        Ok(vd)
    } else {
        Err(AcmError::InvalidDomainValidationOptions(format!(
            "The validation domain {validation_domain} is not a superdomain of {domain}."
        )))
    }
}

/// The default validation domain for email: the domain without a leading `*.` or `www.`
/// (ACM strips both when it builds the approval addresses).
pub fn default_email_domain(domain: &str) -> String {
    let base = base_domain(domain);
    base.strip_prefix("www.").filter(|rest| rest.contains('.')).unwrap_or(base).to_owned()
}

/// The five addresses ACM mails for a validation domain.
pub fn validation_emails(validation_domain: &str) -> Vec<String> {
    ["admin", "administrator", "hostmaster", "postmaster", "webmaster"]
        .iter()
        .map(|local| format!("{local}@{validation_domain}"))
        .collect()
}

/// A parsed certificate ARN: `arn:<partition>:acm:<region>:<account>:certificate/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateArn {
    /// `aws`.
    pub partition: String,
    /// The region.
    pub region: String,
    /// The 12-digit account.
    pub account: String,
    /// The certificate id (a UUID for certificates Carapace created).
    pub id: String,
}

impl CertificateArn {
    /// The ARN of certificate `id` owned by `owner`.
    pub fn format(owner: &Owner, id: &str) -> String {
        format!("arn:aws:acm:{}:{}:certificate/{id}", owner.region, owner.account)
    }

    /// Parses an ARN that already matched the model's pattern. An ARN that is well formed
    /// but does not name an ACM certificate is an [`AcmError::InvalidArn`].
    pub fn parse(arn: &str) -> Result<Self, AcmError> {
        let invalid = || AcmError::InvalidArn(arn.to_owned());
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        if service != "acm" || partition.is_empty() || region.is_empty() {
            return Err(invalid());
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        // The id may hold what the model's pattern allows in an ARN's resource
        // (`[\w+=,.@-]`): an id ACM never minted (moto's `certificate/_0000000-...`) names
        // no certificate and is not found, as getmoto/moto's tests/test_acm/test_acm.py
        // expects (test_get_invalid_certificate and the other `BAD_ARN` tests); an ARN of
        // another service or resource type is invalid.
        let id = resource.strip_prefix("certificate/").ok_or_else(invalid)?;
        let id_byte = |b: u8| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b);
        if id.is_empty() || !id.bytes().all(id_byte) {
            return Err(invalid());
        }
        Ok(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            id: id.to_owned(),
        })
    }

    /// The certificate id if this ARN belongs to `owner`; otherwise the caller must answer
    /// "not found" (another account's or region's certificates do not exist for it).
    pub fn id_for(arn: &str, owner: &Owner) -> Result<String, AcmError> {
        let parsed = Self::parse(arn)?;
        if parsed.partition != "aws" || parsed.account != owner.account || parsed.region != owner.region {
            return Err(AcmError::NotFound(arn.to_owned()));
        }
        Ok(parsed.id)
    }
}

/// Checks tags being added: no `aws:` prefix (reserved for AWS), and ACM's character set.
pub fn check_tags(tags: &[Tag]) -> Result<(), AcmError> {
    for tag in tags {
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(AcmError::InvalidTag(format!(
                "Tag key '{}' uses the reserved prefix 'aws:'; tags with this prefix cannot be added or removed.",
                tag.key
            )));
        }
        let allowed = |s: &str| s.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c));
        if tag.key.is_empty() || !allowed(&tag.key) || tag.value.as_deref().is_some_and(|v| !allowed(v)) {
            return Err(AcmError::InvalidTag(format!(
                "Tag key '{}' or its value contains characters outside [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@].",
                tag.key
            )));
        }
    }
    Ok(())
}

/// Merges `add` into `tags` (a key already present gets the new value) and enforces the
/// 50-tag limit on the result.
pub fn merge_tags(tags: &mut Vec<Tag>, add: &[Tag]) -> Result<(), AcmError> {
    check_tags(add)?;
    let mut merged = tags.clone();
    for tag in add {
        match merged.iter_mut().find(|t| t.key == tag.key) {
            Some(existing) => existing.value.clone_from(&tag.value),
            None => merged.push(tag.clone()),
        }
    }
    if merged.len() > MAX_TAGS {
        return Err(AcmError::TooManyTags(format!(
            "A resource can have at most {MAX_TAGS} tags; this request would leave {}.",
            merged.len()
        )));
    }
    *tags = merged;
    Ok(())
}

/// Removes tags: a tag given with a value is removed only when the value matches (as ACM
/// documents for RemoveTagsFromCertificate); a tag given without one is removed by key.
pub fn remove_tags(tags: &mut Vec<Tag>, remove: &[Tag]) -> Result<(), AcmError> {
    check_tags(remove)?;
    tags.retain(|t| !remove.iter().any(|r| r.key == t.key && (r.value.is_none() || r.value == t.value)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner { account: "123456789012".into(), region: "us-east-1".into() }
    }

    #[test]
    fn sans_put_the_domain_first_and_dedupe() {
        let sans = subject_alternative_names(
            "Example.com",
            &["www.example.com".into(), "example.COM".into(), "*.example.com".into(), "www.example.com".into()],
            10,
        )
        .unwrap();
        assert_eq!(sans, ["example.com", "www.example.com", "*.example.com"]);
    }

    #[test]
    fn name_limits() {
        let long_cn = format!("{}.example.com", "a".repeat(60));
        assert!(matches!(subject_alternative_names(&long_cn, &[], 10), Err(AcmError::Validation(_))));
        // The same name is fine as a SAN.
        assert!(subject_alternative_names("example.com", &[long_cn], 10).is_ok());
        let too_many: Vec<String> = (0..10).map(|i| format!("n{i}.example.com")).collect();
        assert!(matches!(subject_alternative_names("example.com", &too_many, 10), Err(AcmError::LimitExceeded(_))));
        assert!(subject_alternative_names("example.com", &too_many, 11).is_ok());
        let label = format!("{}.example.com", "a".repeat(64));
        assert!(subject_alternative_names("example.com", &[label], 10).is_err());
        assert!(subject_alternative_names("10.0.0.1", &[], 10).is_err());
        assert!(subject_alternative_names("a.*.example.com", &[], 10).is_err());
        assert!(subject_alternative_names("com", &[], 10).is_err());
    }

    #[test]
    fn validation_domains() {
        assert_eq!(check_validation_domain("www.example.com", "example.com").unwrap(), "example.com");
        assert_eq!(check_validation_domain("*.example.com", "example.com").unwrap(), "example.com");
        assert_eq!(check_validation_domain("example.com", "EXAMPLE.com").unwrap(), "example.com");
        assert!(check_validation_domain("www.example.com", "other.com").is_err());
        assert!(check_validation_domain("www.example.com", "ample.com").is_err());
        assert!(check_validation_domain("example.com", "com").is_err());
        assert!(check_validation_domain("example.com", "www.example.com").is_err());
        assert_eq!(default_email_domain("*.www.example.com"), "example.com");
        assert_eq!(default_email_domain("www.com"), "www.com");
        assert_eq!(validation_emails("example.com").len(), 5);
    }

    #[test]
    fn arns() {
        let arn = CertificateArn::format(&owner(), "0f9c2e4e-1111-2222-3333-444455556666");
        assert_eq!(arn, "arn:aws:acm:us-east-1:123456789012:certificate/0f9c2e4e-1111-2222-3333-444455556666");
        assert_eq!(CertificateArn::id_for(&arn, &owner()).unwrap(), "0f9c2e4e-1111-2222-3333-444455556666");
        let other_account = arn.replace("123456789012", "210987654321");
        assert!(matches!(CertificateArn::id_for(&other_account, &owner()), Err(AcmError::NotFound(_))));
        let other_region = arn.replace("us-east-1", "eu-west-1");
        assert!(matches!(CertificateArn::id_for(&other_region, &owner()), Err(AcmError::NotFound(_))));
        let never_minted = "arn:aws:acm:us-east-1:123456789012:certificate/_0000000-0000-0000-0000-000000000000";
        assert_eq!(CertificateArn::id_for(never_minted, &owner()).unwrap(), "_0000000-0000-0000-0000-000000000000");
        for bad in [
            "arn:aws:acm:us-east-1:123456789012:acme-endpoint/x",
            "arn:aws:iam:us-east-1:123456789012:certificate/x",
            "arn:aws:acm:us-east-1:1234:certificate/x",
            "arn:aws:acm:us-east-1:123456789012:certificate/",
            "arn:aws:acm:us-east-1:123456789012:certificate/a/b",
        ] {
            assert!(matches!(CertificateArn::parse(bad), Err(AcmError::InvalidArn(_))), "{bad}");
        }
    }

    #[test]
    fn tags() {
        let t = |k: &str, v: Option<&str>| Tag { key: k.into(), value: v.map(Into::into) };
        let mut tags = vec![t("a", Some("1"))];
        merge_tags(&mut tags, &[t("a", Some("2")), t("b", None)]).unwrap();
        assert_eq!(tags, [t("a", Some("2")), t("b", None)]);
        assert!(matches!(merge_tags(&mut tags, &[t("aws:x", None)]), Err(AcmError::InvalidTag(_))));
        let many: Vec<Tag> = (0..49).map(|i| t(&format!("k{i}"), None)).collect();
        assert!(matches!(merge_tags(&mut tags, &many), Err(AcmError::TooManyTags(_))));
        assert_eq!(tags.len(), 2, "a refused merge changes nothing");
        remove_tags(&mut tags, &[t("a", Some("wrong")), t("b", None)]).unwrap();
        assert_eq!(tags, [t("a", Some("2"))]);
        remove_tags(&mut tags, &[t("a", Some("2"))]).unwrap();
        assert!(tags.is_empty());
    }
}
