//! The indexed attributes of a certificate record, and the store clauses of ACM's listing
//! filters (see [`crate::index`] for how they reach the store).
//!
//! Attributes are facts of the stored record. One is not what a reader sees: an issued
//! certificate past its `NotAfter` reads as `EXPIRED` while its stored status stays
//! `ISSUED`, so a status filter asks the index for the stored statuses that can read as the
//! wanted ones, and the listing checks the status at read time on the few rows it fetches.

use carapace_store::Clause;
use serde::Serialize;

use super::query::{DEFAULT_LIST_KEY_TYPES, ListFilter};
use super::record::{self, CertificateRecord, HeldBy, KeyPairOrigin, ManagedBy};
use super::state::Status;
use crate::ca::KeyAlgorithm;
use crate::index::Indexer;

/// How certificate records are indexed. Bump `version` when [`attributes`] changes.
pub const INDEXER: Indexer = Indexer { kind: record::KIND, version: 2, derive };

/// The stored status (`ISSUED`, ...).
const STATUS: &str = "status";
/// `RSA_2048`, `EC_prime256v1`, ...
const KEY: &str = "key";
/// `AWS_MANAGED`, `CUSTOMER_PROVIDED`, `ACME`.
const ORIGIN: &str = "origin";
/// `ENABLED` or `DISABLED`.
const EXPORT: &str = "export";
/// `CLOUDFRONT`; absent when no service manages the certificate.
const MANAGED: &str = "managed";
/// One per extended key usage of the leaf (`TLS_WEB_SERVER_AUTHENTICATION`, ...).
const EKU: &str = "eku";
/// One per key usage of the leaf (`DIGITAL_SIGNATURE`, ...).
const KU: &str = "ku";
/// `lightsail` for a certificate another service holds; absent for ACM's own.
const HELD: &str = "held";

fn derive(body: &[u8]) -> Option<Vec<(String, String)>> {
    CertificateRecord::decode(body).ok().map(|r| attributes(&r))
}

/// A serde enum's wire name (`SCREAMING_SNAKE_CASE` for these).
fn name(value: impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn export_name(enabled: bool) -> &'static str {
    if enabled { "ENABLED" } else { "DISABLED" }
}

/// The attributes of one record.
pub fn attributes(r: &CertificateRecord) -> Vec<(String, String)> {
    // Each attribute costs two index entries of about 100 bytes, so only what a filter
    // selects on is kept: `held` and `managed` exist only when set. ACM's listings skip
    // held certificates (few) as they read them; the holder's own listings walk `held`.
    let mut out = vec![
        (STATUS.to_owned(), r.status.as_str().to_owned()),
        (KEY.to_owned(), r.key_algorithm.as_str().to_owned()),
        (ORIGIN.to_owned(), name(r.key_pair_origin)),
        (EXPORT.to_owned(), export_name(r.options.export).to_owned()),
    ];
    out.extend(r.managed_by.map(|m| (MANAGED.to_owned(), name(m))));
    out.extend(r.held_by.map(|h| (HELD.to_owned(), name(h))));
    if let Some(x) = &r.x509 {
        out.extend(x.extended_key_usages.iter().map(|(n, _)| (EKU.to_owned(), n.clone())));
        out.extend(x.key_usages.iter().map(|k| (KU.to_owned(), k.clone())));
    }
    out
}

/// One indexed condition of a search (each holds for a matching certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Narrow {
    /// The status a reader sees.
    Status(Status),
    /// The key algorithm.
    KeyAlgorithm(KeyAlgorithm),
    /// The key pair origin.
    Origin(KeyPairOrigin),
    /// An extended key usage name.
    ExtendedKeyUsage(String),
    /// A key usage name.
    KeyUsage(String),
    /// The export option.
    Export(bool),
    /// The managing service.
    ManagedBy(ManagedBy),
}

/// The stored statuses that read as one of `wanted`.
fn stored_statuses(wanted: &[Status]) -> Vec<String> {
    let mut out: Vec<String> = wanted.iter().map(|s| s.as_str().to_owned()).collect();
    if wanted.contains(&Status::Expired) {
        out.push(Status::Issued.as_str().to_owned());
    }
    out
}

/// The clauses of a ListCertificates filter (with ACM's default key types and origins).
/// The store drives a listing by the clause with the fewest entries, and when several are
/// too common to tell apart, by the first: so the usually selective ones come first.
pub fn list_clauses(f: &ListFilter) -> Vec<Clause> {
    let mut out = Vec::new();
    if !f.statuses.is_empty() {
        out.push(Clause::new(STATUS, stored_statuses(&f.statuses)));
    }
    if let Some(managed) = f.managed_by {
        out.push(Clause::new(MANAGED, [name(managed)]));
    }
    if !f.extended_key_usages.is_empty() {
        out.push(Clause::new(EKU, f.extended_key_usages.clone()));
    }
    if !f.key_usages.is_empty() {
        out.push(Clause::new(KU, f.key_usages.clone()));
    }
    let keys = f.key_types.as_deref().unwrap_or(&DEFAULT_LIST_KEY_TYPES);
    out.push(Clause::new(KEY, keys.iter().map(|k| k.as_str())));
    if let Some(export) = f.export_enabled {
        out.push(Clause::new(EXPORT, [export_name(export)]));
    }
    let origins = match &f.key_pair_origins {
        Some(origins) => origins.iter().map(name).collect::<Vec<_>>(),
        None => [KeyPairOrigin::AwsManaged, KeyPairOrigin::CustomerProvided].iter().map(name).collect(),
    };
    out.push(Clause::new(ORIGIN, origins));
    out
}

/// The clauses of a holder's listing of its certificates with one of `statuses` (all of
/// them when empty): the holder's first, since it is the smaller set of the two in the
/// common case.
pub fn held_clauses(holder: HeldBy, statuses: &[Status]) -> Vec<Clause> {
    let mut out = vec![Clause::new(HELD, [name(holder)])];
    if !statuses.is_empty() {
        out.push(Clause::new(STATUS, stored_statuses(statuses)));
    }
    out
}

/// The clauses of a search's indexed conditions.
pub fn search_clauses(narrows: &[Narrow]) -> Vec<Clause> {
    let mut out = Vec::new();
    for n in narrows {
        out.push(match n {
            Narrow::Status(s) => Clause::new(STATUS, stored_statuses(&[*s])),
            Narrow::KeyAlgorithm(k) => Clause::new(KEY, [k.as_str()]),
            Narrow::Origin(o) => Clause::new(ORIGIN, [name(o)]),
            Narrow::ExtendedKeyUsage(e) => Clause::new(EKU, [e.clone()]),
            Narrow::KeyUsage(k) => Clause::new(KU, [k.clone()]),
            Narrow::Export(e) => Clause::new(EXPORT, [export_name(*e)]),
            Narrow::ManagedBy(m) => Clause::new(MANAGED, [name(m)]),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acm::record::ValidationMethod;
    use crate::acm::{CertificateManager, ListQuery, NewCertificate, Owner};

    /// ListCertificates through the index returns what filtering every certificate by hand
    /// returns, in order, at any page size: the index only narrows what is read.
    #[tokio::test]
    async fn indexed_listings_match_filtering_by_hand() {
        let (core, clock) = crate::runtime::test_core(false, crate::acm::AcmSettings::default());
        let manager = CertificateManager::new(core);
        let owner = Owner::new("111111111111", "us-east-1");
        for i in 0..30 {
            let key = [KeyAlgorithm::EcPrime256v1, KeyAlgorithm::Rsa2048, KeyAlgorithm::EcSecp384r1][i % 3];
            let new = NewCertificate {
                domain_name: format!("n{i}.example.com"),
                validation_method: Some(ValidationMethod::Dns),
                key_algorithm: Some(key),
                export: Some(i % 4 == 0),
                managed_by: (i % 5 == 0).then_some(ManagedBy::Cloudfront),
                ..Default::default()
            };
            manager.request_certificate(&owner, new).await.unwrap();
            clock.advance(i64::try_from(i % 2).unwrap());
        }
        let all = manager.all_certificates(&owner).await.unwrap();
        assert_eq!(all.len(), 30);
        let filters = [
            ListFilter::default(),
            ListFilter {
                key_types: Some(vec![KeyAlgorithm::EcPrime256v1, KeyAlgorithm::EcSecp384r1]),
                ..Default::default()
            },
            ListFilter {
                statuses: vec![Status::Issued],
                key_types: Some(KeyAlgorithm::ALL.to_vec()),
                ..Default::default()
            },
            ListFilter { statuses: vec![Status::PendingValidation], export_enabled: Some(true), ..Default::default() },
            ListFilter {
                key_types: Some(KeyAlgorithm::ALL.to_vec()),
                managed_by: Some(ManagedBy::Cloudfront),
                key_pair_origins: Some(vec![KeyPairOrigin::AwsManaged]),
                ..Default::default()
            },
            ListFilter { key_usages: vec!["DIGITAL_SIGNATURE".into()], ..Default::default() },
        ];
        for filter in filters {
            for descending in [false, true] {
                let mut expected: Vec<&str> =
                    all.iter().filter(|v| filter.matches(v)).map(|v| v.record.arn.as_str()).collect();
                if descending {
                    expected.reverse();
                }
                for max_items in [1, 4, 1000] {
                    let (mut seen, mut token) = (Vec::new(), None);
                    loop {
                        let query = ListQuery { filter: filter.clone(), descending, max_items, next_token: token };
                        let page = manager.list_certificates(&owner, &query).await.unwrap();
                        assert!(page.items.len() <= max_items);
                        seen.extend(page.items.into_iter().map(|v| v.record.arn));
                        token = page.next_token;
                        if token.is_none() {
                            break;
                        }
                    }
                    assert_eq!(seen, expected, "{filter:?} descending={descending} by {max_items}");
                }
            }
        }
    }

    #[test]
    fn wire_names() {
        assert_eq!(name(KeyPairOrigin::CustomerProvided), "CUSTOMER_PROVIDED");
        assert_eq!(name(ManagedBy::Cloudfront), "CLOUDFRONT");
        assert_eq!(stored_statuses(&[Status::Expired]), ["EXPIRED", "ISSUED"]);
        let default = list_clauses(&ListFilter::default());
        assert_eq!(default[0], Clause::new(KEY, ["RSA_1024", "RSA_2048"]));
        assert_eq!(default[1], Clause::new(ORIGIN, ["AWS_MANAGED", "CUSTOMER_PROVIDED"]));
    }
}
