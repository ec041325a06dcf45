//! The indexed attributes of Lightsail's listed rows (see [`carapace_kernel::index`]), so a listing
//! reads the rows of its page, not every row its id prefix would have filtered:
//!
//! - distributions live in one global scope (the edge serves them all), so GetDistributions
//!   reads one account's by an `account` attribute;
//! - a Lightsail certificate names its ACM certificate, and a status-filtered
//!   GetCertificates walks ACM's index of the certificates Lightsail holds, so it finds each
//!   one's name by an `acm` attribute;
//! - operations by resource (`<resource>/<operation id>`) share the account's scope, so
//!   GetOperationsForResource reads one resource's by a `resource` attribute.

use carapace_store::Clause;

use super::records::{
    self, CERTIFICATE_KIND, CertificateRecord, DISTRIBUTION_KIND, DistributionRecord, OperationRecord,
    RESOURCE_OPERATION_KIND,
};
use carapace_kernel::index::Indexer;

/// How distribution rows are indexed.
pub const DISTRIBUTIONS: Indexer = Indexer { kind: DISTRIBUTION_KIND, version: 1, derive: derive_distribution };

/// How certificate-name rows are indexed.
pub const CERTIFICATES: Indexer = Indexer { kind: CERTIFICATE_KIND, version: 1, derive: derive_certificate };

/// How operations-by-resource rows are indexed.
pub const RESOURCE_OPERATIONS: Indexer =
    Indexer { kind: RESOURCE_OPERATION_KIND, version: 1, derive: derive_resource_operation };

/// The ACM certificate id behind a Lightsail certificate.
const ACM: &str = "acm";
/// The owning account of a distribution.
const ACCOUNT: &str = "account";
/// The resource an operation acted on.
const RESOURCE: &str = "resource";

fn derive_certificate(body: &[u8]) -> Option<Vec<(String, String)>> {
    let record: CertificateRecord = records::decode(body).ok()?;
    Some(vec![(ACM.to_owned(), record.acm_id)])
}

fn derive_distribution(body: &[u8]) -> Option<Vec<(String, String)>> {
    let record: DistributionRecord = records::decode(body).ok()?;
    Some(vec![(ACCOUNT.to_owned(), record.account)])
}

fn derive_resource_operation(body: &[u8]) -> Option<Vec<(String, String)>> {
    let record: OperationRecord = records::decode(body).ok()?;
    Some(vec![(RESOURCE.to_owned(), record.resource_name)])
}

/// The Lightsail certificate of one ACM certificate.
pub fn acm_clause(acm_id: &str) -> Clause {
    Clause::new(ACM, [acm_id])
}

/// One account's distributions.
pub fn account_clause(account: &str) -> Clause {
    Clause::new(ACCOUNT, [account])
}

/// One resource's operations.
pub fn resource_clause(resource_name: &str) -> Clause {
    Clause::new(RESOURCE, [resource_name])
}
