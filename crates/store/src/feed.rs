//! The change feed: every committed write, announced after it is durable.
//!
//! A node keeps things derived from rows — the row cache, the edge's snapshot of
//! distributions, a key cache — and must learn at once when a row changes, whoever wrote
//! it. Each store owns one [`Announcer`]; writes committed through the store announce their
//! keys on it right after the commit, and the PostgreSQL store also relays what other nodes
//! announce through `LISTEN`/`NOTIFY`.
//!
//! Delivery is at least once and may be late, but never silently lossy: a subscriber that
//! falls behind the bounded buffer, or a node whose `LISTEN` connection dropped, receives
//! [`FeedEvent::Resync`] and must re-read what it keeps. A change names the row and the
//! version it reached, not its body: subscribers read the row themselves (so a burst of
//! writes to one row costs one read, and bodies never cross the notification channel).

use tokio::sync::broadcast;

use crate::Key;

/// Changes buffered per node before a slow subscriber is told to resync.
const BUFFER: usize = 4_096;

/// One committed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The row written.
    pub key: Key,
    /// Its version after the write; `None` when it was deleted.
    pub version: Option<u64>,
}

/// What a [`Subscription`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedEvent {
    /// A row of a subscribed kind was written.
    Changed(Change),
    /// Announcements may have been missed (the subscriber lagged, or the node lost its
    /// connection to the other nodes' announcements): re-read everything derived from rows.
    Resync,
}

/// What travels on a node's broadcast channel.
#[derive(Debug, Clone)]
pub(crate) enum Signal {
    Change(Change),
    Resync,
}

/// The sending side, owned by a store.
#[derive(Debug, Clone)]
pub(crate) struct Announcer {
    tx: broadcast::Sender<Signal>,
}

impl Default for Announcer {
    fn default() -> Self {
        Self { tx: broadcast::channel(BUFFER).0 }
    }
}

impl Announcer {
    /// Announces committed changes (nobody listening is fine).
    pub(crate) fn announce(&self, changes: impl IntoIterator<Item = Change>) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        for change in changes {
            let _ = self.tx.send(Signal::Change(change));
        }
    }

    /// Tells every subscriber to re-read.
    pub(crate) fn resync(&self) {
        let _ = self.tx.send(Signal::Resync);
    }

    /// A new subscription to `kinds` (all when empty).
    pub(crate) fn subscribe(&self, kinds: &[&str]) -> Subscription {
        Subscription { rx: self.tx.subscribe(), kinds: kinds.iter().map(|k| (*k).to_owned()).collect() }
    }
}

/// The receiving side of the change feed, from [`crate::Store::subscribe`].
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Signal>,
    kinds: Vec<String>,
}

impl Subscription {
    /// The next event, or `None` once the store is gone.
    pub async fn next(&mut self) -> Option<FeedEvent> {
        loop {
            match self.rx.recv().await {
                Ok(Signal::Change(change)) if self.wants(&change.key.kind) => return Some(FeedEvent::Changed(change)),
                Ok(Signal::Change(_)) => {}
                Ok(Signal::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => return Some(FeedEvent::Resync),
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is ready now (for draining a burst).
    pub fn try_next(&mut self) -> Option<FeedEvent> {
        loop {
            match self.rx.try_recv() {
                Ok(Signal::Change(change)) if self.wants(&change.key.kind) => return Some(FeedEvent::Changed(change)),
                Ok(Signal::Change(_)) => {}
                Ok(Signal::Resync) | Err(broadcast::error::TryRecvError::Lagged(_)) => return Some(FeedEvent::Resync),
                Err(_) => return None,
            }
        }
    }

    fn wants(&self, kind: &str) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind)
    }
}

/// The rows a batch writes, taken before it runs, turned into [`Change`]s once it commits.
pub(crate) struct Pending(Vec<(Key, bool)>);

impl Pending {
    /// The rows `writes` touch (`true` for a put, `false` for a delete); jobs are not rows.
    pub(crate) fn of(writes: &[crate::Write]) -> Self {
        Self(
            writes
                .iter()
                .filter_map(|w| match w {
                    crate::Write::Put { row, .. } => Some((row.key.clone(), true)),
                    crate::Write::Delete { key, .. } => Some((key.clone(), false)),
                    crate::Write::Enqueue(_) | crate::Write::Index { .. } => None,
                })
                .collect(),
        )
    }

    /// The keys, for invalidating cached copies.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &Key> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The changes, given the versions the committed batch returned (one per put, in order).
    pub(crate) fn committed(self, versions: &[u64]) -> Vec<Change> {
        let mut versions = versions.iter();
        self.0
            .into_iter()
            .map(|(key, put)| Change { key, version: if put { versions.next().copied() } else { None } })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: &str, id: &str) -> Change {
        Change { key: Key::new(kind, "s", id), version: Some(1) }
    }

    #[tokio::test]
    async fn filters_by_kind_and_reports_lag_as_resync() {
        let a = Announcer::default();
        let mut only_x = a.subscribe(&["x"]);
        let mut all = a.subscribe(&[]);
        a.announce([change("y", "1"), change("x", "2")]);
        assert_eq!(only_x.next().await, Some(FeedEvent::Changed(change("x", "2"))));
        assert_eq!(all.next().await, Some(FeedEvent::Changed(change("y", "1"))));
        assert_eq!(all.next().await, Some(FeedEvent::Changed(change("x", "2"))));
        assert_eq!(all.try_next(), None);
        a.announce((0..BUFFER + 10).map(|i| change("x", &i.to_string())));
        assert_eq!(only_x.next().await, Some(FeedEvent::Resync), "a lagging subscriber must be told to resync");
        a.resync();
        // What is still buffered comes first, then the explicit resync.
        let mut saw_resync = false;
        while let Some(event) = only_x.try_next() {
            saw_resync |= event == FeedEvent::Resync;
        }
        assert!(saw_resync);
        drop(a);
        let mut events = 0;
        while all.next().await.is_some() {
            events += 1;
            assert!(events <= BUFFER + 2, "a subscription must end once its store is gone");
        }
    }
}
