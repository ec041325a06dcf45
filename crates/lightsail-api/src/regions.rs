//! GetRegions.

use carapace_lightsail::regions::{REGIONS, zones};
use carapace_model::lightsail as m;
use carapace_proto::Output;

use crate::error::{Result, decode, encode};

pub(crate) fn get(input: serde_json::Value) -> Result<Output> {
    let req: m::GetRegionsRequest = decode(input)?;
    let zone_list = |region: &str, wanted: Option<bool>| {
        Some(if wanted.unwrap_or(false) {
            zones(region)
                .into_iter()
                .map(|z| m::AvailabilityZone { zone_name: Some(z), state: Some("available".into()) })
                .collect()
        } else {
            Vec::new()
        })
    };
    let regions = REGIONS
        .iter()
        .map(|r| m::Region {
            continent_code: Some(r.continent_code.into()),
            description: Some(r.description.into()),
            display_name: Some(r.display_name.into()),
            name: r.name.parse().ok(),
            availability_zones: zone_list(r.name, req.include_availability_zones),
            relational_database_availability_zones: zone_list(
                r.name,
                req.include_relational_database_availability_zones,
            ),
        })
        .collect();
    encode(m::GetRegionsResult { regions: Some(regions) })
}
