//! Reading whole listings.

use carapace_store::{Cursor, Order, Result, Row, Scan, Store};

/// Rows read per page by [`scan_all`].
const PAGE: usize = 500;

/// Every row of `(kind, scope)` whose id starts with `id_prefix` (all when `None`), oldest
/// first, read a page at a time.
pub async fn scan_all(store: &dyn Store, kind: &str, scope: &str, id_prefix: Option<&str>) -> Result<Vec<Row>> {
    let mut out: Vec<Row> = Vec::new();
    loop {
        let after = out.last().map(|r| Cursor { created_ms: r.created_ms, id: r.key.id.clone() });
        let rows = store.scan(Scan { kind, scope, id_prefix, after, order: Order::Ascending, limit: PAGE }).await?;
        let done = rows.len() < PAGE;
        out.extend(rows);
        if done {
            return Ok(out);
        }
    }
}
