//! The viewer TLS handshake for the shared listener: the ClientHello is read before any
//! configuration is chosen, because the SNI name picks the distribution and its security
//! policy picks the rustls configuration (protocol versions and cipher suites).

use std::future::Future;
use std::io;

use carapace_net::{Handshake, TlsInfo};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use crate::Edge;
use crate::tls::TlsPolicy;

/// The HTTPS listener's handshake: SNI → distribution → its TLS policy's configuration. The
/// certificate itself is chosen by the configurations' shared SNI resolver.
pub(crate) struct ViewerTls {
    edge: Edge,
}

impl ViewerTls {
    pub(crate) fn new(edge: Edge) -> Self {
        Self { edge }
    }
}

impl Handshake for ViewerTls {
    type Io = TlsStream<TcpStream>;

    fn handshake(&self, tcp: TcpStream) -> impl Future<Output = io::Result<(Self::Io, Option<TlsInfo>)>> + Send {
        let inner = &*self.edge.inner;
        async move {
            let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
            // A name no distribution serves (or no SNI) gets Lightsail's default policy; the
            // resolver then finds no certificate and the handshake ends with an alert.
            let policy = start
                .client_hello()
                .server_name()
                .and_then(|name| inner.live.load().snapshot.find(name).map(|d| d.viewer_minimum_tls_protocol_version))
                .unwrap_or(TlsPolicy::Tls12_2021);
            let stream = start.into_stream(inner.tls.get(policy)).await?;
            let (_, session) = stream.get_ref();
            let info = TlsInfo {
                server_name: session.server_name().map(str::to_owned),
                alpn: session.alpn_protocol().map(<[u8]>::to_vec),
            };
            Ok((stream, Some(info)))
        }
    }
}
