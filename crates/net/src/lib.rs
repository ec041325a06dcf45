//! One HTTP listener for every Carapace port: the AWS API, the approval page and the edge.
//!
//! A [`Server`] accepts TCP connections (optionally through a TLS [`Handshake`]), speaks
//! HTTP/1.1 and HTTP/2 with hyper, and holds every connection to its [`Limits`]:
//!
//! - **time**: the TLS handshake and each request head within `header_timeout_ms`, each
//!   request body within `body_timeout_ms` ([`Body`] fails with [`BodyTimeout`]), no more
//!   than `idle_timeout_ms` between keep-alive requests, no more than `send_timeout_ms`
//!   waiting for a client that does not read its answer;
//! - **count**: at most `max_connections` open (then the accept loop waits and says so in
//!   the log), at most `max_connections_per_ip` of them from one client (more are closed
//!   at once), `max_requests_per_connection` requests per connection, HTTP/2 streams per
//!   connection, and rapid-reset bounds (resets before and after a stream is accepted);
//! - **size**: request heads up to `max_header_bytes` and `max_headers` fields (body sizes
//!   are the handler's call);
//! - **faults**: a panic in a handler answers that request with a `500` ([`panic`]),
//!   never a dropped connection;
//! - **shutdown**: [`Server::run`] stops accepting when told, lets in-flight requests
//!   finish within a grace period, and closes idle connections at once.
//!
//! What this crate is not: a router or a framework. It knows no service, no path and no
//! error format; the handler gets a `Request<Body>` (with [`ConnInfo`] in its extensions)
//! and answers a `Response`.

mod activity;
mod body;
mod limits;
pub mod panic;
mod per_ip;
mod server;

pub use body::{Body, BodyTimeout, BoxError};
pub use limits::{InvalidLimit, Limits};
pub use server::{ConnInfo, Handler, Handshake, Plain, Server, Stats, Tls, TlsInfo};
