//! [`Resolver`]: the DNS checks answered with hickory-resolver.
//!
//! Every check builds a fresh resolver with no cache, so a record the user has just added
//! (or removed) is seen by the next check rather than after a TTL: ACM rechecks pending
//! records every few minutes and a cached negative answer would stall validation for the
//! length of the zone's negative TTL.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as DnsError2, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};

use super::{CaaProperty, CnameCheck, DnsChecker, DnsError, caa_set_allows, fqdn};

/// Looks up validation records. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Resolver {
    name_servers: Vec<SocketAddr>,
    timeout: Duration,
}

impl Resolver {
    /// A checker asking `name_servers` (UDP, falling back to TCP), or the system's
    /// resolvers (`/etc/resolv.conf`) when the list is empty. `timeout` bounds each query.
    pub fn new(name_servers: Vec<SocketAddr>, timeout: Duration) -> Self {
        Self { name_servers, timeout }
    }

    /// A resolver with no cache (see the module docs).
    fn resolver(&self) -> Result<TokioResolver, DnsError> {
        let fail = |reason: String| DnsError { name: String::new(), rtype: String::new(), reason };
        let (config, mut opts) = if self.name_servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| fail(format!("reading the system resolver configuration: {e}")))?
        } else {
            let servers = self
                .name_servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            (ResolverConfig::from_name_servers(servers), ResolverOpts::default())
        };
        opts.timeout = self.timeout;
        opts.attempts = 1;
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        opts.try_tcp_on_error = true;
        opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = opts;
        builder.build().map_err(|e| fail(e.to_string()))
    }

    /// The records of `rtype` at `name`: `Ok(empty)` when the name or the type does not
    /// exist, `Err` when the question could not be answered.
    async fn lookup(&self, resolver: &TokioResolver, name: &str, rtype: RecordType) -> Result<Vec<RData>, DnsError> {
        let name = fqdn(name);
        match resolver.lookup(name.as_str(), rtype).await {
            Ok(found) => Ok(found
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype && fqdn(&r.name.to_string()) == name)
                .map(|r| r.data.clone())
                .collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            // A server that refuses a name is not responsible for it (the configured servers
            // may be authoritative for the user's zones only, not for their parents up to the
            // TLD); treated as "no records here" so CAA climbing can end.
            Err(NetError::Dns(DnsError2::ResponseCode(ResponseCode::Refused))) => Ok(Vec::new()),
            Err(e) => Err(DnsError { name, rtype: rtype.to_string(), reason: lookup_reason(&e) }),
        }
    }

    /// The CNAME target at `name` (lower case, trailing dot), if there is one.
    pub async fn cname(&self, name: &str) -> Result<Option<String>, DnsError> {
        let resolver = self.resolver()?;
        let found = self.lookup(&resolver, name, RecordType::CNAME).await?;
        Ok(found.into_iter().find_map(|d| match d {
            RData::CNAME(target) => Some(fqdn(&target.0.to_string())),
            _ => None,
        }))
    }

    /// The IPv4 and IPv6 addresses of `host` (HTTP validation resolves through the same
    /// name servers as everything else).
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let resolver = self.resolver()?;
        let mut out = Vec::new();
        for rtype in [RecordType::A, RecordType::AAAA] {
            for data in self.lookup(&resolver, host, rtype).await? {
                match data {
                    RData::A(a) => out.push(IpAddr::V4(a.0)),
                    RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                    _ => {}
                }
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl DnsChecker for Resolver {
    async fn check_cname(&self, name: &str, value: &str) -> Result<CnameCheck, DnsError> {
        Ok(match self.cname(name).await? {
            None => CnameCheck::Missing,
            Some(found) if found == fqdn(value) => CnameCheck::Match,
            Some(found) => CnameCheck::Mismatch(found),
        })
    }

    async fn caa_allows(&self, domain: &str, issuer: &str) -> Result<bool, DnsError> {
        let (wildcard, base) = match domain.strip_prefix("*.") {
            Some(base) => (true, base),
            None => (false, domain),
        };
        let resolver = self.resolver()?;
        let base = fqdn(base);
        let labels: Vec<&str> = base.trim_end_matches('.').split('.').collect();
        // The domain itself, then each parent; never the root.
        for start in 0..labels.len() {
            let name = labels[start..].join(".");
            let set: Vec<CaaProperty> = self
                .lookup(&resolver, &name, RecordType::CAA)
                .await?
                .into_iter()
                .filter_map(|d| match d {
                    RData::CAA(caa) => Some(CaaProperty {
                        critical: caa.issuer_critical,
                        tag: caa.tag.to_ascii_lowercase(),
                        value: String::from_utf8_lossy(&caa.value).into_owned(),
                    }),
                    _ => None,
                })
                .collect();
            if !set.is_empty() {
                return Ok(caa_set_allows(&set, wildcard, issuer));
            }
        }
        Ok(true)
    }
}

fn lookup_reason(e: &NetError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn real_lookups_against_an_authoritative_server() {
        let dns = crate::testing::TestDns::start(&["example.com", "other.org"]).await;
        let checker = Resolver::new(vec![dns.addr()], Duration::from_secs(2));
        let name = "_abc.example.com.";
        assert_eq!(checker.check_cname(name, "_v.zone.test.").await.unwrap(), CnameCheck::Missing);
        dns.set_cname(name, "_wrong.zone.test.").await;
        assert_eq!(
            checker.check_cname(name, "_v.zone.test.").await.unwrap(),
            CnameCheck::Mismatch("_wrong.zone.test.".into())
        );
        dns.set_cname(name, "_V.Zone.Test.").await;
        assert_eq!(checker.check_cname(name, "_v.zone.test.").await.unwrap(), CnameCheck::Match, "no stale cache");
        dns.remove(name, RecordType::CNAME).await;
        assert_eq!(checker.check_cname(name, "_v.zone.test.").await.unwrap(), CnameCheck::Missing);

        // CAA: none anywhere → allowed; a parent's record applies to its subdomains; the
        // closest RRset wins.
        assert!(checker.caa_allows("a.b.example.com", "carapace.internal").await.unwrap());
        dns.add_caa("example.com", false, "letsencrypt.org").await;
        assert!(!checker.caa_allows("a.b.example.com", "carapace.internal").await.unwrap());
        dns.add_caa("b.example.com", false, "carapace.internal").await;
        assert!(checker.caa_allows("a.b.example.com", "carapace.internal").await.unwrap());
        assert!(checker.caa_allows("*.b.example.com", "carapace.internal").await.unwrap());
        dns.add_caa("b.example.com", true, "letsencrypt.org").await;
        assert!(!checker.caa_allows("*.b.example.com", "carapace.internal").await.unwrap());

        dns.add_a("www.other.org", std::net::Ipv4Addr::LOCALHOST).await;
        assert_eq!(checker.addresses("www.other.org").await.unwrap(), vec![IpAddr::from([127, 0, 0, 1])]);
        assert!(checker.addresses("nothing.other.org").await.unwrap().is_empty());
    }
}
