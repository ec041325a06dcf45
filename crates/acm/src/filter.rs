//! ListCertificates' filters, which the index turns into store clauses
//! ([`super::index::list_clauses`]) and the listing checks on every row it returns.

use super::RootHierarchy;
use super::record::{CertificateRecord, KeyPairOrigin, ManagedBy};
use super::state::Status;
use carapace_kernel::ca::KeyAlgorithm;

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
    /// `RootHierarchyTypes`: only Amazon N2 certificates of these hierarchies; empty for
    /// ACM's default (no N2 certificates).
    pub root_hierarchies: Vec<RootHierarchy>,
}

/// The key types ListCertificates includes when the caller names none (ACM documents
/// RSA_1024 and RSA_2048; EC certificates are listed only when asked for).
pub const DEFAULT_LIST_KEY_TYPES: [KeyAlgorithm; 2] = [KeyAlgorithm::Rsa1024, KeyAlgorithm::Rsa2048];

impl ListFilter {
    /// Does the certificate pass every filter?
    pub fn matches(&self, r: &CertificateRecord, status: Status) -> bool {
        if !self.statuses.is_empty() && !self.statuses.contains(&status) {
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
        // ListCertificates leaves Amazon N2 certificates out unless RootHierarchyTypes names
        // their hierarchy, and then lists only those (ListCertificates, `RootHierarchyTypes`).
        match r.root_hierarchy {
            None => self.root_hierarchies.is_empty(),
            Some(h) => self.root_hierarchies.contains(&h),
        }
    }
}
