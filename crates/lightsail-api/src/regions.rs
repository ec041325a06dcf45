//! GetRegions.

use carapace_lightsail::regions::{REGIONS, zones};
use carapace_model::lightsail as m;

pub(crate) fn get(req: m::GetRegionsRequest) -> m::GetRegionsResult {
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
    m::GetRegionsResult { regions: Some(regions) }
}
