//! What a listener allows a client: how long, how many, how much.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Bounds on every connection of one listener. Each has a default that suits an API or a
/// web page; `validate` refuses values that would disable a bound.
///
/// The times are milliseconds so a configuration file can say `header_timeout_ms = 10000`
/// and a test can use a fraction of a second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Time from accepting a connection to the end of its first request's headers (TLS
    /// handshake included), and from the first byte of any later HTTP/1.1 request to the end
    /// of its headers. A client that is slower is disconnected (slow-loris defence).
    pub header_timeout_ms: u64,
    /// Time from the end of a request's headers to the end of its body. A body still
    /// arriving then fails with a timeout error and the connection is closed after the
    /// answer.
    pub body_timeout_ms: u64,
    /// How long a keep-alive connection may sit with no request in flight before it is
    /// closed (HTTP/2: GOAWAY, then closed once its streams are done).
    pub idle_timeout_ms: u64,
    /// How long a response may wait for a client that does not read it (the socket's send
    /// buffer full) before the connection is dropped (slow-read defence).
    pub send_timeout_ms: u64,
    /// Connections open at once on this listener. At the limit the listener stops accepting
    /// (new clients wait in the kernel's backlog) and logs a warning once per 10 seconds.
    pub max_connections: usize,
    /// Connections one client may have open at once on this listener. A connection beyond
    /// it is closed as soon as it is accepted, before any handshake (as nginx's `limit_conn`
    /// does), and counted in [`Stats::refused_per_ip`](crate::Stats::refused_per_ip): one
    /// client cannot hold the slots of `max_connections` that every other client needs.
    /// A client is its IPv4 address, or the /64 prefix of its IPv6 address (one host may use
    /// any address of its /64). Behind a proxy every client has the proxy's address: raise
    /// this to `max_connections` there.
    pub max_connections_per_ip: usize,
    /// Largest request head (request line and headers) in bytes, HTTP/1.1 and HTTP/2.
    pub max_header_bytes: u32,
    /// Most header fields in one HTTP/1.1 request head; more is answered `431 Request Header
    /// Fields Too Large` (RFC 6585 §5). HTTP/2 heads are bounded by `max_header_bytes`.
    pub max_headers: usize,
    /// Requests served on one connection before it is closed gracefully (HTTP/1.1:
    /// `Connection: close` on the last answer; HTTP/2: GOAWAY). Bounds what one connection
    /// can make the server do, as nginx's `keepalive_requests` does.
    pub max_requests_per_connection: u64,
    /// HTTP/2 streams a client may have open at once on one connection (the
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` sent to the client).
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before the server has accepted them; more, and the
    /// connection is closed with `ENHANCE_YOUR_CALM` (the rapid-reset attack,
    /// CVE-2023-44487; enforced by the `h2` crate).
    pub h2_max_pending_accept_reset_streams: usize,
    /// HTTP/2 streams the server may reset because of the client's protocol errors before
    /// the connection is closed (a client can make the server do the resetting; enforced by
    /// the `h2` crate).
    pub h2_max_local_error_reset_streams: usize,
    /// Requests a client may cancel (an HTTP/2 `RST_STREAM` after the server started
    /// handling the stream, or a disconnect) on one connection before the connection is
    /// closed: the rapid-reset attack on streams the server already accepted.
    pub max_cancelled_requests: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout_ms: 10_000,
            body_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            send_timeout_ms: 30_000,
            max_connections: 1_024,
            max_connections_per_ip: 64,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            max_requests_per_connection: 1_000,
            h2_max_concurrent_streams: 100,
            h2_max_pending_accept_reset_streams: 20,
            h2_max_local_error_reset_streams: 1_024,
            max_cancelled_requests: 100,
        }
    }
}

/// A limit that would switch a bound off or cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {reason}")]
pub struct InvalidLimit {
    /// The field at fault.
    pub field: &'static str,
    /// Why.
    pub reason: &'static str,
}

impl Limits {
    /// Checks that every bound is on and within what the HTTP stack accepts.
    pub fn validate(&self) -> Result<(), InvalidLimit> {
        let invalid = |field, reason| Err(InvalidLimit { field, reason });
        for (field, ms) in [
            ("header_timeout_ms", self.header_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("send_timeout_ms", self.send_timeout_ms),
        ] {
            if ms == 0 {
                return invalid(field, "must be at least 1 (a timeout of 0 would never expire)");
            }
        }
        if self.max_connections == 0 {
            return invalid("max_connections", "must be at least 1");
        }
        if self.max_connections_per_ip == 0 {
            return invalid("max_connections_per_ip", "must be at least 1");
        }
        // hyper refuses an HTTP/1.1 read buffer under 8 KiB.
        if self.max_header_bytes < 8 * 1024 {
            return invalid("max_header_bytes", "must be at least 8192");
        }
        if self.max_headers == 0 {
            return invalid("max_headers", "must be at least 1");
        }
        if self.max_requests_per_connection == 0 {
            return invalid("max_requests_per_connection", "must be at least 1");
        }
        if self.h2_max_concurrent_streams == 0 {
            return invalid("h2_max_concurrent_streams", "must be at least 1");
        }
        Ok(())
    }

    pub(crate) fn header_timeout(&self) -> Duration {
        Duration::from_millis(self.header_timeout_ms)
    }

    pub(crate) fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    pub(crate) fn send_timeout(&self) -> Duration {
        Duration::from_millis(self.send_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_is_refused() {
        Limits::default().validate().unwrap();
        let zero = Limits { idle_timeout_ms: 0, ..Limits::default() };
        assert_eq!(zero.validate().unwrap_err().field, "idle_timeout_ms");
        let small = Limits { max_header_bytes: 100, ..Limits::default() };
        assert_eq!(small.validate().unwrap_err().field, "max_header_bytes");
        let per_ip = Limits { max_connections_per_ip: 0, ..Limits::default() };
        assert_eq!(per_ip.validate().unwrap_err().field, "max_connections_per_ip");
        let headers = Limits { max_headers: 0, ..Limits::default() };
        assert_eq!(headers.validate().unwrap_err().field, "max_headers");
    }
}
