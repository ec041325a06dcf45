//! A real authoritative DNS server on loopback, for tests (feature `testing`).
//!
//! It serves in-memory zones through hickory-server over UDP and TCP; a test adds and
//! removes CNAME, CAA and A records while the code under test looks them up with
//! hickory-resolver, exactly as it would against a production name server.

use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::TokioRuntimeProvider;
pub use hickory_server::proto::rr::RecordType;
use hickory_server::proto::rr::rdata::{A, CAA, CNAME, SOA};
use hickory_server::proto::rr::{LowerName, Name, RData, Record, RrKey};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};

/// An authoritative server for a few zones, running until dropped.
pub struct TestDns {
    addr: SocketAddr,
    zones: Vec<(Name, Arc<InMemoryZoneHandler<TokioRuntimeProvider>>)>,
    task: tokio::task::JoinHandle<()>,
}

fn name(text: &str) -> Name {
    let fq = if text.ends_with('.') { text.to_owned() } else { format!("{text}.") };
    Name::from_str(&fq).unwrap_or_else(|e| panic!("bad DNS name {text}: {e}"))
}

impl TestDns {
    /// Serves empty zones for `origins` (e.g. `["example.com", "test"]`) on a free loopback
    /// port (the same port for UDP and TCP).
    pub async fn start(origins: &[&str]) -> Self {
        let mut catalog = Catalog::new();
        let mut zones = Vec::new();
        for origin in origins {
            let origin = name(origin);
            let zone =
                InMemoryZoneHandler::<TokioRuntimeProvider>::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
            let soa = SOA::new(name(&format!("ns.{origin}")), name(&format!("admin.{origin}")), 1, 60, 60, 600, 0);
            zone.upsert(Record::from_rdata(origin.clone(), 0, RData::SOA(soa)), 1).await;
            let zone = Arc::new(zone);
            catalog.upsert(LowerName::new(&origin), vec![zone.clone() as Arc<dyn ZoneHandler>]);
            zones.push((origin, zone));
        }
        // UDP and TCP on one port: bind TCP first, then UDP on the port it got (retry on a clash).
        let (udp, tcp) = loop {
            let tcp = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind DNS/TCP");
            let port = tcp.local_addr().expect("addr").port();
            if let Ok(udp) = tokio::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).await {
                break (udp, tcp);
            }
        };
        let addr = tcp.local_addr().expect("addr");
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 65_535);
        let task = tokio::spawn(async move {
            let _ = server.block_until_done().await;
        });
        Self { addr, zones, task }
    }

    /// Where the server listens (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn zone_of(&self, record: &Name) -> &InMemoryZoneHandler<TokioRuntimeProvider> {
        self.zones
            .iter()
            .filter(|(origin, _)| origin.zone_of(record))
            .max_by_key(|(origin, _)| origin.num_labels())
            .map(|(_, z)| z.as_ref())
            .unwrap_or_else(|| panic!("no test zone holds {record}"))
    }

    async fn put(&self, owner: &str, data: RData) {
        let owner = name(owner);
        let zone = self.zone_of(&owner);
        assert!(zone.upsert(Record::from_rdata(owner.clone(), 0, data), 1).await, "upsert {owner}");
    }

    /// Adds (or replaces) the CNAME `owner` → `target`.
    pub async fn set_cname(&self, owner: &str, target: &str) {
        self.remove(owner, RecordType::CNAME).await;
        self.put(owner, RData::CNAME(CNAME(name(target)))).await;
    }

    /// Adds an A record.
    pub async fn add_a(&self, owner: &str, ip: Ipv4Addr) {
        self.put(owner, RData::A(A(ip))).await;
    }

    /// Adds a CAA `issue` (or `issuewild`) property naming `issuer`.
    pub async fn add_caa(&self, owner: &str, wildcard: bool, issuer: &str) {
        let issuer = if issuer.is_empty() { None } else { Some(name(issuer)) };
        let caa = if wildcard {
            CAA::new_issuewild(false, issuer, Vec::new())
        } else {
            CAA::new_issue(false, issuer, Vec::new())
        };
        self.put(owner, RData::CAA(caa)).await;
    }

    /// Removes every record of `rtype` at `owner`.
    pub async fn remove(&self, owner: &str, rtype: RecordType) {
        let owner = name(owner);
        let zone = self.zone_of(&owner);
        zone.records_mut().await.remove(&RrKey::new(LowerName::new(&owner), rtype));
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}
