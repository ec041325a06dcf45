//! Viewer TLS: CloudFront's security policies as rustls configurations, and the SNI resolver.
//!
//! CloudFront's policies (viewer protocol and ciphers, "Supported protocols and ciphers between
//! viewers and CloudFront"), intersected with what rustls implements. rustls offers only
//! forward-secret AEAD suites and never TLS 1.0/1.1, so every policy is served as the set
//! rustls has in common with it; the extra CBC and static-RSA suites of the older policies, and
//! TLS 1.1 for `TLSv1.1_2016`, are refused (see `docs/edge.md`).

use std::str::FromStr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CipherSuite, ServerConfig};

use crate::Live;

/// `viewerMinimumTlsProtocolVersion`: a CloudFront security policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsPolicy {
    /// `TLSv1.1_2016`: accepted, served as TLS 1.2+ with the suites of `TLSv1.2_2018`.
    Tls11_2016,
    /// `TLSv1.2_2018`.
    Tls12_2018,
    /// `TLSv1.2_2019`.
    Tls12_2019,
    /// `TLSv1.2_2021` (Lightsail's default).
    Tls12_2021,
}

impl TlsPolicy {
    /// Every policy, oldest first.
    pub const ALL: [TlsPolicy; 4] = [Self::Tls11_2016, Self::Tls12_2018, Self::Tls12_2019, Self::Tls12_2021];

    /// The API's name, e.g. `TLSv1.2_2021`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tls11_2016 => "TLSv1.1_2016",
            Self::Tls12_2018 => "TLSv1.2_2018",
            Self::Tls12_2019 => "TLSv1.2_2019",
            Self::Tls12_2021 => "TLSv1.2_2021",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// Whether CloudFront's policy allows this TLS 1.2 suite (TLS 1.3's three suites are in
    /// every policy). TLSv1.2_2021 allows the forward-secret AEAD suites; 2019 adds the ECDHE
    /// CBC-SHA2 suites; 2018 (and 2016, served as 2018) adds static-RSA suites.
    fn allows_tls12(self, suite: CipherSuite) -> bool {
        use CipherSuite::*;
        const ECDHE_AEAD: &[CipherSuite] = &[
            TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ];
        const ECDHE_CBC: &[CipherSuite] = &[
            TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
            TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384,
            TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
            TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384,
        ];
        const STATIC_RSA: &[CipherSuite] =
            &[TLS_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_256_GCM_SHA384, TLS_RSA_WITH_AES_128_CBC_SHA256];
        ECDHE_AEAD.contains(&suite)
            || (self != Self::Tls12_2021 && ECDHE_CBC.contains(&suite))
            || (matches!(self, Self::Tls12_2018 | Self::Tls11_2016) && STATIC_RSA.contains(&suite))
    }
}

impl FromStr for TlsPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| format!("unknown TLS policy {s:?}"))
    }
}

impl std::fmt::Display for TlsPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rustls configuration per policy, all sharing one SNI resolver.
pub(crate) struct TlsConfigs {
    by_policy: Vec<Arc<ServerConfig>>,
}

impl TlsConfigs {
    pub(crate) fn new(live: Arc<ArcSwap<Live>>) -> Result<Self, rustls::Error> {
        let resolver = Arc::new(SniResolver { live });
        let by_policy = TlsPolicy::ALL
            .into_iter()
            .map(|policy| {
                let mut provider = rustls::crypto::aws_lc_rs::default_provider();
                provider.cipher_suites.retain(|s| match s {
                    rustls::SupportedCipherSuite::Tls13(_) => true,
                    rustls::SupportedCipherSuite::Tls12(_) => policy.allows_tls12(s.suite()),
                });
                let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
                    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                    .with_no_client_auth()
                    .with_cert_resolver(resolver.clone());
                config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                Ok(Arc::new(config))
            })
            .collect::<Result<_, rustls::Error>>()?;
        Ok(Self { by_policy })
    }

    pub(crate) fn get(&self, policy: TlsPolicy) -> Arc<ServerConfig> {
        self.by_policy[policy.index()].clone()
    }
}

/// Chooses the certificate by SNI from the current snapshot: the edge's own certificate for a
/// distribution's default domain and subdomain, the attached one for its alternative names
/// ([`crate::Snapshot::certificate_for`]: hash-map reads, no allocation). A name no
/// distribution serves (or no SNI at all) resolves to nothing, so rustls aborts the handshake
/// with an alert: a viewer never sees another distribution's certificate.
#[derive(Debug)]
struct SniResolver {
    live: Arc<ArcSwap<Live>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?;
        self.live.load().snapshot.certificate_for(name).cloned()
    }
}
