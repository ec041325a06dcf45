//! The cache lock: concurrent misses for one key make one origin fetch.
//!
//! The first request for a key becomes the [`Leader`] and fetches; the others are followers
//! and wait, at most the lock timeout, for what the leader publishes (pingora's cache lock,
//! `pingora-cache/src/lock.rs`, has the same shape). A leader that goes away without
//! publishing (its viewer left mid-fetch, the body was too large to share) publishes
//! [`Outcome::NotShared`] as it drops, so no follower waits for nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use tokio::sync::watch;

use super::entry::{CacheKey, Entry, XCache};

/// What a leader's fetch produced, shared with every follower.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// Serve this entry with this `X-Cache` value (stored, or a stale one on origin failure).
    Entry(Arc<Entry>, XCache),
    /// The origin failed and nothing stale could stand in: this status.
    Failed(StatusCode),
    /// Nothing to share (not cacheable, too large, or abandoned): each follower fetches on
    /// its own.
    NotShared,
}

type Slot = watch::Receiver<Option<Outcome>>;

/// The fetches in flight, by key.
#[derive(Default)]
pub(crate) struct Locks {
    inflight: Arc<Mutex<HashMap<CacheKey, Slot>>>,
}

/// Either role a request takes for a key.
pub(crate) enum Lock {
    /// Fetch, then [`Leader::publish`].
    Leader(Leader),
    /// Wait for the leader with [`Follower::wait`].
    Follower(Follower),
}

impl Locks {
    /// Joins the fetch for `key`, or starts it.
    pub(crate) fn lock(&self, key: &CacheKey) -> Lock {
        let mut map = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = map.get(key) {
            return Lock::Follower(Follower { slot: slot.clone() });
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.clone(), rx);
        Lock::Leader(Leader { inflight: self.inflight.clone(), key: key.clone(), tx: Some(tx) })
    }

    /// Fetches in flight now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The one request that fetches for a key.
pub(crate) struct Leader {
    inflight: Arc<Mutex<HashMap<CacheKey, Slot>>>,
    key: CacheKey,
    tx: Option<watch::Sender<Option<Outcome>>>,
}

impl Leader {
    /// Hands `outcome` to every follower and releases the key: the next request for it
    /// looks in the cache again.
    pub(crate) fn publish(mut self, outcome: Outcome) {
        self.release(outcome);
    }

    fn release(&mut self, outcome: Outcome) {
        let Some(tx) = self.tx.take() else { return };
        self.inflight.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
        tx.send_replace(Some(outcome));
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.release(Outcome::NotShared);
    }
}

/// A request waiting for a leader.
pub(crate) struct Follower {
    slot: Slot,
}

impl Follower {
    /// The leader's outcome, or `NotShared` when it does not come within `timeout`.
    pub(crate) async fn wait(mut self, timeout: Duration) -> Outcome {
        match tokio::time::timeout(timeout, self.slot.wait_for(Option::is_some)).await {
            Ok(Ok(outcome)) => outcome.clone().unwrap_or(Outcome::NotShared),
            Ok(Err(_)) | Err(_) => Outcome::NotShared,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey { dist: Arc::from("d"), rest: b"0\nG\n/x\n".to_vec().into_boxed_slice() }
    }

    #[tokio::test]
    async fn a_leader_that_goes_away_releases_its_followers() {
        let locks = Locks::default();
        let Lock::Leader(leader) = locks.lock(&key()) else { panic!("first is the leader") };
        let Lock::Follower(follower) = locks.lock(&key()) else { panic!("second follows") };
        drop(leader); // e.g. the leader's viewer went away before the origin answered
        assert_eq!(locks.len(), 0, "the key is free again");
        assert!(matches!(follower.wait(Duration::from_secs(5)).await, Outcome::NotShared));
    }

    #[tokio::test]
    async fn followers_get_what_the_leader_publishes_or_give_up_at_the_timeout() {
        let locks = Locks::default();
        let Lock::Leader(leader) = locks.lock(&key()) else { panic!("leader") };
        let Lock::Follower(late) = locks.lock(&key()) else { panic!("follower") };
        assert!(matches!(late.wait(Duration::from_millis(20)).await, Outcome::NotShared), "timed out");
        let Lock::Follower(follower) = locks.lock(&key()) else { panic!("follower") };
        leader.publish(Outcome::Failed(StatusCode::BAD_GATEWAY));
        assert!(matches!(follower.wait(Duration::from_secs(5)).await, Outcome::Failed(StatusCode::BAD_GATEWAY)));
        assert!(matches!(locks.lock(&key()), Lock::Leader(_)), "released after publishing");
    }
}
