//! DNS checks: the validation CNAME and the CAA records.
//!
//! The trait and its answers are always here; [`Resolver`] (feature `dns`) answers them with
//! hickory-resolver through the configured name servers (or the system's).
//!
//! ## CAA (RFC 8659)
//!
//! [`DnsChecker::caa_allows`] climbs from the domain towards the root and uses the first
//! (closest) CAA RRset found (§3). Within it, for a wildcard name, `issuewild` properties
//! take precedence when any exist (§4.3); otherwise `issue` properties decide (§4.2). No
//! `issue`/`issuewild` property at all means no restriction. An unknown property with the
//! issuer-critical flag forbids issuance (§4.1). The issuer is named by its domain, the part
//! of the value before any `;` parameters, compared without case and trailing dot.

#[cfg(feature = "dns")]
mod resolver;
#[cfg(feature = "dns")]
pub use resolver::Resolver;

/// A lookup that could not be answered (timeout, SERVFAIL, bad configuration). The caller
/// retries later; it is never taken as "record absent".
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {name} {rtype} failed: {reason}")]
pub struct DnsError {
    /// The name looked up.
    pub name: String,
    /// The record type.
    pub rtype: String,
    /// Why.
    pub reason: String,
}

/// What a CNAME check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CnameCheck {
    /// The CNAME exists and points where it must.
    Match,
    /// There is no CNAME at the name.
    Missing,
    /// There is a CNAME but it points elsewhere (holds the value found).
    Mismatch(String),
}

/// Looks up validation records.
#[async_trait::async_trait]
pub trait DnsChecker: Send + Sync {
    /// Whether the CNAME `name` → `value` is published.
    async fn check_cname(&self, name: &str, value: &str) -> Result<CnameCheck, DnsError>;

    /// Whether CAA allows `issuer` (a domain name such as `carapace.internal`) to issue for
    /// `domain` (a leading `*.` makes it a wildcard request). See the module docs.
    async fn caa_allows(&self, domain: &str, issuer: &str) -> Result<bool, DnsError>;
}

/// `name` in canonical form: lower case with a trailing dot.
pub fn fqdn(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    if lower.ends_with('.') { lower } else { format!("{lower}.") }
}

/// One CAA property as found in DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaaProperty {
    /// The issuer-critical flag.
    pub critical: bool,
    /// The tag, lower case (`issue`, `issuewild`, `iodef`, ...).
    pub tag: String,
    /// The value as text.
    pub value: String,
}

/// RFC 8659 §4 over the closest RRset: whether `issuer` may issue (see the module docs).
pub fn caa_set_allows(set: &[CaaProperty], wildcard: bool, issuer: &str) -> bool {
    const KNOWN: [&str; 6] = ["issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail"];
    if set.iter().any(|p| p.critical && !KNOWN.contains(&p.tag.as_str())) {
        return false;
    }
    let wild: Vec<&CaaProperty> = set.iter().filter(|p| p.tag == "issuewild").collect();
    let issue: Vec<&CaaProperty> = set.iter().filter(|p| p.tag == "issue").collect();
    let relevant = if wildcard && !wild.is_empty() { wild } else { issue };
    if relevant.is_empty() {
        // §4.2: "issue" absent (and, for wildcards, "issuewild" absent) — no restriction.
        return true;
    }
    let want = issuer.trim().trim_end_matches('.').to_ascii_lowercase();
    relevant.iter().any(|p| {
        let named = p.value.split(';').next().unwrap_or("").trim().trim_end_matches('.').to_ascii_lowercase();
        !named.is_empty() && named == want
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prop(tag: &str, value: &str) -> CaaProperty {
        CaaProperty { critical: false, tag: tag.into(), value: value.into() }
    }

    #[test]
    fn caa_rules() {
        let me = "carapace.internal";
        assert!(caa_set_allows(&[prop("issue", "carapace.internal")], false, me));
        assert!(caa_set_allows(&[prop("issue", "Carapace.Internal.; account=1")], false, me));
        assert!(!caa_set_allows(&[prop("issue", "letsencrypt.org")], false, me));
        assert!(!caa_set_allows(&[prop("issue", ";")], false, me), "empty issuer forbids everyone");
        assert!(caa_set_allows(&[prop("iodef", "mailto:a@b.c")], false, me), "no issue tag: unrestricted");
        // issuewild overrides issue for wildcards only.
        let set = [prop("issue", "carapace.internal"), prop("issuewild", "other.ca")];
        assert!(caa_set_allows(&set, false, me));
        assert!(!caa_set_allows(&set, true, me));
        assert!(caa_set_allows(&[prop("issue", "carapace.internal")], true, me), "issue applies to wildcards");
        let critical = CaaProperty { critical: true, tag: "future".into(), value: "x".into() };
        assert!(!caa_set_allows(&[critical, prop("issue", "carapace.internal")], false, me));
    }

    #[test]
    fn names_are_canonical() {
        assert_eq!(fqdn("A.Example.COM"), "a.example.com.");
        assert_eq!(fqdn("a.example.com."), "a.example.com.");
    }
}
