//! Misses stream to the viewer while they fill the cache.
//!
//! A cacheable response is never read whole before its first byte goes out: [`Fill`] passes
//! each frame of the origin's body on to the viewer as it arrives and keeps a copy; at the
//! end of the body the copy becomes the cache entry and is handed to the requests waiting on
//! the lock. The origin is read only as fast as the viewer reads (hyper polls the body when
//! the connection can take more), so a slow viewer holds one frame, not the response.
//!
//! The copies are bounded: each by `max_object_bytes`, all of them together by the edge's
//! [`Budget`] (`fill_bytes`). A response that outgrows either stops being copied and goes on
//! streaming uncached; the waiting requests then fetch on their own.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode};
use http_body::{Body, Frame, SizeHint};

use super::Store;
use super::entry::{CacheKey, Entry, XCache};
use super::lock::{Leader, Outcome};
use crate::body::{BoxError, OriginBody};

/// Bytes that responses being copied into the cache may hold at once, edge-wide.
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicU64,
    max: u64,
}

impl Budget {
    pub(crate) fn new(max: u64) -> Self {
        Self { used: AtomicU64::new(0), max }
    }

    /// Bytes held now.
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| used.checked_add(n).filter(|t| *t <= self.max))
            .is_ok()
    }

    fn give_back(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Bytes taken from a [`Budget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Reservation {
    pub(crate) fn new(budget: Arc<Budget>) -> Self {
        Self { budget, bytes: 0 }
    }

    /// Takes `n` more bytes, or nothing when the budget cannot spare them.
    pub(crate) fn grow(&mut self, n: usize) -> bool {
        let n = n as u64;
        let taken = self.budget.try_take(n);
        if taken {
            self.bytes += n;
        }
        taken
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// What becomes the entry once the body is complete.
pub(crate) struct Pending {
    pub(crate) store: Arc<Store>,
    pub(crate) key: CacheKey,
    pub(crate) leader: Leader,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) age: Duration,
    pub(crate) ttl: Duration,
    pub(crate) now: SystemTime,
}

/// The origin's body on its way to the viewer, copied into the cache as it passes.
pub(crate) struct Fill {
    rest: OriginBody,
    copy: BytesMut,
    reservation: Reservation,
    /// `None` once the entry is stored or the copy abandoned.
    pending: Option<Pending>,
}

impl Fill {
    pub(crate) fn new(rest: OriginBody, pending: Pending) -> Self {
        let reservation = Reservation::new(pending.store.budget().clone());
        Self { rest, copy: BytesMut::new(), reservation, pending: Some(pending) }
    }

    fn keep(&mut self, data: &Bytes) {
        let Some(pending) = &self.pending else { return };
        let fits = self.copy.len() + data.len() <= pending.store.max_object_bytes;
        if fits && self.reservation.grow(data.len()) {
            self.copy.extend_from_slice(data);
        } else {
            // Too large to cache, or the edge is copying as much as it may: stream on
            // uncached; the lock's followers fetch for themselves.
            tracing::debug!(
                size = self.copy.len() + data.len(),
                fits,
                "edge: response not cached (object or fill budget exceeded)"
            );
            self.abandon();
        }
    }

    fn abandon(&mut self) {
        self.pending = None;
        self.copy = BytesMut::new();
    }

    fn complete(&mut self) {
        let Some(p) = self.pending.take() else { return };
        let copy = std::mem::take(&mut self.copy);
        // Copied out when the buffer grew well past the body: entries live long.
        let body =
            if copy.capacity() > copy.len() + copy.len() / 4 { Bytes::copy_from_slice(&copy) } else { copy.freeze() };
        let stale_if_error = p.store.stale_if_error;
        let entry = Arc::new(Entry::new(p.status, p.headers, body, p.age, p.ttl, p.now, stale_if_error));
        if entry.worth_storing() {
            p.store.insert(p.key, entry.clone());
        }
        p.leader.publish(Outcome::Entry(entry, XCache::Miss));
    }
}

impl Body for Fill {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.rest).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.keep(data);
                }
                // hyper stops polling once a body says it has ended, so the end is seen here.
                if this.rest.is_end_stream() {
                    this.complete();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.complete();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                this.abandon();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.rest.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = Arc::new(Budget::new(100));
        let mut a = Reservation::new(budget.clone());
        let mut b = Reservation::new(budget.clone());
        assert!(a.grow(60));
        assert!(!b.grow(50), "only 40 left");
        assert!(b.grow(40));
        assert_eq!(budget.used(), 100);
        drop(a);
        assert_eq!(budget.used(), 40);
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
