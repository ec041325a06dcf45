//! What the operator declares for Lightsail: the edge's domain, the origins distributions
//! may pull from, and the bundle table.

/// Lightsail settings, filled from the binary's configuration.
#[derive(Debug, Clone)]
pub struct LightsailSettings {
    /// The domain default distribution domains live under (`d<13>.<edge_domain>`, the
    /// counterpart of `d111111abcdef8.cloudfront.net`) and subdomains (`<name>.<edge_domain>`).
    pub edge_domain: String,
    /// The origins a distribution may name. Carapace has no Lightsail instances, buckets or
    /// load balancers, so the operator declares what `origin.name` stands for.
    pub origins: Vec<DeclaredOrigin>,
    /// GetDistributionBundles' table.
    pub bundles: Vec<Bundle>,
    /// How long after UpdateDistributionBundle the bundle cannot change again, milliseconds
    /// (Lightsail: once per monthly billing cycle; Carapace: 30 days).
    pub bundle_change_interval_ms: i64,
}

impl Default for LightsailSettings {
    fn default() -> Self {
        Self {
            edge_domain: String::from("cdn.carapace.internal"),
            origins: Vec::new(),
            bundles: Bundle::defaults(),
            bundle_change_interval_ms: 30 * 86_400_000,
        }
    }
}

/// One declared origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredOrigin {
    /// What `origin.name` must say.
    pub name: String,
    /// Where the edge fetches from: `http://host:port` or `https://host`.
    pub url: String,
    /// Only this account may use it; `None`: every account.
    pub account: Option<String>,
    /// The origin's region (`origin.regionName` must match); `None`: any region.
    pub region: Option<String>,
    /// The Lightsail resource type it stands for (`Instance`, `Bucket`, `LoadBalancer`,
    /// `ContainerService`).
    pub resource_type: String,
}

impl DeclaredOrigin {
    /// The URL's host (`originPublicDNS`).
    pub fn host(&self) -> &str {
        let rest = self.url.split_once("://").map_or(self.url.as_str(), |(_, r)| r);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if let Some(v6) = authority.strip_prefix('[') {
            return v6.split(']').next().unwrap_or(v6);
        }
        authority.split(':').next().unwrap_or(authority)
    }

    /// Whether the URL is https (the default protocol policy follows it).
    pub fn is_https(&self) -> bool {
        self.url.starts_with("https://")
    }
}

/// One distribution bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// `bundleId`, e.g. `small_1_0`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Monthly price, USD.
    pub price: f32,
    /// Monthly transfer quota, GB.
    pub transfer_per_month_in_gb: i32,
    /// Whether it can be chosen for a new or existing distribution.
    pub is_active: bool,
}

impl Bundle {
    /// Lightsail's three distribution bundles (ids as AWS names them; prices and quotas
    /// are the table's defaults and can be changed in `lightsail.bundles`).
    pub fn defaults() -> Vec<Bundle> {
        let b = |id: &str, name: &str, price: f32, gb: i32| Bundle {
            id: id.into(),
            name: name.into(),
            price,
            transfer_per_month_in_gb: gb,
            is_active: true,
        };
        vec![
            b("small_1_0", "Small", 2.5, 50),
            b("medium_1_0", "Medium", 35.0, 600),
            b("large_1_0", "Large", 46.0, 1000),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_hosts() {
        let o = |url: &str| DeclaredOrigin {
            name: "o".into(),
            url: url.into(),
            account: None,
            region: None,
            resource_type: "Instance".into(),
        };
        assert_eq!(o("http://origin.example.com:8080/x").host(), "origin.example.com");
        assert_eq!(o("https://u:p@127.0.0.1").host(), "127.0.0.1");
        assert_eq!(o("http://[::1]:80").host(), "::1");
        assert!(o("https://a").is_https() && !o("http://a").is_https());
    }
}
