//! The regions each service exists in: what a SigV4 credential scope may name.
//!
//! From botocore 1.43.11's `data/endpoints.json`, partition `aws`: each service's regional
//! endpoints. Only that partition, because Carapace mints `arn:aws:` ARNs; a request for
//! `cn-north-1` or `us-gov-west-1` would get ARNs of the wrong partition (an operator who
//! wants such names anyway lists them in `extra_regions`). AWS answers a request signed for
//! a region its service is not in with `InvalidSignatureException` ("Credential should be
//! scoped to a valid region"); so does Carapace.

/// ACM (`acm`).
pub const ACM: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// Directory Service (`ds`).
pub const DS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// Lightsail (`lightsail`); its distribution APIs answer only in `us-east-1`.
pub const LIGHTSAIL: &[&str] = &[
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-5",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "us-east-1",
    "us-east-2",
    "us-west-2",
];

/// Every region of the partition, for a service without a table of its own.
pub const ALL: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// The regions of the service whose short name (`schema::Service::name`) is `service`.
pub fn of_service(service: &str) -> &'static [&'static str] {
    match service {
        "acm" => ACM,
        "ds" => DS,
        "lightsail" => LIGHTSAIL,
        _ => ALL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_known() {
        for table in [ACM, DS, LIGHTSAIL, ALL] {
            assert!(table.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
            assert!(table.iter().all(|r| ALL.contains(r)));
        }
        assert!(of_service("acm").contains(&"us-east-1") && !of_service("acm").contains(&"cn-north-1"));
        assert!(!of_service("lightsail").contains(&"sa-east-1"));
        assert!(!ALL.contains(&"us-east-1:999999999999"));
    }
}
