//! The indexed attributes of a Directory Service certificate (see [`carapace_kernel::index`]): its
//! directory, so ListCertificates reads the certificates of one directory, not of every
//! directory of the account.

use carapace_store::Clause;

use super::CERTIFICATE_KIND;
use super::records::CertificateRecord;
use carapace_kernel::index::Indexer;

/// How DS certificate rows are indexed.
pub const INDEXER: Indexer = Indexer { kind: CERTIFICATE_KIND, version: 1, derive };

/// The directory id (`d-...`).
const DIRECTORY: &str = "directory";

fn derive(body: &[u8]) -> Option<Vec<(String, String)>> {
    let record: CertificateRecord = serde_json::from_slice(body).ok()?;
    Some(vec![(DIRECTORY.to_owned(), record.directory_id)])
}

/// The certificates of one directory.
pub fn directory_clause(directory_id: &str) -> Clause {
    Clause::new(DIRECTORY, [directory_id])
}
