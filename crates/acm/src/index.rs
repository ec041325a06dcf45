//! The indexed attributes of a certificate record, and the store clauses of ACM's listing
//! filters (see [`carapace_kernel::index`] for how they reach the store).
//!
//! Attributes are facts of the stored record. One is not what a reader sees: an issued
//! certificate past its `NotAfter` reads as `EXPIRED` while its stored status stays
//! `ISSUED`, so a status filter asks the index for the stored statuses that can read as the
//! wanted ones, and the listing checks the status at read time on the few rows it fetches.

use carapace_store::Clause;

use super::filter::{DEFAULT_LIST_KEY_TYPES, ListFilter};
use super::record::{
    self, CertificateRecord, CertificateType, HeldBy, KeyPairOrigin, ManagedBy, RenewalStatus, ValidationMethod,
};
use super::state::Status;
use carapace_kernel::ca::KeyAlgorithm;
use carapace_kernel::index::Indexer;

/// How certificate records are indexed. Bump `version` when [`attributes`] changes.
pub const INDEXER: Indexer = Indexer { kind: record::KIND, version: 5, derive };

/// The stored status (`ISSUED`, ...).
const STATUS: &str = "status";
/// `RSA_2048`, `EC_prime256v1`, ...
const KEY: &str = "key";
/// `AWS_MANAGED`, `CUSTOMER_PROVIDED`, `ACME`.
const ORIGIN: &str = "origin";
/// `ENABLED`; absent when export is disabled (most certificates).
const EXPORT: &str = "export";
/// `CLOUDFRONT`; absent when no service manages the certificate.
const MANAGED: &str = "managed";
/// One per extended key usage of the leaf (`TLS_WEB_SERVER_AUTHENTICATION`, ...).
const EKU: &str = "eku";
/// One per key usage of the leaf (`DIGITAL_SIGNATURE`, ...).
const KU: &str = "ku";
/// `lightsail` for a certificate another service holds; absent for ACM's own.
const HELD: &str = "held";
/// `N2_AMAZON_MANAGED` or `N2_SFG2_AMAZON_MANAGED`; absent for standard certificates.
const HIERARCHY: &str = "hierarchy";

// Sort keys of SearchCertificates (see [`sort_plan`]): a value that sorts bytewise as the
// field does. Times are [`time_key`]s. A field most certificates lack is absent rather than
// stored empty, so it costs nothing where it is not set.

/// The domain name (`COMMON_NAME`).
const CN: &str = "cn";
/// `EMAIL`, `DNS` or `HTTP`; absent for imported certificates.
const METHOD: &str = "method";
/// `NotAfter` of the leaf; with `not_before` and `issued`, present once there is a leaf.
const NOT_AFTER: &str = "not_after";
/// `NotBefore` of the leaf.
const NOT_BEFORE: &str = "not_before";
/// When Carapace issued the leaf; empty (sorting as missing) for imported ones.
const ISSUED: &str = "issued";
/// When it was imported; absent for requested certificates.
const IMPORTED: &str = "imported";
/// When it was revoked.
const REVOKED: &str = "revoked";
/// The renewal status, once a renewal began.
const RENEWAL: &str = "renewal";
/// `TRUE` once exported; absent (false) otherwise.
const EXPORTED: &str = "exported";
/// `TRUE` while another resource uses it.
const IN_USE: &str = "in_use";
/// `TRUE` when eligible for managed renewal, by its stored status.
const RENEWABLE: &str = "renewable";

/// A millisecond time as 16 hex digits whose bytewise order is the times' order.
fn time_key(ms: i64) -> String {
    // Flipping the sign bit maps i64 order onto u64 order.
    format!("{:016x}", (ms as u64) ^ (1 << 63))
}

fn derive(body: &[u8]) -> Option<Vec<(String, String)>> {
    CertificateRecord::decode(body).ok().map(|r| attributes(&r))
}

fn export_name(enabled: bool) -> &'static str {
    if enabled { "ENABLED" } else { "DISABLED" }
}

/// The export option is `enabled`: the attribute, or its absence.
fn export_clause(enabled: bool) -> Clause {
    if enabled { Clause::new(EXPORT, [export_name(true)]) } else { Clause::absent(EXPORT) }
}

/// The attributes of one record.
pub fn attributes(r: &CertificateRecord) -> Vec<(String, String)> {
    // Each attribute costs two index entries of about 100 bytes, so only what a filter or
    // an order needs is kept, and what most certificates lack (`held`, `managed`, `export`,
    // ...) only where set: a filter on its absence is a `Clause::absent` probe. ACM's
    // listings skip held certificates (few) as they read them; the holder's own listings
    // walk `held`.
    let mut out = vec![
        (STATUS.to_owned(), r.status.as_str().to_owned()),
        (KEY.to_owned(), r.key_algorithm.as_str().to_owned()),
        (ORIGIN.to_owned(), r.key_pair_origin.as_str().to_owned()),
    ];
    out.extend(r.options.export.then(|| (EXPORT.to_owned(), export_name(true).to_owned())));
    out.extend(r.managed_by.map(|m| (MANAGED.to_owned(), m.as_str().to_owned())));
    out.extend(r.held_by.map(|h| (HELD.to_owned(), h.as_str().to_owned())));
    out.extend(r.root_hierarchy.map(|h| (HIERARCHY.to_owned(), h.as_str().to_owned())));
    if let Some(x) = &r.x509 {
        out.extend(x.extended_key_usages.iter().map(|(n, _)| (EKU.to_owned(), n.clone())));
        out.extend(x.key_usages.iter().map(|k| (KU.to_owned(), k.clone())));
        out.push((NOT_AFTER.to_owned(), time_key(x.not_after_ms)));
        out.push((NOT_BEFORE.to_owned(), time_key(x.not_before_ms)));
        out.push((ISSUED.to_owned(), r.issued_ms.map(time_key).unwrap_or_default()));
    }
    out.push((CN.to_owned(), r.domain_name.clone()));
    out.extend(r.validation_method.map(|m| (METHOD.to_owned(), m.as_str().to_owned())));
    out.extend(r.imported_ms.map(|ms| (IMPORTED.to_owned(), time_key(ms))));
    out.extend(r.revoked_ms.map(|ms| (REVOKED.to_owned(), time_key(ms))));
    out.extend(r.renewal.as_ref().map(|rn| (RENEWAL.to_owned(), rn.status.as_str().to_owned())));
    let flag = |on: bool, attribute: &str| on.then(|| (attribute.to_owned(), "TRUE".to_owned()));
    out.extend(flag(r.exported, EXPORTED));
    out.extend(flag(!r.in_use_by.is_empty(), IN_USE));
    let renewable = r.cert_type == CertificateType::AmazonIssued
        && r.status == Status::Issued
        && (!r.in_use_by.is_empty() || r.exported || r.options.export);
    out.extend(flag(renewable, RENEWABLE));
    out
}

/// A field SearchCertificates sorts by (`SortBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortField {
    /// `CREATED_AT`.
    CreatedAt,
    /// `NOT_AFTER`.
    NotAfter,
    /// `NOT_BEFORE`.
    NotBefore,
    /// `ISSUED_AT`.
    IssuedAt,
    /// `IMPORTED_AT`.
    ImportedAt,
    /// `REVOKED_AT`.
    RevokedAt,
    /// `STATUS`.
    Status,
    /// `RENEWAL_STATUS`.
    RenewalStatus,
    /// `EXPORTED`.
    Exported,
    /// `IN_USE`.
    InUse,
    /// `KEY_ALGORITHM`.
    KeyAlgorithm,
    /// `TYPE`.
    Type,
    /// `CERTIFICATE_ARN`.
    CertificateArn,
    /// `COMMON_NAME`.
    CommonName,
    /// `RENEWAL_ELIGIBILITY`.
    RenewalEligibility,
    /// `MANAGED_BY`.
    ManagedBy,
    /// `EXPORT_OPTION`.
    ExportOption,
    /// `VALIDATION_METHOD`.
    ValidationMethod,
    /// `CERTIFICATE_KEY_PAIR_ORIGIN`.
    KeyPairOrigin,
    /// A field no Carapace certificate has (`ACME_ENDPOINT_ARN`, `ACME_ACCOUNT_ID`): every
    /// value is missing, so the order is the ties' order, creation time.
    AlwaysMissing,
}

impl SortField {
    /// Every field.
    pub const ALL: [SortField; 20] = [
        SortField::CreatedAt,
        SortField::NotAfter,
        SortField::NotBefore,
        SortField::IssuedAt,
        SortField::ImportedAt,
        SortField::RevokedAt,
        SortField::Status,
        SortField::RenewalStatus,
        SortField::Exported,
        SortField::InUse,
        SortField::KeyAlgorithm,
        SortField::Type,
        SortField::CertificateArn,
        SortField::CommonName,
        SortField::RenewalEligibility,
        SortField::ManagedBy,
        SortField::ExportOption,
        SortField::ValidationMethod,
        SortField::KeyPairOrigin,
        SortField::AlwaysMissing,
    ];
}

/// How the store walks one sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortPlan {
    /// Creation time, the store's listing order.
    Creation,
    /// The id, which orders ARNs within a scope (they differ only by it).
    Id,
    /// The values of an attribute, ties by creation time. `lacking`: certificates without
    /// the attribute sort before every value (a missing value, or `false`); this clause
    /// holds for all of them (and perhaps others, which the walk's absence probe drops).
    Attribute {
        /// The attribute.
        name: &'static str,
        /// The walk of the certificates without it, if there can be any.
        lacking: Option<Clause>,
        /// Every value it can have, in order, when they are few (an enum's): a search with
        /// indexed conditions then reads one value at a time in creation order, letting the
        /// most selective condition drive each part, rather than walking the sort attribute
        /// and probing every certificate (`STATUS` with a 1 % key algorithm).
        values: Option<Vec<String>>,
    },
}

/// Every value of an enum field, as stored and in bytewise order.
fn domain(names: impl IntoIterator<Item = String>) -> Option<Vec<String>> {
    let mut out: Vec<String> = names.into_iter().collect();
    out.sort();
    Some(out)
}

/// Every key pair origin: a clause every certificate meets.
fn any_origin() -> Clause {
    Clause::new(
        ORIGIN,
        [KeyPairOrigin::AwsManaged, KeyPairOrigin::Acme, KeyPairOrigin::CustomerProvided]
            .iter()
            .map(|o| o.as_str().to_owned()),
    )
}

/// The stored statuses a certificate without a leaf can have: a record becomes `ISSUED`
/// only with its leaf (issuance and import write both at once), and `EXPIRED` only from
/// `ISSUED`.
fn leafless() -> Clause {
    let statuses = Status::ALL.into_iter().filter(|s| !matches!(s, Status::Issued | Status::Expired));
    Clause::new(STATUS, statuses.map(Status::as_str))
}

/// How SearchCertificates reads `field` in order.
///
/// `STATUS` and `RENEWAL_ELIGIBILITY` sort by the stored status: a certificate past its
/// `NotAfter` reads as `EXPIRED` at once but sorts as `ISSUED` until the expiry job records
/// it (at `NotAfter`, on the next worker pass). `TYPE` sorts by key pair origin, which
/// Carapace pairs with it (requested: `AMAZON_ISSUED` and `AWS_MANAGED`; imported:
/// `IMPORTED` and `CUSTOMER_PROVIDED`), in the same order.
pub fn sort_plan(field: SortField) -> SortPlan {
    let attribute = |name, lacking, values| SortPlan::Attribute { name, lacking, values };
    let flag = || domain(["TRUE".to_owned()]);
    match field {
        SortField::CreatedAt | SortField::AlwaysMissing => SortPlan::Creation,
        SortField::CertificateArn => SortPlan::Id,
        SortField::Status => attribute(STATUS, None, domain(Status::ALL.map(|s| s.as_str().to_owned()))),
        SortField::KeyAlgorithm => attribute(KEY, None, domain(KeyAlgorithm::ALL.map(|k| k.as_str().to_owned()))),
        SortField::KeyPairOrigin | SortField::Type => attribute(ORIGIN, None, domain(any_origin().values)),
        SortField::ExportOption => attribute(EXPORT, Some(any_origin()), domain([export_name(true).to_owned()])),
        SortField::CommonName => attribute(CN, None, None),
        SortField::NotAfter => attribute(NOT_AFTER, Some(leafless()), None),
        SortField::NotBefore => attribute(NOT_BEFORE, Some(leafless()), None),
        SortField::IssuedAt => attribute(ISSUED, Some(leafless()), None),
        SortField::ValidationMethod => attribute(
            METHOD,
            Some(Clause::new(ORIGIN, [KeyPairOrigin::CustomerProvided.as_str().to_owned()])),
            domain(
                [ValidationMethod::Email, ValidationMethod::Dns, ValidationMethod::Http].map(|m| m.as_str().to_owned()),
            ),
        ),
        SortField::ImportedAt => attribute(IMPORTED, Some(any_origin()), None),
        SortField::RevokedAt => attribute(REVOKED, Some(any_origin()), None),
        SortField::RenewalStatus => attribute(
            RENEWAL,
            Some(any_origin()),
            domain(
                [
                    RenewalStatus::PendingAutoRenewal,
                    RenewalStatus::PendingValidation,
                    RenewalStatus::Success,
                    RenewalStatus::Failed,
                ]
                .map(|s| s.as_str().to_owned()),
            ),
        ),
        SortField::Exported => attribute(EXPORTED, Some(any_origin()), flag()),
        SortField::InUse => attribute(IN_USE, Some(any_origin()), flag()),
        SortField::RenewalEligibility => attribute(RENEWABLE, Some(any_origin()), flag()),
        SortField::ManagedBy => {
            attribute(MANAGED, Some(any_origin()), domain([ManagedBy::Cloudfront.as_str().to_owned()]))
        }
    }
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
        out.push(Clause::new(MANAGED, [managed.as_str().to_owned()]));
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
        out.push(export_clause(export));
    }
    // N2 certificates are listed only when asked for; the default leaves them out, and the
    // listing drops them as it reads (as it does held ones).
    if !f.root_hierarchies.is_empty() {
        out.push(Clause::new(HIERARCHY, f.root_hierarchies.iter().map(|h| h.as_str())));
    }
    // Every certificate Carapace holds was requested or imported (it issues nothing through
    // ACME), so origins that include both hold for all of them: ACM's default then costs no
    // probe per row (a page of 1,000 spent a third of its statement on it). The listing
    // still checks each row it returns against the filter.
    let origins =
        f.key_pair_origins.as_deref().unwrap_or(&[KeyPairOrigin::AwsManaged, KeyPairOrigin::CustomerProvided]);
    if !HELD_ORIGINS.iter().all(|o| origins.contains(o)) {
        out.push(Clause::new(ORIGIN, origins.iter().map(|o| o.as_str().to_owned())));
    }
    out
}

/// The key pair origins Carapace's certificates can have.
const HELD_ORIGINS: [KeyPairOrigin; 2] = [KeyPairOrigin::AwsManaged, KeyPairOrigin::CustomerProvided];

/// The clauses of a holder's listing of its certificates with one of `statuses` (all of
/// them when empty): the holder's first, since it is the smaller set of the two in the
/// common case.
pub fn held_clauses(holder: HeldBy, statuses: &[Status]) -> Vec<Clause> {
    let mut out = vec![Clause::new(HELD, [holder.as_str().to_owned()])];
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
            Narrow::Origin(o) => Clause::new(ORIGIN, [o.as_str().to_owned()]),
            Narrow::ExtendedKeyUsage(e) => Clause::new(EKU, [e.clone()]),
            Narrow::KeyUsage(k) => Clause::new(KU, [k.clone()]),
            Narrow::Export(e) => export_clause(*e),
            Narrow::ManagedBy(m) => Clause::new(MANAGED, [m.as_str().to_owned()]),
        });
    }
    // A walk in creation order needs a clause to drive it: an absence cannot.
    if !out.is_empty() && out.iter().all(|c| c.absent) {
        out.push(any_origin());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ValidationMethod;
    use crate::{CertificateManager, ListQuery, NewCertificate, Owner};

    /// ListCertificates through the index returns what filtering every certificate by hand
    /// returns, in order, at any page size: the index only narrows what is read.
    #[tokio::test]
    async fn indexed_listings_match_filtering_by_hand() {
        let (core, clock) = crate::testing::test_core(false);
        let manager = CertificateManager::new(core, crate::AcmSettings::default());
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
                export_enabled: Some(false),
                key_types: Some(KeyAlgorithm::ALL.to_vec()),
                ..Default::default()
            },
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
                    all.iter().filter(|v| filter.matches(&v.record, v.status)).map(|v| v.record.arn.as_str()).collect();
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
        assert_eq!(KeyPairOrigin::CustomerProvided.as_str(), "CUSTOMER_PROVIDED");
        assert_eq!(ManagedBy::Cloudfront.as_str(), "CLOUDFRONT");
        assert_eq!(stored_statuses(&[Status::Expired]), ["EXPIRED", "ISSUED"]);
        // ACM's default origins hold for every certificate Carapace has: no clause.
        assert_eq!(list_clauses(&ListFilter::default()), [Clause::new(KEY, ["RSA_1024", "RSA_2048"])]);
        let imported =
            ListFilter { key_pair_origins: Some(vec![KeyPairOrigin::CustomerProvided]), ..Default::default() };
        assert_eq!(list_clauses(&imported)[1], Clause::new(ORIGIN, ["CUSTOMER_PROVIDED"]));
    }
}
