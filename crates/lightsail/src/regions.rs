//! GetRegions: Lightsail's regions (the model's `RegionName` values), with the names and
//! descriptions AWS shows (aws-cli's `lightsail get-regions` example records them for
//! us-east-1, us-east-2 and us-west-2).

/// One region: name, display name, continent code, description.
pub struct RegionInfo {
    /// `name`.
    pub name: &'static str,
    /// `displayName`.
    pub display_name: &'static str,
    /// `continentCode`.
    pub continent_code: &'static str,
    /// `description`.
    pub description: &'static str,
}

const fn r(
    name: &'static str,
    display_name: &'static str,
    continent_code: &'static str,
    description: &'static str,
) -> RegionInfo {
    RegionInfo { name, display_name, continent_code, description }
}

/// Every Lightsail region.
pub const REGIONS: &[RegionInfo] = &[
    r("us-east-1", "Virginia", "NA", "This region is recommended to serve users in the eastern United States"),
    r("us-east-2", "Ohio", "NA", "This region is recommended to serve users in the eastern United States"),
    r(
        "us-west-2",
        "Oregon",
        "NA",
        "This region is recommended to serve users in the northwestern United States, Alaska, and western Canada",
    ),
    r(
        "eu-west-1",
        "Ireland",
        "EU",
        "This region is recommended to serve users in Ireland, the United Kingdom, and Iceland",
    ),
    r(
        "eu-west-2",
        "London",
        "EU",
        "This region is recommended to serve users in the United Kingdom and western Europe",
    ),
    r("eu-west-3", "Paris", "EU", "This region is recommended to serve users in France and western Europe"),
    r(
        "eu-central-1",
        "Frankfurt",
        "EU",
        "This region is recommended to serve users in Germany, Switzerland, and central Europe",
    ),
    r("eu-north-1", "Stockholm", "EU", "This region is recommended to serve users in Scandinavia and northern Europe"),
    r("eu-south-2", "Spain", "EU", "This region is recommended to serve users in Spain and southern Europe"),
    r("ca-central-1", "Canada", "NA", "This region is recommended to serve users in Canada"),
    r("ap-east-1", "Hong Kong", "AS", "This region is recommended to serve users in Hong Kong and southern China"),
    r("ap-south-1", "Mumbai", "AS", "This region is recommended to serve users in India"),
    r("ap-southeast-1", "Singapore", "AS", "This region is recommended to serve users in Southeast Asia"),
    r("ap-southeast-2", "Sydney", "AU", "This region is recommended to serve users in Australia and New Zealand"),
    r("ap-southeast-3", "Jakarta", "AS", "This region is recommended to serve users in Indonesia"),
    r("ap-southeast-5", "Malaysia", "AS", "This region is recommended to serve users in Malaysia"),
    r("ap-northeast-1", "Tokyo", "AS", "This region is recommended to serve users in Japan"),
    r("ap-northeast-2", "Seoul", "AS", "This region is recommended to serve users in South Korea"),
    r("sa-east-1", "São Paulo", "SA", "This region is recommended to serve users in South America"),
];

/// Availability zone names of a region (`<region>a`, `<region>b`, `<region>c`), all
/// `available` — Carapace has no zones; these exist for clients that list them.
pub fn zones(region: &str) -> Vec<String> {
    ["a", "b", "c"].iter().map(|z| format!("{region}{z}")).collect()
}
