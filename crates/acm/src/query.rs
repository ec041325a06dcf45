//! Reading certificates: Describe, Get, List (keyset-paginated), Search and the per-domain
//! validation listing.
//!
//! ## Pagination tokens
//!
//! NextTokens are opaque to clients: base64url of a small JSON document holding the position
//! after which the next page starts (the last item's `(created_ms, id)` for ListCertificates,
//! for SearchCertificates also its sort key), the direction, and a hash of the scope and
//! filters. A position rather than an offset means a certificate created or deleted between
//! pages never makes a walk skip or repeat another one; the hash makes a token from another
//! query, account or region an `InvalidArgsException` instead of a silently wrong page.

use base64::Engine as _;
use carapace_kernel::error::chain;
use carapace_store::{Clause, Cursor, Key, Order, Row, Scan, SortCursor, SortKey, SortedScan};
use serde::{Deserialize, Serialize};

use super::filter::ListFilter;
use super::index;
use super::record::{self, CertificateRecord, CertificateType, DomainValidation, HeldBy, Material};
use super::state::Status;
use super::validation::ResourceRecord;
use super::{AcmError, CertificateManager, Owner};

/// Index entries one ListCertificates or SearchCertificates call reads at most: a filter
/// whose clauses are each broad but rarely true together stops here and hands back a
/// NextToken. About 10-20 ms of reading on SQLite.
const READ_BUDGET: usize = 20_000;

/// A position in a walk of the store: after a row in creation order, or in a sorted
/// listing (its sort key, then creation order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Position {
    /// `(created_ms, id)`.
    #[serde(rename = "c")]
    Created(i64, String),
    /// `(value, created_ms, id)`.
    #[serde(rename = "s")]
    Sorted(String, i64, String),
}

/// Which store listing a walk reads.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// The rows meeting the clauses, in creation order ([`carapace_store::Store::scan_filtered`]).
    Created(&'a [Clause]),
    /// The rows meeting the clauses in a sort key's order ([`carapace_store::Store::scan_sorted`]).
    Sorted(SortKey<'a>, &'a [Clause]),
    /// The rows meeting the clauses whose attribute `.0` has the value `.1`, in creation
    /// order: one value's part of a sort by that attribute, positioned as in
    /// [`Source::Sorted`].
    Value(&'a str, &'a str, &'a [Clause]),
}

impl Source<'_> {
    /// Does `p` belong to a walk of this source?
    fn holds(&self, p: &Position) -> bool {
        match (self, p) {
            (Source::Created(_), Position::Created(..)) | (Source::Sorted(..), Position::Sorted(..)) => true,
            (Source::Value(_, value, _), Position::Sorted(v, ..)) => v == value,
            _ => false,
        }
    }
}

/// A page of the store, each row with its position.
struct StorePage {
    rows: Vec<(Position, Row)>,
    examined: usize,
    resume: Option<Position>,
}

/// What [`CertificateManager::collect`] found.
struct Collected {
    items: Vec<(Position, CertificateView)>,
    examined: usize,
    /// Set when the read budget ran out first: where the walk resumes.
    stopped: Option<Position>,
}

/// A page of certificates and where the next starts, if there may be one.
struct Walked {
    items: Vec<CertificateView>,
    resume: Option<Position>,
}

impl Walked {
    /// The page of `max` from what a walk collected looking for `max + 1`: one more match
    /// means a next page follows its last item.
    fn of(mut found: Vec<(Position, CertificateView)>, stopped: Option<Position>, max: usize) -> Self {
        let resume = if found.len() > max {
            found.truncate(max);
            found.last().map(|(p, _)| p.clone())
        } else {
            stopped
        };
        Walked { items: found.into_iter().map(|(_, v)| v).collect(), resume }
    }
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
        Ok(Material::decode(&row.body)?)
    }

    /// ListCertificates.
    pub async fn list_certificates(&self, owner: &Owner, query: &ListQuery) -> Result<ListPage, AcmError> {
        let scope = owner.scope();
        let fingerprint = list_fingerprint(&query.filter, &scope, query.descending);
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
        let (items, resume) = self
            .walk_indexed(owner, &clauses, None, order, after, max, |v| query.filter.matches(&v.record, v.status))
            .await?;
        Ok(ListPage { items, next_token: resume.map(|c| list_token(&c, &fingerprint)).transpose()? })
    }

    /// Up to `max` certificates in `(created_ms, id)` order from `after` that meet the
    /// indexed `clauses` and then `check` (what the index cannot tell: the status at read
    /// time, the filters it does not hold), as [`CertificateManager::collect`] reads them.
    /// After a full page it looks a little further for one more match, so the last page of
    /// a walk comes without a NextToken (as ACM's does) in the common case.
    #[allow(clippy::too_many_arguments)]
    async fn walk_indexed(
        &self,
        owner: &Owner,
        clauses: &[Clause],
        holder: Option<HeldBy>,
        order: Order,
        after: Option<Cursor>,
        max: usize,
        check: impl Fn(&CertificateView) -> bool,
    ) -> Result<(Vec<CertificateView>, Option<Cursor>), AcmError> {
        let after = after.map(|c| Position::Created(c.created_ms, c.id));
        let found =
            self.collect(owner, Source::Created(clauses), order, holder, after, max + 1, READ_BUDGET, &check).await?;
        let page = Walked::of(found.items, found.stopped, max);
        let resume = match page.resume {
            Some(Position::Created(created_ms, id)) => Some(Cursor { created_ms, id }),
            _ => None,
        };
        Ok((page.items, resume))
    }

    /// Reads certificates from `source` after `after` until `want` of them are held by
    /// `holder` and pass `check`, the source runs out, or `budget` index entries were read.
    /// The store reads only index entries of matching rows plus what it passes over; so a
    /// walk stopped by the budget comes back short with where to resume, rather than read
    /// the whole table.
    #[allow(clippy::too_many_arguments)]
    async fn collect(
        &self,
        owner: &Owner,
        source: Source<'_>,
        order: Order,
        holder: Option<HeldBy>,
        mut after: Option<Position>,
        want: usize,
        budget: usize,
        check: &impl Fn(&CertificateView) -> bool,
    ) -> Result<Collected, AcmError> {
        let mut out = Collected { items: Vec::new(), examined: 0, stopped: None };
        while out.items.len() < want {
            let limit = want - out.items.len();
            let page =
                self.read(owner, source, order, after, limit, budget.saturating_sub(out.examined).max(limit)).await?;
            out.examined += page.examined;
            for (position, row) in page.rows {
                let record = match CertificateRecord::decode(&row.body) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(key = %row.key, error = chain(&e), "skipping an unreadable certificate record");
                        continue;
                    }
                };
                let view = self.view(record);
                // Certificates other services hold (Lightsail's) are not ACM's to list, and
                // a holder lists only its own.
                if view.record.held_by != holder || !check(&view) {
                    continue;
                }
                out.items.push((position, view));
                if out.items.len() >= want {
                    return Ok(out);
                }
            }
            let Some(resume) = page.resume else { return Ok(out) };
            if out.examined >= budget {
                out.stopped = Some(resume);
                return Ok(out);
            }
            after = Some(resume);
        }
        Ok(out)
    }

    /// One store page of `source`.
    async fn read(
        &self,
        owner: &Owner,
        source: Source<'_>,
        order: Order,
        after: Option<Position>,
        limit: usize,
        budget: usize,
    ) -> Result<StorePage, AcmError> {
        let scope = owner.scope();
        match source {
            Source::Created(clauses) => {
                let after = match after {
                    Some(Position::Created(created_ms, id)) => Some(Cursor { created_ms, id }),
                    _ => None,
                };
                let scan = Scan { kind: record::KIND, scope: &scope, id_prefix: None, after, order, limit };
                let page = self.core.store.scan_filtered(scan, clauses, budget).await?;
                let position = |r: &Row| Position::Created(r.created_ms, r.key.id.clone());
                Ok(StorePage {
                    rows: page.rows.into_iter().map(|r| (position(&r), r)).collect(),
                    examined: page.examined,
                    resume: page.resume.map(|c| Position::Created(c.created_ms, c.id)),
                })
            }
            Source::Value(name, value, clauses) => {
                let after = match after {
                    Some(Position::Sorted(_, created_ms, id)) => Some(Cursor { created_ms, id }),
                    _ => None,
                };
                let mut clauses = clauses.to_vec();
                clauses.push(Clause::new(name, [value]));
                let scan = Scan { kind: record::KIND, scope: &scope, id_prefix: None, after, order, limit };
                let page = self.core.store.scan_filtered(scan, &clauses, budget).await?;
                let position = |created_ms: i64, id: String| Position::Sorted(value.to_owned(), created_ms, id);
                Ok(StorePage {
                    rows: page.rows.into_iter().map(|r| (position(r.created_ms, r.key.id.clone()), r)).collect(),
                    examined: page.examined,
                    resume: page.resume.map(|c| position(c.created_ms, c.id)),
                })
            }
            Source::Sorted(by, clauses) => {
                let after = match after {
                    Some(Position::Sorted(value, created_ms, id)) => Some(SortCursor { value, created_ms, id }),
                    _ => None,
                };
                let scan = SortedScan { kind: record::KIND, scope: &scope, by, after, order, limit };
                let page = self.core.store.scan_sorted(scan, clauses, budget).await?;
                let sorted = |c: SortCursor| Position::Sorted(c.value, c.created_ms, c.id);
                Ok(StorePage {
                    rows: page
                        .rows
                        .into_iter()
                        .map(|(value, r)| (Position::Sorted(value, r.created_ms, r.key.id.clone()), r))
                        .collect(),
                    examined: page.examined,
                    resume: page.resume.map(sorted),
                })
            }
        }
    }

    /// The certificates `holder` holds whose status reads as one of `statuses` (any when
    /// empty), oldest first from `after`: a page of up to `max` and where the next starts.
    /// Read from the index like ListCertificates, so a page reads its own rows.
    pub async fn list_held(
        &self,
        owner: &Owner,
        holder: HeldBy,
        statuses: &[Status],
        after: Option<Cursor>,
        max: usize,
    ) -> Result<(Vec<CertificateView>, Option<Cursor>), AcmError> {
        let clauses = index::held_clauses(holder, statuses);
        let check = |v: &CertificateView| statuses.is_empty() || statuses.contains(&v.status);
        self.walk_indexed(owner, &clauses, Some(holder), Order::Ascending, after, max, check).await
    }

    /// Every certificate of the caller, oldest first (but those another service holds).
    #[cfg(test)]
    pub(crate) async fn all_certificates(&self, owner: &Owner) -> Result<Vec<CertificateView>, AcmError> {
        let scope = owner.scope();
        let scan = Scan {
            kind: record::KIND,
            scope: &scope,
            id_prefix: None,
            after: None,
            order: Order::Ascending,
            limit: usize::MAX,
        };
        let rows = self.core.store.scan(scan).await?;
        let records = rows.iter().map(|row| CertificateRecord::decode(&row.body).map_err(AcmError::from));
        let records = records.collect::<Result<Vec<_>, _>>()?;
        Ok(records.into_iter().filter(|r| r.held_by.is_none()).map(|r| self.view(r)).collect())
    }

    /// SearchCertificates: every certificate matching `query.matches`, sorted by
    /// `query.sort` (ties by creation time, then id), paginated by position.
    ///
    /// Every order is a walk of the index ([`index::sort_plan`]), so a page reads its own
    /// rows plus those its indexed conditions cannot rule out. An order by a field some
    /// certificates lack walks two parts: those without it (the missing values, first when
    /// ascending), then the field's values.
    pub async fn search_certificates(&self, owner: &Owner, query: &SearchQuery<'_>) -> Result<SearchPage, AcmError> {
        let fingerprint = hash(&format!("{}|{}|{}", owner.scope(), query.fingerprint, query.descending));
        let after: Option<Position> = match &query.next_token {
            Some(token) => {
                let t: SearchToken = decode_token(token)?;
                if t.f != fingerprint {
                    return Err(bad_token());
                }
                Some(t.p)
            }
            None => None,
        };
        let max = query.max_results.clamp(1, 500);
        let order = if query.descending { Order::Descending } else { Order::Ascending };
        let narrows = index::search_clauses(&query.narrows);
        let plan = index::sort_plan(query.sort);
        let lacking_clauses: Vec<Clause>;
        let mut parts: Vec<Source<'_>> = match &plan {
            index::SortPlan::Creation => vec![Source::Created(&narrows)],
            index::SortPlan::Id => vec![Source::Sorted(SortKey::Id, &narrows)],
            index::SortPlan::Attribute { name, lacking, values } => {
                let mut parts = Vec::new();
                if let Some(walk) = lacking {
                    lacking_clauses = [walk.clone()]
                        .into_iter()
                        .chain(narrows.iter().cloned())
                        .chain([Clause::absent(*name)])
                        .collect();
                    parts.push(Source::Created(&lacking_clauses));
                }
                match values {
                    // With indexed conditions, one value at a time: the most selective
                    // condition drives each part.
                    Some(values) if !narrows.is_empty() => {
                        parts.extend(values.iter().map(|v| Source::Value(name, v, &narrows)));
                    }
                    _ => parts.push(Source::Sorted(SortKey::Attribute(name), &narrows)),
                }
                parts
            }
        };
        if query.descending {
            parts.reverse();
        }
        // Resume in the part the token names (a token of another plan is refused).
        let first = match &after {
            None => 0,
            Some(p) => parts.iter().position(|s| s.holds(p)).ok_or_else(bad_token)?,
        };
        let (mut found, mut after, mut examined, mut stopped) = (Vec::new(), after, 0, None);
        for source in &parts[first..] {
            let want = max + 1 - found.len();
            let got = self
                .collect(owner, *source, order, None, after.take(), want, READ_BUDGET.saturating_sub(examined), &|v| {
                    (query.matches)(v)
                })
                .await?;
            found.extend(got.items);
            examined += got.examined;
            stopped = got.stopped;
            // A part that ran out with the budget spent still hands on to the next, which
            // reads one store page and stops there with a position: breaking here would end
            // the walk without a token.
            if found.len() > max || stopped.is_some() {
                break;
            }
        }
        let page = Walked::of(found, stopped, max);
        let next_token = page.resume.map(|p| encode_token(&SearchToken { p, f: fingerprint.clone() })).transpose()?;
        Ok(SearchPage { items: page.items, next_token })
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
        let next_token =
            (end < record.domains.len()).then(|| encode_token(&IndexToken { n: end, f: fingerprint })).transpose()?;
        Ok(DomainValidationPage { domains, requested_dns: requested, method_update: record.method_update, next_token })
    }
}

/// The `RequestInProgressException` of a certificate without a leaf.
pub(crate) fn not_yet_issued(arn: &str, owner: &Owner) -> AcmError {
    AcmError::RequestInProgress(format!("Certificate {arn} in account {} not yet issued", owner.account))
}

/// A stable description of a listing, binding its NextTokens to it.
fn list_fingerprint(filter: &ListFilter, scope: &str, descending: bool) -> String {
    hash(&format!("{scope}|{filter:?}|{descending}"))
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

/// A SearchCertificates request. The handler translates the wire filter statement into
/// `matches` (and the indexed conditions it implies into `narrows`).
pub struct SearchQuery<'a> {
    /// Which certificates match.
    pub matches: &'a (dyn Fn(&CertificateView) -> bool + Send + Sync),
    /// The field to sort by.
    pub sort: index::SortField,
    /// Descending order.
    pub descending: bool,
    /// Page size, 1..=500.
    pub max_results: usize,
    /// Where to resume.
    pub next_token: Option<String>,
    /// A stable description of the filter and sort, binding tokens to this query.
    pub fingerprint: String,
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
    p: Position,
    f: String,
}

#[derive(Serialize, Deserialize)]
struct IndexToken {
    n: usize,
    f: String,
}

fn list_token(c: &Cursor, fingerprint: &str) -> Result<String, AcmError> {
    encode_token(&ListToken { c: c.created_ms, i: c.id.clone(), f: fingerprint.to_owned() })
}

fn encode_token(t: &impl Serialize) -> Result<String, AcmError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(carapace_kernel::stored::encode("page token", t)?))
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
