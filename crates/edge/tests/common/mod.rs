//! Test fixtures: Carapace's CA issuing real certificates, a real origin that counts hits, an
//! edge on loopback, and a rustls viewer.
#![allow(dead_code)]
#![allow(clippy::disallowed_methods)] // a test or benchmark on the real clock

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use carapace_edge::{
    Distribution, Edge, EdgeConfig, Listeners, ManualClock, Origin as EdgeOrigin, ProtocolPolicy, Snapshot,
    certified_key_from_pem,
};
use carapace_kernel::ca::{CertificateAuthority, KeyAlgorithm, LeafRequest, generate_key};
use carapace_kernel::crypto::MasterKey;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Carapace's CA, for real certificates.
pub struct Pki {
    pub ca: CertificateAuthority,
}

/// A leaf issued by the test CA.
pub struct Leaf {
    pub key: Arc<CertifiedKey>,
    pub chain_pem: String,
    pub key_pem: String,
    pub leaf_der: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Self {
        let master = MasterKey::generate().unwrap();
        let (ca, _) = CertificateAuthority::generate(
            &carapace_kernel::ca::CaProfile::new("Edge Test", "http://127.0.0.1:4566"),
            time::OffsetDateTime::now_utc(),
            &master,
        )
        .unwrap();
        Self { ca }
    }

    pub fn root_der(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.ca.root_der().to_vec())
    }

    pub fn root_pem(&self) -> &str {
        self.ca.root_pem()
    }

    pub fn leaf(&self, names: &[&str], algorithm: KeyAlgorithm) -> Leaf {
        self.leaf_with_ips(names, &[], algorithm)
    }

    pub fn leaf_with_ips(&self, names: &[&str], ips: &[std::net::IpAddr], algorithm: KeyAlgorithm) -> Leaf {
        let now = time::OffsetDateTime::now_utc();
        let key = generate_key(algorithm).unwrap();
        let req = LeafRequest {
            common_name: names[0].to_owned(),
            sans: names.iter().map(|n| n.to_string()).collect(),
            ip_addresses: ips.to_vec(),
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::days(30),
            serial: None,
            base_url: "http://127.0.0.1:4566".into(),
        };
        let issued = self.ca.issue(&req, &key, now).unwrap();
        let chain_pem = format!("{}{}", issued.certificate_pem, issued.chain_pem);
        let key_pem = key.to_pem().to_string();
        let certified = certified_key_from_pem(&chain_pem, &key_pem).unwrap();
        let leaf_der = certified.cert[0].clone();
        Leaf { key: certified, chain_pem, key_pem, leaf_der }
    }
}

/// How the origin answers one path.
#[derive(Clone, Default)]
pub struct Route {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When set, each request waits for a permit (the test releases them).
    pub hold: Option<Arc<Semaphore>>,
}

/// What the origin received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A real origin: a hyper server that counts hits per path and answers per route.
pub struct Origin {
    pub addr: SocketAddr,
    routes: Mutex<HashMap<String, Route>>,
    hits: Mutex<HashMap<String, usize>>,
    seen: Mutex<HashMap<String, Seen>>,
    pub not_modified: AtomicUsize,
    /// TCP connections accepted.
    pub connections: AtomicUsize,
}

impl Origin {
    pub async fn start() -> Arc<Self> {
        Self::start_inner(None).await
    }

    pub async fn start_tls(config: rustls::ServerConfig) -> Arc<Self> {
        Self::start_inner(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_inner(tls: Option<tokio_rustls::TlsAcceptor>) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = Arc::new(Self {
            addr: listener.local_addr().unwrap(),
            routes: Mutex::default(),
            hits: Mutex::default(),
            seen: Mutex::default(),
            not_modified: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let o = origin.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                o.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let (o, tls) = (o.clone(), tls.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let o = o.clone();
                        async move { Ok::<_, hyper::Error>(o.answer(req).await) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        Some(tls) => {
                            if let Ok(stream) = tls.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        origin
    }

    pub fn url(&self) -> Uri {
        format!("http://{}", self.addr).parse().unwrap()
    }

    pub fn route(&self, path: &str, status: u16, headers: &[(&str, &str)], body: &str) {
        self.set(
            path,
            Route {
                status,
                headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
                body: body.as_bytes().to_vec(),
                hold: None,
            },
        );
    }

    pub fn set(&self, path: &str, route: Route) {
        self.routes.lock().unwrap().insert(path.to_owned(), route);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn seen(&self, path: &str) -> Seen {
        self.seen.lock().unwrap().get(path).cloned().expect("origin saw no request for the path")
    }

    async fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_owned();
        let (parts, body) = req.into_parts();
        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        *self.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        self.seen.lock().unwrap().insert(
            path.clone(),
            Seen { method: parts.method.clone(), uri: parts.uri.clone(), headers: parts.headers.clone(), body },
        );
        let route = self.routes.lock().unwrap().get(&path).cloned();
        let Some(route) = route else {
            return Response::builder().status(404).body(Full::new(Bytes::from_static(b"no such route"))).unwrap();
        };
        if let Some(hold) = &route.hold {
            hold.acquire().await.unwrap().forget();
        }
        let header = |name: &str| route.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v);
        let inm = parts.headers.get("if-none-match").and_then(|v| v.to_str().ok());
        let ims = parts.headers.get("if-modified-since").and_then(|v| v.to_str().ok());
        let revalidated = match (header("etag"), inm, header("last-modified"), ims) {
            (Some(etag), Some(inm), _, _) => inm.split(',').any(|t| t.trim() == etag),
            (None, _, Some(lm), Some(ims)) => lm == ims,
            _ => false,
        };
        let mut res = Response::builder().status(if revalidated { 304 } else { route.status });
        for (n, v) in &route.headers {
            res = res.header(n, v);
        }
        if revalidated {
            self.not_modified.fetch_add(1, Ordering::SeqCst);
            return res.body(Full::new(Bytes::new())).unwrap();
        }
        res.body(Full::new(Bytes::from(route.body.clone()))).unwrap()
    }
}

/// A distribution named `name` pulling from `origin` over HTTP.
pub fn dist(id: &str, name: &str, origin: &Origin, cert: &Leaf) -> Distribution {
    Distribution::new(id, name, EdgeOrigin::new(origin.url(), ProtocolPolicy::HttpOnly), cert.key.clone())
}

/// A running edge on loopback.
pub struct Running {
    pub edge: Edge,
    pub https: SocketAddr,
    pub http: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

/// A test configuration: a manual clock, no system roots, the test CA trusted for origins.
pub fn config(pki: &Pki, clock: &Arc<ManualClock>) -> EdgeConfig {
    EdgeConfig {
        clock: clock.clone(),
        system_roots: false,
        origin_roots: vec![pki.root_der()],
        ..EdgeConfig::default()
    }
}

pub async fn start_edge(config: EdgeConfig, snapshot: Snapshot) -> Running {
    let edge = Edge::new(config).unwrap();
    edge.swap(snapshot);
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (https_addr, http_addr) = (https.local_addr().unwrap(), http.local_addr().unwrap());
    let (tx, rx) = oneshot::channel();
    let e = edge.clone();
    let task = tokio::spawn(async move {
        e.serve(Listeners { https, http: Some(http) }, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Running { edge, https: https_addr, http: http_addr, stop: Some(tx), task: Some(task) }
}

/// A response as the viewer saw it.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: Version,
}

impl Resp {
    pub fn x_cache(&self) -> &str {
        self.headers.get("x-cache").and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A viewer trusting the test CA, connecting to the edge whatever the name (`curl --resolve`).
#[derive(Clone)]
pub struct Viewer {
    pub addr: SocketAddr,
    roots: Arc<rustls::RootCertStore>,
}

/// An open viewer connection.
pub enum Conn {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

impl Viewer {
    pub fn new(addr: SocketAddr, pki: &Pki) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.root_der()).unwrap();
        Self { addr, roots: Arc::new(roots) }
    }

    pub fn tls_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(self.roots.clone())
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    /// A TLS connection for `server_name` (a DNS name sends SNI; an IP address sends none).
    pub async fn tls(&self, server_name: &str, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr).await?;
        let name = ServerName::try_from(server_name.to_owned()).unwrap();
        TlsConnector::from(self.tls_config(alpn)).connect(name, tcp).await
    }

    pub async fn connect(&self, host: &str, h2: bool) -> std::io::Result<(Conn, CertificateDer<'static>)> {
        let alpn: &[&[u8]] = if h2 { &[b"h2"] } else { &[b"http/1.1"] };
        let tls = self.tls(host, alpn).await?;
        let cert = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        let io = TokioIo::new(tls);
        let conn = if h2 {
            let (send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Conn::H2(send)
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io).await.map_err(std::io::Error::other)?;
            tokio::spawn(conn);
            Conn::H1(send)
        };
        Ok((conn, cert))
    }

    /// GET over a new HTTP/1.1 connection.
    pub async fn get(&self, host: &str, path: &str) -> Resp {
        self.request(host, Method::GET, path, &[], "").await.unwrap()
    }

    pub async fn get_with(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.request(host, Method::GET, path, headers, "").await.unwrap()
    }

    pub async fn request(
        &self,
        host: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Resp> {
        let (mut conn, _) = self.connect(host, false).await?;
        conn.send(host, method, path, headers, body).await
    }
}

impl Conn {
    pub async fn send(
        &mut self,
        host: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Resp> {
        let mut req = Request::builder().method(method);
        req = match self {
            Conn::H1(_) if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) => req.uri(path),
            Conn::H1(_) => req.uri(path).header("host", host),
            Conn::H2(_) => req.uri(format!("https://{host}{path}")),
        };
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
        let res = match self {
            Conn::H1(send) => send.send_request(req).await,
            Conn::H2(send) => send.send_request(req).await,
        }
        .map_err(std::io::Error::other)?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
        Ok(Resp { status: parts.status, headers: parts.headers, body, version: parts.version })
    }
}

/// A TCP connection to `addr` from the loopback address `source` (every address of
/// 127.0.0.0/8 is loopback on Linux), so one test can be several clients.
pub async fn tcp_from(source: &str, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source.parse().map_err(std::io::Error::other)?, 0))?;
    socket.connect(addr).await
}

impl Viewer {
    /// [`Viewer::tls`] from the loopback address `source`.
    pub async fn tls_from(
        &self,
        source: &str,
        server_name: &str,
        alpn: &[&[u8]],
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = tcp_from(source, self.addr).await?;
        let name = ServerName::try_from(server_name.to_owned()).map_err(std::io::Error::other)?;
        TlsConnector::from(self.tls_config(alpn)).connect(name, tcp).await
    }

    /// An HTTP/2 connection from `source` (TLS, then the client preface and SETTINGS), and the
    /// task driving it: the task finishes once the edge has closed the connection.
    pub async fn h2_from(&self, source: &str, host: &str) -> std::io::Result<(Conn, tokio::task::JoinHandle<()>)> {
        let tls = self.tls_from(source, host, &[b"h2"]).await?;
        let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .map_err(std::io::Error::other)?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok((Conn::H2(send), driver))
    }
}
