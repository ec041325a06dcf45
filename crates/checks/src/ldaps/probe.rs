//! The network half of the client LDAPS check: connect to each customer domain controller
//! on the LDAPS port, complete a TLS handshake that trusts only the directory's registered
//! `ClientLDAPS` certificates, and read the root DSE with an LDAP search.
//!
//! Server names: Carapace knows the domain controllers only by IP address
//! (`ConnectSettings.CustomerDnsIps`), while a domain controller's certificate names its
//! host (`dc1.corp.example.com`). So the IP is sent as the TLS server name and the chain,
//! validity period and key usage are verified as usual, but a name mismatch is tolerated
//! (`ChainOnly`): requiring the IP in the certificate would fail every real domain
//! controller. This is the one relaxation, and rustls checks the name only after the
//! chain, so nothing else is skipped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::ldap::{self, Response};
use super::{LdapsFailure, LdapsPlan};

/// The standard LDAPS port.
pub const DEFAULT_LDAPS_PORT: u16 = 636;

/// Where and how patiently to probe.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// LDAPS port on every domain controller (tests run slapd on a free loopback port).
    pub port: u16,
    /// Limit for the TCP connection.
    pub connect_timeout: Duration,
    /// Limit for the TLS handshake, and separately for the LDAP exchange.
    pub io_timeout: Duration,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        Self { port: DEFAULT_LDAPS_PORT, connect_timeout: Duration::from_secs(3), io_timeout: Duration::from_secs(5) }
    }
}

/// Runs the check of `plan`: every target must pass. No targets (Managed Microsoft AD,
/// whose domain controllers AWS runs and Carapace does not) passes.
pub async fn check(plan: &LdapsPlan, settings: &ProbeSettings) -> Result<(), LdapsFailure> {
    if plan.targets.is_empty() {
        return Ok(());
    }
    for ip in &plan.targets {
        let addr = SocketAddr::new(*ip, settings.port);
        let config = client_config(&plan.anchors)
            .map_err(|detail| LdapsFailure::UntrustedChain { addr: addr.to_string(), detail })?;
        probe(addr, config, settings).await?;
        tracing::debug!(%addr, "LDAPS check passed");
    }
    Ok(())
}

/// A client configuration whose only trust anchors are `anchors`.
fn client_config(anchors: &[Vec<u8>]) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for der in anchors {
        if let Err(e) = roots.add(CertificateDer::from(der.clone())) {
            tracing::warn!(error = %e, "registered ClientLDAPS certificate is not usable as a trust anchor");
        }
    }
    if roots.is_empty() {
        return Err("no registered ClientLDAPS certificate is usable as a trust anchor".into());
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(inner)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// webpki verification minus the server-name check (see the module docs).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // Only reachable once the chain, validity and usage have been verified.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Checks one domain controller.
async fn probe(addr: SocketAddr, config: Arc<ClientConfig>, settings: &ProbeSettings) -> Result<(), LdapsFailure> {
    let a = addr.to_string();
    let tcp = match timeout(settings.connect_timeout, TcpStream::connect(addr)).await {
        Err(_) => {
            return Err(LdapsFailure::Unreachable {
                addr: a,
                detail: format!("no answer within {} s", settings.connect_timeout.as_secs_f32()),
            });
        }
        Ok(Err(e)) => return Err(LdapsFailure::Unreachable { addr: a, detail: e.to_string() }),
        Ok(Ok(tcp)) => tcp,
    };
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = match timeout(settings.io_timeout, TlsConnector::from(config).connect(name, tcp)).await {
        Err(_) => return Err(LdapsFailure::Handshake { addr: a, detail: "the handshake timed out".into() }),
        Ok(Err(e)) => return Err(classify_tls_error(a, &e)),
        Ok(Ok(tls)) => tls,
    };
    match timeout(settings.io_timeout, root_dse(&mut tls)).await {
        Err(_) => Err(LdapsFailure::Ldap { addr: a, detail: "no answer to the root DSE search".into() }),
        Ok(Err(detail)) => Err(LdapsFailure::Ldap { addr: a, detail }),
        Ok(Ok(entry)) => {
            tracing::debug!(%addr, ?entry, "root DSE");
            Ok(())
        }
    }
}

/// Sorts a failed handshake into what the status reason should say.
fn classify_tls_error(addr: String, e: &std::io::Error) -> LdapsFailure {
    let inner = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(ce)) => match ce {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => LdapsFailure::Expired { addr, detail: ce.to_string() },
            other => LdapsFailure::UntrustedChain { addr, detail: other.to_string() },
        },
        Some(other) => LdapsFailure::Handshake { addr, detail: other.to_string() },
        None => LdapsFailure::Handshake { addr, detail: e.to_string() },
    }
}

/// Sends the root DSE search and reads until its `SearchResultDone`. Returns the entry's
/// attributes (a server may return none to an anonymous client; success is what counts).
async fn root_dse<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<Vec<(String, Vec<String>)>, String> {
    const SEARCH_ID: u32 = 1;
    let request = ldap::root_dse_search(SEARCH_ID, &["namingContexts", "supportedLDAPVersion", "dnsHostName"]);
    stream.write_all(&request).await.map_err(|e| format!("sending the root DSE search failed: {e}"))?;
    stream.flush().await.map_err(|e| format!("sending the root DSE search failed: {e}"))?;
    let mut buf = Vec::new();
    let mut entry = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Some((id, response, used)) = ldap::read_message(&buf).map_err(|e| e.to_string())? {
            buf.drain(..used);
            match response {
                Response::Entry(attrs) if id == SEARCH_ID => entry = attrs,
                Response::Done { result_code: 0, .. } if id == SEARCH_ID => {
                    // Best effort: the check has its answer either way.
                    let _ = stream.write_all(&ldap::unbind(SEARCH_ID + 1)).await;
                    let _ = stream.shutdown().await;
                    return Ok(entry);
                }
                Response::Done { result_code, diagnostic } if id == SEARCH_ID => {
                    return Err(format!("the root DSE search failed with result code {result_code} ({diagnostic})"));
                }
                Response::Notice { result_code, diagnostic } => {
                    return Err(format!("the server disconnected: result code {result_code} ({diagnostic})"));
                }
                Response::Entry(_) | Response::Reference | Response::Done { .. } => {}
            }
        }
        let n = stream.read(&mut chunk).await.map_err(|e| format!("reading the LDAP response failed: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection before answering the root DSE search".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > ldap::MAX_MESSAGE_LEN {
            return Err("the LDAP response is too large".into());
        }
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // tests read the real clock where no clock is injected
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    struct Ca {
        der: Vec<u8>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(cn: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { der: cert.der().to_vec(), issuer: Issuer::new(params, key) }
    }

    /// A server certificate for `dc1.corp.example.com` (no IP: the name is not checked).
    fn server_cert(ca: &Ca, expired: bool) -> (Vec<u8>, Vec<u8>) {
        let mut params = CertificateParams::new(vec!["dc1.corp.example.com".into()]).unwrap();
        params.subject_alt_names.push(SanType::DnsName("dc1.corp.example.com".try_into().unwrap()));
        if expired {
            let now = time::OffsetDateTime::now_utc();
            params.not_before = now - time::Duration::days(30);
            params.not_after = now - time::Duration::days(1);
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.signed_by(&key, &ca.issuer).unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }

    /// What the fake domain controller does after the handshake.
    #[derive(Clone, Copy)]
    enum Behaviour {
        AnswerRootDse,
        RefuseSearch,
    }

    /// A one-connection LDAPS server on loopback.
    async fn fake_dc(cert: (Vec<u8>, Vec<u8>), behaviour: Behaviour) -> SocketAddr {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert.0)],
                rustls::pki_types::PrivateKeyDer::Pkcs8(cert.1.into()),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let Ok(mut tls) = acceptor.accept(tcp).await else { return };
            let mut buf = [0u8; 512];
            let n = tls.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], ldap::root_dse_search(1, &["namingContexts", "supportedLDAPVersion", "dnsHostName"]));
            let reply: &[u8] = match behaviour {
                // SearchResultEntry "" {supportedLDAPVersion: 3}, then SearchResultDone success.
                Behaviour::AnswerRootDse => &[
                    0x30, 0x25, 0x02, 0x01, 0x01, 0x64, 0x20, 0x04, 0x00, 0x30, 0x1c, 0x30, 0x1a, 0x04, 0x14, b's',
                    b'u', b'p', b'p', b'o', b'r', b't', b'e', b'd', b'L', b'D', b'A', b'P', b'V', b'e', b'r', b's',
                    b'i', b'o', b'n', 0x31, 0x02, 0x04, 0x00, 0x30, 0x0c, 0x02, 0x01, 0x01, 0x65, 0x07, 0x0a, 0x01,
                    0x00, 0x04, 0x00, 0x04, 0x00,
                ],
                // SearchResultDone insufficientAccessRights (50).
                Behaviour::RefuseSearch => {
                    &[0x30, 0x0e, 0x02, 0x01, 0x01, 0x65, 0x09, 0x0a, 0x01, 0x32, 0x04, 0x00, 0x04, 0x02, b'n', b'o']
                }
            };
            tls.write_all(reply).await.unwrap();
            let _ = tls.read(&mut buf).await;
        });
        addr
    }

    fn plan(addr: SocketAddr, anchors: Vec<Vec<u8>>) -> (LdapsPlan, ProbeSettings) {
        let settings = ProbeSettings { port: addr.port(), ..Default::default() };
        (LdapsPlan { targets: vec![addr.ip()], anchors }, settings)
    }

    #[tokio::test]
    async fn passes_with_a_trusted_chain_and_a_root_dse() {
        let ca = ca("Corp CA");
        let addr = fake_dc(server_cert(&ca, false), Behaviour::AnswerRootDse).await;
        let (plan, settings) = plan(addr, vec![ca.der.clone()]);
        check(&plan, &settings).await.unwrap();
    }

    #[tokio::test]
    async fn fails_on_an_untrusted_chain() {
        let ca1 = ca("Corp CA");
        let other = ca("Other CA");
        let addr = fake_dc(server_cert(&ca1, false), Behaviour::AnswerRootDse).await;
        let (plan, settings) = plan(addr, vec![other.der.clone()]);
        let err = check(&plan, &settings).await.unwrap_err();
        assert!(matches!(err, LdapsFailure::UntrustedChain { .. }), "{err:?}");
        assert!(err.to_string().contains("untrusted certificate chain"), "{err}");
    }

    #[tokio::test]
    async fn fails_on_an_expired_certificate() {
        let ca = ca("Corp CA");
        let addr = fake_dc(server_cert(&ca, true), Behaviour::AnswerRootDse).await;
        let (plan, settings) = plan(addr, vec![ca.der.clone()]);
        let err = check(&plan, &settings).await.unwrap_err();
        assert!(matches!(err, LdapsFailure::Expired { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn fails_on_an_ldap_error() {
        let ca = ca("Corp CA");
        let addr = fake_dc(server_cert(&ca, false), Behaviour::RefuseSearch).await;
        let (plan, settings) = plan(addr, vec![ca.der.clone()]);
        let err = check(&plan, &settings).await.unwrap_err();
        assert!(matches!(err, LdapsFailure::Ldap { .. }), "{err:?}");
        assert!(err.to_string().contains("result code 50 (no)"), "{err}");
    }

    #[tokio::test]
    async fn fails_when_unreachable_or_not_tls() {
        let ca = ca("Corp CA");
        // A port that was just free: nothing listens.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
        let (plan1, settings) = plan(closed, vec![ca.der.clone()]);
        let err = check(&plan1, &settings).await.unwrap_err();
        assert!(matches!(err, LdapsFailure::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains("unreachable"), "{err}");

        // Something that answers in plain text: a handshake error.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        let (plan2, settings) = plan(addr, vec![ca.der.clone()]);
        let err = check(&plan2, &settings).await.unwrap_err();
        assert!(matches!(err, LdapsFailure::Handshake { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn managed_directories_have_nothing_to_probe() {
        let plan = LdapsPlan { targets: vec![], anchors: vec![] };
        check(&plan, &ProbeSettings::default()).await.unwrap();
    }

    #[test]
    fn the_port_comes_from_the_environment() {
        assert_eq!(ProbeSettings::default().port, 636);
    }
}
