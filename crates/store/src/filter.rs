//! Filtered listings on the attribute index, shared by both backends.
//!
//! Each indexed row has a set of `(name, value)` attributes (handed over by the core in
//! [`crate::Write::Index`]), kept in an `attributes` table with two indexes: its primary key
//! `(kind, scope, id, name, value)`, to test one row, and `(kind, scope, name, value,
//! created_ms, id)`, to walk the rows holding one value in listing order. A filtered listing
//! ([`crate::Store::scan_filtered`]) is a conjunction of clauses, each "attribute `name` has
//! one of `values`". It is answered in three steps, each one SQL statement:
//!
//! 1. **Count** (only with several clauses): how many entries each clause has ahead of the
//!    cursor, counting at most [`COUNT_CAP`]. The clause with the fewest drives the walk.
//! 2. **Candidates**, repeated: the next entries of the driving clause in listing order (the
//!    ordered union of one index range per value, each range read no further than the chunk),
//!    each with whether the row also meets every other clause (primary-key probes). A walk
//!    stops when the page is full, the clause is exhausted, or `budget` entries were read.
//! 3. **Fetch**: the bodies of the matching rows, by primary key.
//!
//! So a listing reads the entries of its page, plus those of the driving clause that fail
//! another clause, never more than `budget`; and when it stops on the budget it says where
//! to resume, so a caller pages on without skipping or repeating a row.

use std::collections::BTreeSet;

use crate::{Clause, Cursor, Error, FilteredPage, Key, Order, Result, Row, Scan};

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
    /// Run the statement; it yields `(created_ms, id, matches)` rows: call [`Walk::candidates`].
    Candidates(Sql),
    /// Run the statement; it yields `(id, version, created_ms, body)` rows: call [`Walk::fetched`].
    Fetch(Sql),
    /// The page is complete: call [`Walk::finish`].
    Done,
}

/// One filtered listing in progress.
pub(crate) struct Walk {
    style: Style,
    kind: String,
    scope: String,
    order: Order,
    limit: usize,
    budget: usize,
    clauses: Vec<Clause>,
    /// Entries ahead of the cursor per clause, filled by the count step.
    counts: Vec<usize>,
    driver: Option<usize>,
    after: Option<Cursor>,
    examined: usize,
    /// Matching positions in listing order.
    found: Vec<Cursor>,
    exhausted: bool,
    /// Size of the candidate query in flight.
    chunk: usize,
    rows: Vec<Row>,
    fetched: bool,
}

impl Walk {
    /// Plans a listing. `scan.id_prefix` is refused: filter on an attribute instead.
    pub(crate) fn new(style: Style, scan: &Scan<'_>, clauses: &[Clause], budget: usize) -> Result<Self> {
        if scan.id_prefix.is_some_and(|p| !p.is_empty()) {
            return Err(Error::Backend("a filtered scan takes no id prefix; filter on an attribute".into()));
        }
        // A clause with no value matches nothing; duplicate values are harmless but cost a
        // range each, so drop them.
        let clauses: Vec<Clause> = clauses
            .iter()
            .map(|c| {
                let values: BTreeSet<&String> = c.values.iter().collect();
                Clause { name: c.name.clone(), values: values.into_iter().cloned().collect() }
            })
            .collect();
        let empty = clauses.iter().any(|c| c.values.is_empty()) || scan.limit == 0;
        let driver = (clauses.len() == 1).then_some(0);
        Ok(Self {
            style,
            kind: scan.kind.to_owned(),
            scope: scan.scope.to_owned(),
            order: scan.order,
            limit: scan.limit,
            budget: budget.max(scan.limit).max(1),
            clauses,
            counts: Vec::new(),
            driver,
            after: scan.after.clone(),
            examined: 0,
            found: Vec::new(),
            exhausted: empty,
            chunk: 0,
            rows: Vec::new(),
            fetched: false,
        })
    }

    /// The next statement to run.
    pub(crate) fn next(&mut self) -> Step {
        if self.exhausted || self.found.len() >= self.limit || self.examined >= self.budget {
            if self.fetched || self.found.is_empty() {
                return Step::Done;
            }
            return Step::Fetch(self.fetch_sql());
        }
        let Some(driver) = self.driver else {
            return Step::Count(self.count_sql(self.counts.len()));
        };
        // Alone, the driving clause's entries all match: read exactly what the page lacks.
        // With other clauses some fail: read a little more per statement.
        let wanted = self.limit - self.found.len();
        let chunk = if self.clauses.len() == 1 { wanted } else { wanted.max(32) };
        self.chunk = chunk.min(self.budget - self.examined).max(1);
        Step::Candidates(self.candidates_sql(driver))
    }

    /// The count step's answer.
    pub(crate) fn counted(&mut self, n: usize) {
        self.counts.push(n);
        if n == 0 {
            // No row has this clause ahead of the cursor: nothing can match.
            self.exhausted = true;
        } else if self.counts.len() == self.clauses.len() {
            let least = (0..self.counts.len()).min_by_key(|&i| self.counts[i]).unwrap_or(0);
            self.driver = Some(least);
        }
    }

    /// A candidate step's answer, in listing order.
    pub(crate) fn candidates(&mut self, candidates: Vec<(i64, String, bool)>) {
        if candidates.len() < self.chunk {
            self.exhausted = true;
        }
        // Every entry the statement returned was read, even past the page's last match.
        self.examined += candidates.len();
        for (created_ms, id, matches) in candidates {
            let position = Cursor { created_ms, id };
            self.after = Some(position.clone());
            if matches {
                self.found.push(position);
                if self.found.len() >= self.limit {
                    // What lies beyond is for the next call.
                    self.exhausted = false;
                    return;
                }
            }
        }
    }

    /// The fetch step's answer, `(id, version, created_ms, body)` in any order.
    pub(crate) fn fetched(&mut self, rows: Vec<(String, i64, i64, Vec<u8>)>) -> Result<()> {
        for (id, version, created_ms, body) in rows {
            let version =
                u64::try_from(version).map_err(|_| Error::Backend(format!("stored version {version} is negative")))?;
            self.rows.push(Row {
                key: Key { kind: self.kind.clone(), scope: self.scope.clone(), id },
                version,
                created_ms,
                body,
            });
        }
        self.fetched = true;
        Ok(())
    }

    /// The page: rows in listing order (a row deleted since its index entry was read is left
    /// out) and where to resume.
    pub(crate) fn finish(self) -> FilteredPage {
        let mut by_id: std::collections::HashMap<String, Row> =
            self.rows.into_iter().map(|r| (r.key.id.clone(), r)).collect();
        let rows: Vec<Row> = self.found.iter().filter_map(|c| by_id.remove(&c.id)).collect();
        let resume = if self.found.len() >= self.limit {
            self.found.last().cloned()
        } else if self.exhausted {
            None
        } else {
            self.after
        };
        FilteredPage { rows, examined: self.examined, resume }
    }

    fn key_range(&self, b: &mut Builder) -> String {
        let kind = b.text(&self.kind);
        let scope = b.text(&self.scope);
        format!("kind = {kind} AND scope = {scope}")
    }

    /// ` AND (created_ms, id) > (..)` (or `<`, newest first) past the cursor, if any.
    fn cursor(&self, b: &mut Builder) -> String {
        let Some(after) = &self.after else { return String::new() };
        let cmp = match self.order {
            Order::Ascending => ">",
            Order::Descending => "<",
        };
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

    fn candidates_sql(&self, driver: usize) -> Sql {
        let mut b = Builder::new(self.style);
        let dir = self.direction();
        let chunk = b.arg(Arg::Int(i64::try_from(self.chunk).unwrap_or(i64::MAX)));
        let kind = b.text(&self.kind);
        let scope = b.text(&self.scope);
        let name = b.text(&self.clauses[driver].name);
        let cursor = self.cursor(&mut b);
        // One ordered, limited range per value; UNION merges them and drops the repeats of a
        // row holding several of the values.
        let mut arms = Vec::new();
        for (n, value) in self.clauses[driver].values.iter().enumerate() {
            let value = b.text(value);
            arms.push(format!(
                "SELECT created_ms, id FROM (SELECT created_ms, id FROM attributes
                 WHERE kind = {kind} AND scope = {scope} AND name = {name} AND value = {value}{cursor}
                 ORDER BY created_ms {dir}, id {dir} LIMIT {chunk}) AS v{n}"
            ));
        }
        let mut checks = Vec::new();
        for (n, clause) in self.clauses.iter().enumerate() {
            if n == driver {
                continue;
            }
            let name = b.text(&clause.name);
            let values = b.list(&clause.values);
            checks.push(format!(
                "EXISTS (SELECT 1 FROM attributes x WHERE x.kind = {kind} AND x.scope = {scope}
                 AND x.id = c.id AND x.name = {name} AND x.value IN ({values}))"
            ));
        }
        let matches = if checks.is_empty() { "TRUE".to_owned() } else { checks.join(" AND ") };
        b.push(&format!(
            "SELECT c.created_ms, c.id, {matches} FROM ({}) AS c
             ORDER BY c.created_ms {dir}, c.id {dir} LIMIT {chunk}",
            arms.join(" UNION ")
        ));
        b.sql
    }

    fn fetch_sql(&self) -> Sql {
        let mut b = Builder::new(self.style);
        let range = self.key_range(&mut b);
        let ids: Vec<String> = self.found.iter().map(|c| c.id.clone()).collect();
        let ids = b.list(&ids);
        b.push(&format!("SELECT id, version, created_ms, body FROM resources WHERE {range} AND id IN ({ids})"));
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
