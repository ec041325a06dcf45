//! Reading certificates: Describe, Get, List (keyset-paginated), Search and the per-domain
//! validation listing.
//!
//! ## Pagination tokens
//!
//! NextTokens are opaque to clients: base64url of a small JSON document holding the position
//! after which the next page starts (the last item's `(created_ms, id)` for ListCertificates,
//! its sort value and ARN for SearchCertificates), the direction, and a hash of the scope and
//! filters. A position rather than an offset means a certificate created or deleted between
//! pages never makes a walk skip or repeat another one; the hash makes a token from another
//! query, account or region an `InvalidArgsException` instead of a silently wrong page.

use base64::Engine as _;
use carapace_store::{Clause, Cursor, Key, Order, Scan};
use serde::{Deserialize, Serialize};

use super::index;
use super::record::{
    self, CertificateRecord, CertificateType, DomainValidation, HeldBy, KeyPairOrigin, ManagedBy, Material,
};
use super::state::Status;
use super::validation::ResourceRecord;
use super::{AcmError, CertificateManager, Owner};
use crate::ca::KeyAlgorithm;

/// Index entries one ListCertificates or SearchCertificates call reads at most: a filter
/// whose clauses are each broad but rarely true together stops here and hands back a
/// NextToken. About 10-20 ms of reading on SQLite.
const READ_BUDGET: usize = 20_000;

/// What [`CertificateManager::walk_indexed`] found.
struct Walked {
    items: Vec<CertificateView>,
    /// Where the next page starts, if there may be one.
    resume: Option<Cursor>,
}

/// A certificate as a reader sees it at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateView {
    /// The stored record.
    pub record: CertificateRecord,
    /// The status now (issued certificates past `NotAfter` read as expired).
    pub status: Status,
    /// `RenewalEligibility` now.
    pub renewal_eligible: bool,
    /// ACM's `Issuer`: the issued certificate's, or for one Carapace has not issued yet the
    /// CA that will issue it (ACM shows `Amazon` while pending: LocalStack's recordings of
    /// AWS, `tests/aws/services/acm/test_acm.snapshot.json`, test_domain_validation and
    /// test_create_certificate_for_multiple_alternative_domains).
    pub issuer: Option<String>,
}

impl CertificateManager {
    fn view(&self, record: CertificateRecord) -> CertificateView {
        let now = self.now_ms();
        let issuer = match &record.x509 {
            Some(x) => Some(x.issuer.clone()),
            None if record.cert_type == CertificateType::AmazonIssued => {
                Some(self.core.ca.issuer_name(record.key_algorithm.family()).to_owned())
            }
            None => None,
        };
        CertificateView {
            status: record.status_at(now),
            renewal_eligible: record.renewal_eligible(now),
            issuer,
            record,
        }
    }

    /// DescribeCertificate.
    pub async fn describe_certificate(&self, owner: &Owner, arn: &str) -> Result<CertificateView, AcmError> {
        Ok(self.view(self.load(owner, arn).await?.record))
    }

    /// GetCertificate: the leaf and its chain (intermediate, then root). Never the key.
    pub async fn get_certificate(&self, owner: &Owner, arn: &str) -> Result<(String, String), AcmError> {
        let loaded = self.load(owner, arn).await?;
        if loaded.record.x509.is_none() {
            return Err(not_yet_issued(arn, owner));
        }
        let material = self.material(owner, &loaded.id).await?;
        Ok((material.certificate_pem, material.chain_pem))
    }

    /// Reads a certificate's material row.
    pub(crate) async fn material(&self, owner: &Owner, id: &str) -> Result<Material, AcmError> {
        let row = self
            .core
            .store
            .get(&Key::new(record::MATERIAL_KIND, owner.scope(), id))
            .await?
            .ok_or_else(|| AcmError::Internal(format!("certificate {id} has no material row")))?;
        Material::decode(&row.body).map_err(AcmError::Internal)
    }

    /// ListCertificates.
    pub async fn list_certificates(&self, owner: &Owner, query: &ListQuery) -> Result<ListPage, AcmError> {
        let scope = owner.scope();
        let fingerprint = query.filter.fingerprint(&scope, query.descending);
        let after = match &query.next_token {
            Some(token) => {
                let t: ListToken = decode_token(token)?;
                if t.f != fingerprint {
                    return Err(bad_token());
                }
                Some(Cursor { created_ms: t.c, id: t.i })
            }
            None => None,
        };
        let order = if query.descending { Order::Descending } else { Order::Ascending };
        let max = query.max_items.clamp(1, 1000);
        let clauses = index::list_clauses(&query.filter);
        let page = self.walk_indexed(owner, &clauses, None, order, after, max, |v| query.filter.matches(v)).await?;
        Ok(ListPage { items: page.items, next_token: page.resume.map(|c| list_token(&c, &fingerprint)) })
    }

    /// Up to `max` certificates in `(created_ms, id)` order from `after` that meet the
    /// indexed `clauses` and then `check` (what the index cannot tell: the status at read
    /// time, the filters it does not hold). The store reads only index entries of matching
    /// rows plus what it passes over, at most [`READ_BUDGET`] per call; so a page can come
    /// back short, with a position to resume from, rather than read the whole table. After
    /// a full page it looks a little further for one more match, so the last page of a walk
    /// comes without a NextToken (as ACM's does) in the common case.
    #[allow(clippy::too_many_arguments)]
    async fn walk_indexed(
        &self,
        owner: &Owner,
        clauses: &[Clause],
        holder: Option<HeldBy>,
        order: Order,
        mut after: Option<Cursor>,
        max: usize,
        check: impl Fn(&CertificateView) -> bool,
    ) -> Result<Walked, AcmError> {
        let scope = owner.scope();
        let mut items = Vec::new();
        let mut last: Option<Cursor> = None;
        let mut examined = 0usize;
        loop {
            let want = max + 1 - items.len().min(max);
            let scan =
                Scan { kind: record::KIND, scope: &scope, id_prefix: None, after: after.clone(), order, limit: want };
            let page =
                self.core.store.scan_filtered(scan, clauses, READ_BUDGET.saturating_sub(examined).max(want)).await?;
            examined += page.examined;
            for row in &page.rows {
                let position = Cursor { created_ms: row.created_ms, id: row.key.id.clone() };
                let record = match CertificateRecord::decode(&row.body) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(key = %row.key, error = %e, "skipping an unreadable certificate record");
                        continue;
                    }
                };
                let view = self.view(record);
                // Certificates other services hold (Lightsail's) are not ACM's to list, and
                // a holder lists only its own.
                if view.record.held_by != holder || !check(&view) {
                    continue;
                }
                if items.len() >= max {
                    // Another match exists: the page is full and a next one follows.
                    return Ok(Walked { items, resume: last });
                }
                last = Some(position);
                items.push(view);
            }
            let Some(resume) = page.resume else { return Ok(Walked { items, resume: None }) };
            after = Some(resume);
            if examined >= READ_BUDGET {
                // Enough read for one call: resume after the last item of a full page, else
                // after the last entry read (every match before it is in this page).
                let resume = if items.len() >= max { last } else { after };
                return Ok(Walked { items, resume });
            }
        }
    }

    /// The certificates `holder` holds whose status reads as one of `statuses` (any when
    /// empty), oldest first from `after`: a page of up to `max` and where the next starts.
    /// Read from the index like ListCertificates, so a page reads its own rows.
    pub(crate) async fn list_held(
        &self,
        owner: &Owner,
        holder: HeldBy,
        statuses: &[Status],
        after: Option<Cursor>,
        max: usize,
    ) -> Result<(Vec<CertificateView>, Option<Cursor>), AcmError> {
        let clauses = index::held_clauses(holder, statuses);
        let check = |v: &CertificateView| statuses.is_empty() || statuses.contains(&v.status);
        let page = self.walk_indexed(owner, &clauses, Some(holder), Order::Ascending, after, max, check).await?;
        Ok((page.items, page.resume))
    }

    /// Every certificate of the caller, oldest first.
    #[cfg(test)]
    pub(crate) async fn all_certificates(&self, owner: &Owner) -> Result<Vec<CertificateView>, AcmError> {
        let mut out = Vec::new();
        self.for_each_certificate(owner, |v| out.push(v)).await?;
        Ok(out)
    }

    /// Hands every certificate of the caller to `visit`, oldest first, reading the scope
    /// in batches of 1,000 (so memory holds a batch, not the scope). Certificates another
    /// service holds (Lightsail's) are skipped.
    async fn for_each_certificate(
        &self,
        owner: &Owner,
        mut visit: impl FnMut(CertificateView),
    ) -> Result<(), AcmError> {
        let scope = owner.scope();
        let mut after = None;
        loop {
            let rows = self
                .core
                .store
                .scan(Scan {
                    kind: record::KIND,
                    scope: &scope,
                    id_prefix: None,
                    after,
                    order: Order::Ascending,
                    limit: 1000,
                })
                .await?;
            let Some(last) = rows.last() else { return Ok(()) };
            after = Some(Cursor { created_ms: last.created_ms, id: last.key.id.clone() });
            let full = rows.len() == 1000;
            for row in rows {
                match CertificateRecord::decode(&row.body) {
                    Ok(r) if r.held_by.is_some() => {} // another service's (Lightsail's)
                    Ok(r) => visit(self.view(r)),
                    Err(e) => tracing::error!(key = %row.key, error = %e, "skipping an unreadable certificate record"),
                }
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// SearchCertificates: every certificate matching `query.matches`, sorted by
    /// `query.sort_key` (ties by ARN), paginated by position.
    pub async fn search_certificates(&self, owner: &Owner, query: &SearchQuery<'_>) -> Result<SearchPage, AcmError> {
        let fingerprint = hash(&format!("{}|{}|{}", owner.scope(), query.fingerprint, query.descending));
        let after: Option<(SortValue, String)> = match &query.next_token {
            Some(token) => {
                let t: SearchToken = decode_token(token)?;
                if t.f != fingerprint {
                    return Err(bad_token());
                }
                Some((t.v, t.a))
            }
            None => None,
        };
        let max = query.max_results.clamp(1, 500);
        if query.by_creation {
            // Sorted by creation (the default): the listing order of the store, so a page
            // reads its own rows (plus those its indexed conditions cannot rule out), like
            // ListCertificates. The position is the same `(created_ms, ARN)` as below, and
            // ARNs of one scope differ only by id, so the orders agree.
            let order = if query.descending { Order::Descending } else { Order::Ascending };
            let after = match after {
                None => None,
                Some((SortValue::Int(created_ms), arn)) => {
                    Some(Cursor { created_ms, id: arn.rsplit('/').next().unwrap_or_default().to_owned() })
                }
                Some(_) => return Err(bad_token()),
            };
            let clauses = index::search_clauses(&query.narrows);
            let page = self.walk_indexed(owner, &clauses, None, order, after, max, |v| (query.matches)(v)).await?;
            let next_token = page.resume.map(|c| {
                let a = super::names::CertificateArn::format(owner, &c.id);
                encode_token(&SearchToken { v: SortValue::Int(c.created_ms), a, f: fingerprint.clone() })
            });
            return Ok(SearchPage { items: page.items, next_token });
        }
        // Sorted by another field: no index holds that order, so every certificate of the
        // scope is read (in batches), but only the best page beyond the position is kept,
        // so memory stays a page's whatever the account holds. Ties go by ARN.
        type Keyed = ((SortValue, String), CertificateView);
        let order = |a: &Keyed, b: &Keyed| if query.descending { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) };
        let beyond = |k: &(SortValue, String)| match &after {
            None => true,
            Some(pos) if query.descending => k < pos,
            Some(pos) => k > pos,
        };
        let want = max + 1;
        let mut best: Vec<Keyed> = Vec::new();
        self.for_each_certificate(owner, |v| {
            if !(query.matches)(&v) {
                return;
            }
            let key = ((query.sort_key)(&v), v.record.arn.clone());
            if beyond(&key) {
                best.push((key, v));
                if best.len() >= 4 * want {
                    best.sort_by(order);
                    best.truncate(want);
                }
            }
        })
        .await?;
        best.sort_by(order);
        let next_token = (best.len() > max).then(|| {
            let (v, a) = best[max - 1].0.clone();
            encode_token(&SearchToken { v, a, f: fingerprint.clone() })
        });
        best.truncate(max);
        Ok(SearchPage { items: best.into_iter().map(|(_, v)| v).collect(), next_token })
    }

    /// ListCertificateDomainValidations: per-domain validation, paginated by index. While a
    /// validation-method change is pending, each domain also carries the requested method's
    /// challenge.
    pub async fn list_domain_validations(
        &self,
        owner: &Owner,
        arn: &str,
        max_items: usize,
        next_token: Option<&str>,
    ) -> Result<DomainValidationPage, AcmError> {
        let loaded = self.load(owner, arn).await?;
        let fingerprint = hash(&format!("{}|{arn}", owner.scope()));
        let start = match next_token {
            Some(token) => {
                let t: IndexToken = decode_token(token)?;
                if t.f != fingerprint {
                    return Err(bad_token());
                }
                t.n
            }
            None => 0,
        };
        let record = loaded.record;
        let requested_dns = match &record.method_update {
            Some(u) if !u.done && u.to == record::ValidationMethod::Dns => Some(self.secret().await?),
            _ => None,
        };
        let max = max_items.clamp(1, 1000);
        let domains: Vec<DomainValidation> = record.domains.iter().skip(start).take(max).cloned().collect();
        let requested =
            domains.iter().map(|d| requested_dns.map(|s| s.dns_record(&owner.account, &d.domain_name))).collect();
        let end = start + domains.len();
        let next_token = (end < record.domains.len()).then(|| encode_token(&IndexToken { n: end, f: fingerprint }));
        Ok(DomainValidationPage { domains, requested_dns: requested, method_update: record.method_update, next_token })
    }
}

/// The `RequestInProgressException` of a certificate without a leaf.
pub(crate) fn not_yet_issued(arn: &str, owner: &Owner) -> AcmError {
    AcmError::RequestInProgress(format!("Certificate {arn} in account {} not yet issued", owner.account))
}

/// ListCertificates filters (`CertificateStatuses`, `Includes`, `CertificateKeyPairOrigins`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Statuses to include; empty for all.
    pub statuses: Vec<Status>,
    /// Key algorithms; `None` for ACM's default (RSA_1024 and RSA_2048 only).
    pub key_types: Option<Vec<KeyAlgorithm>>,
    /// Extended key usage names; a certificate matches when it has one of them.
    pub extended_key_usages: Vec<String>,
    /// Key usage names; a certificate matches when it has one of them.
    pub key_usages: Vec<String>,
    /// Export option: `Some(true)` for ENABLED, `Some(false)` for DISABLED.
    pub export_enabled: Option<bool>,
    /// Managing service.
    pub managed_by: Option<ManagedBy>,
    /// Key pair origins; `None` for ACM's default (all but ACME).
    pub key_pair_origins: Option<Vec<KeyPairOrigin>>,
}

/// The key types ListCertificates includes when the caller names none (ACM documents
/// RSA_1024 and RSA_2048; EC certificates are listed only when asked for).
pub const DEFAULT_LIST_KEY_TYPES: [KeyAlgorithm; 2] = [KeyAlgorithm::Rsa1024, KeyAlgorithm::Rsa2048];

impl ListFilter {
    /// Does the certificate pass every filter?
    pub fn matches(&self, view: &CertificateView) -> bool {
        let r = &view.record;
        if !self.statuses.is_empty() && !self.statuses.contains(&view.status) {
            return false;
        }
        let key_ok = match &self.key_types {
            Some(types) => types.contains(&r.key_algorithm),
            None => DEFAULT_LIST_KEY_TYPES.contains(&r.key_algorithm),
        };
        if !key_ok {
            return false;
        }
        let origin_ok = match &self.key_pair_origins {
            Some(origins) => origins.contains(&r.key_pair_origin),
            None => r.key_pair_origin != KeyPairOrigin::Acme,
        };
        if !origin_ok {
            return false;
        }
        let facts = r.x509.as_ref();
        if !self.extended_key_usages.is_empty()
            && !facts.is_some_and(|x| x.extended_key_usages.iter().any(|(n, _)| self.extended_key_usages.contains(n)))
        {
            return false;
        }
        if !self.key_usages.is_empty()
            && !facts.is_some_and(|x| x.key_usages.iter().any(|k| self.key_usages.contains(k)))
        {
            return false;
        }
        if self.export_enabled.is_some_and(|e| e != r.options.export) {
            return false;
        }
        if self.managed_by.is_some() && self.managed_by != r.managed_by {
            return false;
        }
        true
    }

    fn fingerprint(&self, scope: &str, descending: bool) -> String {
        hash(&format!("{scope}|{self:?}|{descending}"))
    }
}

/// A ListCertificates request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Filters.
    pub filter: ListFilter,
    /// Newest first.
    pub descending: bool,
    /// Page size, 1..=1000.
    pub max_items: usize,
    /// Where to resume.
    pub next_token: Option<String>,
}

/// One page of ListCertificates.
#[derive(Debug, Clone)]
pub struct ListPage {
    /// The certificates.
    pub items: Vec<CertificateView>,
    /// Where the next page starts, if there may be one.
    pub next_token: Option<String>,
}

/// A value SearchCertificates sorts by. Missing values sort first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SortValue {
    /// No value (e.g. `NotAfter` of a pending certificate).
    Missing,
    /// A boolean.
    Bool(bool),
    /// A number (timestamps in milliseconds).
    Int(i64),
    /// Text.
    Text(String),
}

/// A SearchCertificates request. The handler translates the wire filter statement into
/// `matches` and the sort field into `sort_key`.
pub struct SearchQuery<'a> {
    /// Which certificates match.
    pub matches: &'a (dyn Fn(&CertificateView) -> bool + Send + Sync),
    /// The value to sort by.
    pub sort_key: &'a (dyn Fn(&CertificateView) -> SortValue + Send + Sync),
    /// Descending order.
    pub descending: bool,
    /// Page size, 1..=500.
    pub max_results: usize,
    /// Where to resume.
    pub next_token: Option<String>,
    /// A stable description of the filter and sort, binding tokens to this query.
    pub fingerprint: String,
    /// Sorted by creation time: the page is read in the store's listing order.
    pub by_creation: bool,
    /// Conditions every match meets that the index holds (a superset filter: `matches`
    /// still decides).
    pub narrows: Vec<index::Narrow>,
}

/// One page of SearchCertificates.
#[derive(Debug, Clone)]
pub struct SearchPage {
    /// The certificates.
    pub items: Vec<CertificateView>,
    /// Where the next page starts.
    pub next_token: Option<String>,
}

/// One page of ListCertificateDomainValidations.
#[derive(Debug, Clone)]
pub struct DomainValidationPage {
    /// The domains' current validation.
    pub domains: Vec<DomainValidation>,
    /// For each domain, the DNS record of a pending change to DNS validation.
    pub requested_dns: Vec<Option<ResourceRecord>>,
    /// The pending or finished validation-method change.
    pub method_update: Option<record::MethodUpdate>,
    /// Where the next page starts.
    pub next_token: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ListToken {
    c: i64,
    i: String,
    f: String,
}

#[derive(Serialize, Deserialize)]
struct SearchToken {
    v: SortValue,
    a: String,
    f: String,
}

#[derive(Serialize, Deserialize)]
struct IndexToken {
    n: usize,
    f: String,
}

fn list_token(c: &Cursor, fingerprint: &str) -> String {
    encode_token(&ListToken { c: c.created_ms, i: c.id.clone(), f: fingerprint.to_owned() })
}

fn encode_token(t: &impl Serialize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(t).unwrap_or_default())
}

fn decode_token<T: serde::de::DeserializeOwned>(token: &str) -> Result<T, AcmError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad_token())?;
    serde_json::from_slice(&bytes).map_err(|_| bad_token())
}

fn bad_token() -> AcmError {
    AcmError::InvalidArgs("The NextToken is not valid for this request.".into())
}

fn hash(text: &str) -> String {
    hex::encode(&aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref()[..12])
}
