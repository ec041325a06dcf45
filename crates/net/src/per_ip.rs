//! Open connections per client address, so that one client cannot take every slot of a
//! listener (`max_connections_per_ip`, as nginx's `limit_conn` keyed by the client address).
//!
//! The map holds one entry per address that has a connection open, so it never holds more
//! than `max_connections` entries; an entry goes when its last connection closes. It is
//! touched twice per connection (open, close), never per request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};

/// The connections each client address has open on one listener.
#[derive(Debug)]
pub(crate) struct PerIp {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a client; the count goes down when it is dropped.
#[derive(Debug)]
pub(crate) struct IpSlot {
    counts: Arc<PerIp>,
    key: IpAddr,
}

/// The address a client is counted under: an IPv4 address (IPv4-mapped IPv6 addresses
/// included) as it is, an IPv6 address by its /64 prefix, the smallest network an ISP or a
/// cloud hands out (RFC 6177): one client has a whole /64 to pick source addresses from.
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

impl PerIp {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, open: Mutex::new(HashMap::new()) })
    }

    /// Counts a new connection from `ip`, or `None` when that client already has the most it
    /// may have open.
    pub(crate) fn try_open(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let key = client_key(ip);
        // A panic never happens with the lock held (only integer and map operations), so a
        // poisoned lock still holds consistent counts.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(IpSlot { counts: self.clone(), key })
    }

    #[cfg(test)]
    fn entries(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_share_and_entries_go_with_the_last_connection() {
        let counts = PerIp::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = counts.try_open(a).unwrap();
        let second = counts.try_open(a).unwrap();
        assert!(counts.try_open(a).is_none(), "a third from the same address is refused");
        let other = counts.try_open(b).unwrap();
        drop(first);
        let again = counts.try_open(a).expect("a closed connection frees its place");
        drop((second, again, other));
        assert_eq!(counts.entries(), 0, "no entry outlives its connections");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_prefix_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
        let counts = PerIp::new(1);
        let _held = counts.try_open("2001:db8::1".parse().unwrap()).unwrap();
        assert!(counts.try_open("2001:db8::2".parse().unwrap()).is_none());
    }
}
