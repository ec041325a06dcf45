//! Filtered listings on the attribute index, shared by both backends.
//!
//! Each indexed row has a set of `(name, value)` attributes (handed over by the core in
//! [`crate::Write::Index`]), kept in an `attributes` table with two indexes: its primary key
//! `(kind, scope, id, name, value)`, to test one row, and `(kind, scope, name, value,
//! created_ms, id)`, to walk the rows holding one value in listing order. A filtered listing
//! ([`crate::Store::scan_filtered`]) is a conjunction of clauses, each "attribute `name` has
//! one of `values`". It is answered in two steps, each one SQL statement:
//!
//! 1. **Count** (only with several clauses): how many entries each clause has ahead of the
//!    cursor, counting at most [`COUNT_CAP`]. The clause with the fewest drives the walk.
//! 2. **Candidates**, repeated: the next entries of the driving clause in listing order (the
//!    ordered union of one index range per value, each range read no further than the chunk),
//!    each with whether the row also meets every other clause (primary-key probes) and, if
//!    it does, the row's version and body (joined by primary key). A walk stops when the page
//!    is full, the clause is exhausted, or `budget` entries were read.
//!
//! So a listing reads the entries of its page, plus those of the driving clause that fail
//! another clause, never more than `budget`; and when it stops on the budget it says where
//! to resume, so a caller pages on without skipping or repeating a row.
//!
//! A sorted listing ([`crate::Store::scan_sorted`]) walks one attribute's entries in
//! `(value, created_ms, id)` order, the same index read whole rather than one value at a
//! time: no count step, the sort attribute drives and every clause is a probe.
//!
//! A clause may also ask that a row have no attribute of a name ([`Clause::absent`]): a
//! `NOT EXISTS` probe, which never drives.

use std::collections::BTreeSet;

use crate::{
    Clause, Cursor, Error, FilteredPage, Key, Order, Result, Row, Scan, SortCursor, SortKey, SortedPage, SortedScan,
};

/// At most this many index entries are counted per clause when choosing the driving one:
/// enough to tell a selective clause from a broad one, cheap (a covering index range).
pub(crate) const COUNT_CAP: usize = 4_096;

/// SQL placeholder syntax.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Style {
    /// `?1`
    Sqlite,
    /// `$1`
    Postgres,
}

/// A bound parameter.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
}

/// A statement and its parameters.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

/// Appends parameters and renders their placeholders.
struct Builder {
    sql: Sql,
    style: Style,
}

impl Builder {
    fn new(style: Style) -> Self {
        Self { sql: Sql { text: String::new(), args: Vec::new() }, style }
    }

    fn arg(&mut self, arg: Arg) -> String {
        self.sql.args.push(arg);
        let n = self.sql.args.len();
        match self.style {
            Style::Sqlite => format!("?{n}"),
            Style::Postgres => format!("${n}"),
        }
    }

    fn text(&mut self, s: &str) -> String {
        self.arg(Arg::Text(s.to_owned()))
    }

    fn list(&mut self, values: &[String]) -> String {
        values.iter().map(|v| self.text(v)).collect::<Vec<_>>().join(", ")
    }

    fn push(&mut self, s: &str) {
        self.sql.text.push_str(s);
    }
}

/// What a backend runs next, and what it hands back.
pub(crate) enum Step {
    /// Run the statement; it yields one integer: call [`Walk::counted`].
    Count(Sql),
    /// Run the statement; it yields [`Candidate`] rows `(value, created_ms, id, version,
    /// body)`: call [`Walk::candidates`].
    Candidates(Sql),
    /// The page is complete: call [`Walk::finish_filtered`] or [`Walk::finish_sorted`].
    Done,
}

/// One entry a candidate step read: its position, and for a row that meets every clause
/// its version and body (`None` for the others).
pub(crate) type Candidate = (String, i64, String, Option<i64>, Option<Vec<u8>>);

/// A position in a listing: the sort value (`""` in creation order), then `(created_ms, id)`.
#[derive(Debug, Clone)]
struct Position {
    value: String,
    created_ms: i64,
    id: String,
}

/// The order of a sorted listing.
#[derive(Debug, Clone)]
enum Sorted {
    /// An attribute's values.
    Attribute(String),
    /// The id.
    Id,
}

/// One filtered listing in progress.
pub(crate) struct Walk {
    style: Style,
    kind: String,
    scope: String,
    /// What orders a sorted listing; `None` in creation order.
    by: Option<Sorted>,
    order: Order,
    limit: usize,
    budget: usize,
    clauses: Vec<Clause>,
    /// The clauses that may drive a listing in creation order (not absences).
    positive: Vec<usize>,
    /// Entries ahead of the cursor per positive clause, filled by the count step.
    counts: Vec<usize>,
    driver: Option<usize>,
    after: Option<Position>,
    examined: usize,
    /// Matching rows with their positions, in listing order.
    found: Vec<(Position, Row)>,
    exhausted: bool,
    /// Size of the candidate query in flight.
    chunk: usize,
}

impl Walk {
    /// Plans a listing in creation order. `scan.id_prefix` is refused: filter on an
    /// attribute instead. At least one clause must not be an absence (it drives the walk).
    pub(crate) fn new(style: Style, scan: &Scan<'_>, clauses: &[Clause], budget: usize) -> Result<Self> {
        if scan.id_prefix.is_some_and(|p| !p.is_empty()) {
            return Err(Error::Backend("a filtered scan takes no id prefix; filter on an attribute".into()));
        }
        let after =
            scan.after.as_ref().map(|c| Position { value: String::new(), created_ms: c.created_ms, id: c.id.clone() });
        let walk = Self::plan(style, scan.kind, scan.scope, None, scan.order, scan.limit, after, clauses, budget);
        if walk.positive.is_empty() {
            return Err(Error::Backend("a filtered scan needs a clause that is not an absence".into()));
        }
        Ok(walk)
    }

    /// Plans a listing in the order of the values of `scan.by`.
    pub(crate) fn sorted(style: Style, scan: &SortedScan<'_>, clauses: &[Clause], budget: usize) -> Self {
        let after = scan.after.as_ref().map(|c| Position {
            value: c.value.clone(),
            created_ms: c.created_ms,
            id: c.id.clone(),
        });
        let by = match scan.by {
            SortKey::Attribute(name) => Sorted::Attribute(name.to_owned()),
            SortKey::Id => Sorted::Id,
        };
        Self::plan(style, scan.kind, scan.scope, Some(by), scan.order, scan.limit, after, clauses, budget)
    }

    #[allow(clippy::too_many_arguments)] // the two public plans' common part
    fn plan(
        style: Style,
        kind: &str,
        scope: &str,
        by: Option<Sorted>,
        order: Order,
        limit: usize,
        after: Option<Position>,
        clauses: &[Clause],
        budget: usize,
    ) -> Self {
        // A clause with no value matches nothing; duplicate values are harmless but cost a
        // range each, so drop them.
        let clauses: Vec<Clause> = clauses
            .iter()
            .map(|c| {
                let values: BTreeSet<&String> = c.values.iter().collect();
                Clause { name: c.name.clone(), values: values.into_iter().cloned().collect(), absent: c.absent }
            })
            .collect();
        let empty = clauses.iter().any(|c| !c.absent && c.values.is_empty()) || limit == 0;
        let positive: Vec<usize> = (0..clauses.len()).filter(|&i| !clauses[i].absent).collect();
        let driver = (positive.len() == 1).then(|| positive[0]);
        Self {
            style,
            kind: kind.to_owned(),
            scope: scope.to_owned(),
            by,
            order,
            limit,
            budget: budget.max(limit).max(1),
            clauses,
            positive,
            counts: Vec::new(),
            driver,
            after,
            examined: 0,
            found: Vec::new(),
            exhausted: empty,
            chunk: 0,
        }
    }

    /// The next statement to run.
    pub(crate) fn next(&mut self) -> Step {
        if self.exhausted || self.found.len() >= self.limit || self.examined >= self.budget {
            return Step::Done;
        }
        let driver = match (&self.by, self.driver) {
            (Some(_), _) => None,
            (None, Some(driver)) => Some(driver),
            (None, None) => return Step::Count(self.count_sql(self.positive[self.counts.len()])),
        };
        // When the driving entries all match (one clause, or a sorted walk without one),
        // read exactly what the page lacks; when probes may fail some, a little more.
        let probes = self.clauses.len() - usize::from(driver.is_some());
        let wanted = self.limit - self.found.len();
        let chunk = if probes == 0 { wanted } else { wanted.max(32) };
        self.chunk = chunk.min(self.budget - self.examined).max(1);
        Step::Candidates(self.candidates_sql(driver))
    }

    /// The count step's answer.
    pub(crate) fn counted(&mut self, n: usize) {
        self.counts.push(n);
        if n == 0 {
            // No row has this clause ahead of the cursor: nothing can match.
            self.exhausted = true;
        } else if self.counts.len() == self.positive.len() {
            let least = (0..self.counts.len()).min_by_key(|&i| self.counts[i]).unwrap_or(0);
            self.driver = Some(self.positive[least]);
        }
    }

    /// A candidate step's answer, in any order (it is sorted here).
    pub(crate) fn candidates(&mut self, mut candidates: Vec<Candidate>) -> Result<()> {
        if candidates.len() < self.chunk {
            self.exhausted = true;
        }
        // Every entry the statement returned was read, even past the page's last match.
        self.examined += candidates.len();
        // The join hands rows back in the walk's order in practice, but SQL promises no
        // order without an ORDER BY, and one over the bodies would copy them into a sorter.
        candidates.sort_unstable_by(|a, b| {
            let ordered = (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2));
            if self.order == Order::Descending { ordered.reverse() } else { ordered }
        });
        for (value, created_ms, id, version, body) in candidates {
            let position = Position { value, created_ms, id };
            self.after = Some(position.clone());
            // A matching row deleted since its index entry was read has no body: skipped.
            if let (Some(version), Some(body)) = (version, body) {
                let version = u64::try_from(version)
                    .map_err(|_| Error::Backend(format!("stored version {version} is negative")))?;
                let key = Key { kind: self.kind.clone(), scope: self.scope.clone(), id: position.id.clone() };
                self.found.push((position, Row { key, version, created_ms, body }));
                if self.found.len() >= self.limit {
                    // What lies beyond is for the next call.
                    self.exhausted = false;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The page: rows with their sort values in listing order, entries read, and where to
    /// resume.
    fn finish(self) -> (Vec<(String, Row)>, usize, Option<Position>) {
        let resume = if self.found.len() >= self.limit {
            self.found.last().map(|(p, _)| p.clone())
        } else if self.exhausted {
            None
        } else {
            self.after
        };
        let rows = self.found.into_iter().map(|(p, row)| (p.value, row)).collect();
        (rows, self.examined, resume)
    }

    /// [`Walk::finish`] of a listing in creation order.
    pub(crate) fn finish_filtered(self) -> FilteredPage {
        let (rows, examined, resume) = self.finish();
        let rows = rows.into_iter().map(|(_, row)| row).collect();
        FilteredPage { rows, examined, resume: resume.map(|p| Cursor { created_ms: p.created_ms, id: p.id }) }
    }

    /// [`Walk::finish`] of a sorted listing.
    pub(crate) fn finish_sorted(self) -> SortedPage {
        let (rows, examined, resume) = self.finish();
        let resume = resume.map(|p| SortCursor { value: p.value, created_ms: p.created_ms, id: p.id });
        SortedPage { rows, examined, resume }
    }

    fn key_range(&self, b: &mut Builder) -> String {
        let kind = b.text(&self.kind);
        let scope = b.text(&self.scope);
        format!("kind = {kind} AND scope = {scope}")
    }

    /// ` AND (created_ms, id) > (..)` (or `<`, newest first; with the value first in a
    /// sorted listing) past the cursor, if any.
    fn cursor(&self, b: &mut Builder) -> String {
        let Some(after) = &self.after else { return String::new() };
        let cmp = match self.order {
            Order::Ascending => ">",
            Order::Descending => "<",
        };
        if matches!(self.by, Some(Sorted::Id)) {
            let i = b.text(&after.id);
            return format!(" AND id {cmp} {i}");
        }
        if self.by.is_some() {
            let v = b.text(&after.value);
            let c = b.arg(Arg::Int(after.created_ms));
            let i = b.text(&after.id);
            return format!(" AND (value, created_ms, id) {cmp} ({v}, {c}, {i})");
        }
        let c = b.arg(Arg::Int(after.created_ms));
        let i = b.text(&after.id);
        format!(" AND (created_ms, id) {cmp} ({c}, {i})")
    }

    fn direction(&self) -> &'static str {
        match self.order {
            Order::Ascending => "ASC",
            Order::Descending => "DESC",
        }
    }

    fn count_sql(&self, clause: usize) -> Sql {
        let mut b = Builder::new(self.style);
        let c = &self.clauses[clause];
        let range = self.key_range(&mut b);
        let name = b.text(&c.name);
        let values = b.list(&c.values);
        let cursor = self.cursor(&mut b);
        let cap = b.arg(Arg::Int(COUNT_CAP as i64));
        b.push(&format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM attributes
             WHERE {range} AND name = {name} AND value IN ({values}){cursor} LIMIT {cap}) AS ahead"
        ));
        b.sql
    }

    /// The next `chunk` entries of the driver (the sort attribute, or a clause's values),
    /// each with whether its row passes every other clause.
    fn candidates_sql(&self, driver: Option<usize>) -> Sql {
        let mut b = Builder::new(self.style);
        let dir = self.direction();
        let chunk = b.arg(Arg::Int(i64::try_from(self.chunk).unwrap_or(i64::MAX)));
        let kind = b.text(&self.kind);
        let scope = b.text(&self.scope);
        let (source, order) = match (&self.by, driver) {
            (Some(Sorted::Id), _) => {
                // The primary key, in its own order.
                let cursor = self.cursor(&mut b);
                let source = format!(
                    "SELECT id AS value, created_ms, id FROM resources
                     WHERE kind = {kind} AND scope = {scope}{cursor} ORDER BY id {dir} LIMIT {chunk}"
                );
                (source, format!("c.id {dir}"))
            }
            (Some(Sorted::Attribute(by)), _) => {
                // One range of the value index, read in its own order.
                let name = b.text(by);
                let cursor = self.cursor(&mut b);
                let source = format!(
                    "SELECT value, created_ms, id FROM attributes
                     WHERE kind = {kind} AND scope = {scope} AND name = {name}{cursor}
                     ORDER BY value {dir}, created_ms {dir}, id {dir} LIMIT {chunk}"
                );
                (source, format!("c.value {dir}, c.created_ms {dir}, c.id {dir}"))
            }
            (None, driver) => {
                let driver = &self.clauses[driver.unwrap_or_default()];
                let name = b.text(&driver.name);
                let cursor = self.cursor(&mut b);
                // One ordered, limited range per value; UNION merges them and drops the
                // repeats of a row holding several of the values.
                let mut arms = Vec::new();
                for (n, value) in driver.values.iter().enumerate() {
                    let value = b.text(value);
                    arms.push(format!(
                        "SELECT CAST('' AS TEXT) AS value, created_ms, id FROM (SELECT created_ms, id FROM attributes
                         WHERE kind = {kind} AND scope = {scope} AND name = {name} AND value = {value}{cursor}
                         ORDER BY created_ms {dir}, id {dir} LIMIT {chunk}) AS v{n}"
                    ));
                }
                let source = arms.join(" UNION ");
                (source, format!("c.created_ms {dir}, c.id {dir}"))
            }
        };
        let mut checks = Vec::new();
        for (n, clause) in self.clauses.iter().enumerate() {
            if Some(n) == driver {
                continue;
            }
            let name = b.text(&clause.name);
            let probe = format!(
                "EXISTS (SELECT 1 FROM attributes x WHERE x.kind = {kind} AND x.scope = {scope}
                 AND x.id = c.id AND x.name = {name}"
            );
            checks.push(if clause.absent {
                format!("NOT {probe})")
            } else {
                format!("{probe} AND x.value IN ({}))", b.list(&clause.values))
            });
        }
        let matches = if checks.is_empty() { "TRUE".to_owned() } else { checks.join(" AND ") };
        // The next entries with the probes' verdict, then the bodies of those that pass.
        b.push(&format!(
            "SELECT c.value, c.created_ms, c.id, r.version, r.body
             FROM (SELECT c.value, c.created_ms, c.id, {matches} AS m FROM ({source}) AS c
                   ORDER BY {order} LIMIT {chunk}) AS c
             LEFT JOIN resources r ON r.kind = {kind} AND r.scope = {scope} AND r.id = c.id AND c.m"
        ));
        b.sql
    }
}

/// A row's `(name, value)` attributes.
pub(crate) type Attributes = Vec<(String, String)>;

/// How a row's stored attributes change to become `wanted`: `(removed, added)`.
pub(crate) fn diff(stored: Attributes, wanted: &[(String, String)]) -> (Attributes, Attributes) {
    let stored: BTreeSet<(String, String)> = stored.into_iter().collect();
    let wanted: BTreeSet<(String, String)> = wanted.iter().cloned().collect();
    (stored.difference(&wanted).cloned().collect(), wanted.difference(&stored).cloned().collect())
}
