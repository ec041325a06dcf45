//! Certification paths through certificates a user hands over (ACM's ImportCertificate
//! `CertificateChain`).
//!
//! Users pass what their CA sent them: the intermediates in order, but also CA bundles with
//! unrelated roots, or a root followed by an intermediate of another hierarchy (moto's own
//! ACM fixture `tests/test_acm/resources/ca.pem` of getmoto/moto is its root followed by an
//! unrelated GeoTrust intermediate). So the path is built rather than read in order: from the
//! leaf, the next link is the first given certificate that issued the current one, until a
//! root (a self-issued certificate) or no issuer is found. Certificates off the path are
//! ignored. No trust anchor is required: ACM imports self-signed and private-CA chains.

use super::parse::{ParsedCertificate, signed_by};

/// Most signature verifications one path search makes. Names and key identifiers are
/// compared first, so an ordinary bundle costs one verification per link; the cap only
/// bounds a chain crafted with many certificates of the same name (the chain may be 2 MiB).
pub const MAX_PATH_VERIFICATIONS: usize = 32;

/// Did `parent` issue `child`? Names must match, key identifiers when both are present, and
/// `parent`'s key must verify `child`'s signature (names and key ids can be copied; the
/// signature cannot).
pub fn issued_by(child: &ParsedCertificate, parent: &ParsedCertificate) -> bool {
    names_link(child, parent) && signed_by(child, parent)
}

fn names_link(child: &ParsedCertificate, parent: &ParsedCertificate) -> bool {
    let ids_agree = match (&child.authority_key_id, &parent.subject_key_id) {
        (Some(aki), Some(ski)) => aki == ski,
        _ => true,
    };
    child.issuer_dn == parent.subject && ids_agree
}

/// The certification path from `leaf` through `given`: indexes into `given`, issuer of the
/// leaf first. Each certificate is used at most once; the path ends at a self-issued
/// certificate (a root), when no remaining certificate issued the last one, or after
/// [`MAX_PATH_VERIFICATIONS`] signature checks. Empty when no given certificate issued the
/// leaf.
pub fn chain_path(leaf: &ParsedCertificate, given: &[ParsedCertificate]) -> Vec<usize> {
    let mut path: Vec<usize> = Vec::new();
    let mut verifications = 0;
    let mut current = leaf;
    loop {
        let mut next = None;
        for (i, candidate) in given.iter().enumerate() {
            if path.contains(&i) || !names_link(current, candidate) {
                continue;
            }
            if verifications == MAX_PATH_VERIFICATIONS {
                return path;
            }
            verifications += 1;
            if signed_by(current, candidate) {
                next = Some(i);
                break;
            }
        }
        let Some(i) = next else { return path };
        path.push(i);
        current = &given[i];
        if current.is_self_issued {
            return path;
        }
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

    use super::*;
    use crate::parse::parse_certificate;

    struct Ca {
        parsed: ParsedCertificate,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca_params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
    }

    fn root(name: &str) -> Ca {
        let pair = KeyPair::generate().unwrap();
        let params = ca_params(name);
        let cert = params.self_signed(&pair).unwrap();
        Ca { parsed: parse_certificate(&cert.pem()).unwrap(), issuer: Issuer::new(params, pair) }
    }

    fn intermediate(name: &str, parent: &Ca) -> Ca {
        let pair = KeyPair::generate().unwrap();
        let params = ca_params(name);
        let cert = params.signed_by(&pair, &parent.issuer).unwrap();
        Ca { parsed: parse_certificate(&cert.pem()).unwrap(), issuer: Issuer::new(params, pair) }
    }

    fn leaf(parent: &Ca) -> ParsedCertificate {
        let pair = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["leaf.example.com".to_owned()]).unwrap();
        parse_certificate(&params.signed_by(&pair, &parent.issuer).unwrap().pem()).unwrap()
    }

    #[test]
    fn the_path_skips_certificates_off_it_in_any_order() {
        let root_a = root("Root A");
        let inter_a = intermediate("Intermediate A", &root_a);
        let root_b = root("Root B");
        let inter_b = intermediate("Intermediate B", &root_b);
        let leaf = leaf(&inter_a);
        // A bundle: another hierarchy first, the root before its intermediate.
        let given = [root_b.parsed.clone(), root_a.parsed.clone(), inter_b.parsed.clone(), inter_a.parsed.clone()];
        assert_eq!(chain_path(&leaf, &given), [3, 1]);
        // In order, nothing to skip.
        assert_eq!(chain_path(&leaf, &[inter_a.parsed.clone(), root_a.parsed.clone()]), [0, 1]);
        // The path may stop short of a root.
        assert_eq!(chain_path(&leaf, &[inter_a.parsed.clone(), inter_b.parsed.clone()]), [0]);
    }

    #[test]
    fn no_path_when_nothing_given_issued_the_leaf() {
        let root_a = root("Root A");
        let inter_a = intermediate("Intermediate A", &root_a);
        let leaf = leaf(&inter_a);
        assert!(chain_path(&leaf, std::slice::from_ref(&root_a.parsed)).is_empty());
        // Same name, another key: only the signature tells them apart.
        let impostor = root("Intermediate A");
        assert!(!issued_by(&leaf, &impostor.parsed));
        assert!(chain_path(&leaf, std::slice::from_ref(&impostor.parsed)).is_empty());
        assert!(issued_by(&leaf, &inter_a.parsed));
    }

    #[test]
    fn many_lookalikes_cost_a_bounded_number_of_verifications() {
        let root_a = root("Root A");
        let inter_a = intermediate("Intermediate A", &root_a);
        let leaf = leaf(&inter_a);
        let impostor = root("Intermediate A").parsed;
        let mut given = vec![impostor; MAX_PATH_VERIFICATIONS];
        given.push(inter_a.parsed.clone());
        assert!(chain_path(&leaf, &given).is_empty(), "the real issuer comes after the cap");
        given.swap(0, MAX_PATH_VERIFICATIONS);
        assert_eq!(chain_path(&leaf, &given), [0]);
    }
}
