//! What one connection is doing, so its task can tell when it must be closed.
//!
//! hyper bounds none of the phases a hostile client can stretch: before the first request
//! (protocol detection waits for bytes forever), between keep-alive requests, while a
//! response waits for a client that does not read. The IO wrapper and the request guards
//! here record the moments that matter, and [`Activity::verdict`] turns them into a
//! deadline or a reason to close.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::Limits;

/// "No moment recorded" in the millisecond fields (moments are stored plus one).
const NONE: u64 = 0;

/// Shared between a connection's task, its IO and its requests.
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    /// Requests whose answer has not been fully handed to hyper yet.
    in_flight: AtomicU32,
    /// Requests started on this connection.
    requests: AtomicU64,
    /// Requests dropped before their answer was complete.
    cancelled: AtomicU32,
    /// The connection speaks HTTP/2 (bytes between requests are control frames, not the
    /// start of a request).
    h2: AtomicBool,
    /// When the last request finished (ms since start, plus one).
    idle_since: AtomicU64,
    /// When bytes of a not yet handed-over request head were first seen (plus one).
    head_since: AtomicU64,
    /// When a write first found the socket's send buffer full (plus one).
    write_blocked_since: AtomicU64,
    /// Something asked for the connection to end after its current answers.
    close_requested: AtomicBool,
    /// Wakes the connection task to look again.
    pub(crate) wake: Notify,
}

/// What the connection task should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing yet; look again at this instant (or when woken).
    Wait(Instant),
    /// Finish what is in flight and close (HTTP/1.1 keep-alive off, HTTP/2 GOAWAY).
    Drain(&'static str),
    /// Drop the connection now.
    Close(&'static str),
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            cancelled: AtomicU32::new(0),
            h2: AtomicBool::new(false),
            idle_since: AtomicU64::new(NONE),
            // Accepting is the start of the first request: the TLS handshake and the first
            // head must both fit in the header timeout.
            head_since: AtomicU64::new(1),
            write_blocked_since: AtomicU64::new(NONE),
            close_requested: AtomicBool::new(false),
            wake: Notify::new(),
        })
    }

    fn now_mark(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
    }

    fn at(&self, mark: u64) -> Instant {
        self.start + Duration::from_millis(mark.saturating_sub(1))
    }

    /// Bytes arrived from the client.
    fn on_read(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && !self.h2.load(Ordering::Relaxed)
            && self.head_since.load(Ordering::Relaxed) == NONE
        {
            // The task looks again within the header timeout anyway (see `verdict`), so it
            // need not be woken: keep-alive requests cost no extra wake-up.
            let _ = self.head_since.compare_exchange(NONE, self.now_mark(), Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// A write found the socket full (`Pending`), or moved bytes (`Ready(Ok(n > 0))`).
    fn on_write<T>(&self, result: &Poll<io::Result<T>>, moved: impl FnOnce(&T) -> bool) {
        match result {
            Poll::Pending => {
                if self.write_blocked_since.load(Ordering::Relaxed) == NONE {
                    self.write_blocked_since.store(self.now_mark(), Ordering::Relaxed);
                }
            }
            Poll::Ready(Ok(value)) if moved(value) => {
                if self.write_blocked_since.load(Ordering::Relaxed) != NONE {
                    self.write_blocked_since.store(NONE, Ordering::Relaxed);
                }
            }
            Poll::Ready(_) => {}
        }
    }

    /// A request's head was handed to the handler.
    pub(crate) fn begin(self: &Arc<Self>, h2: bool, limits: &Limits) -> RequestGuard {
        if h2 {
            self.h2.store(true, Ordering::Relaxed);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(NONE, Ordering::Release);
        let n = self.requests.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= limits.max_requests_per_connection {
            self.request_close();
        }
        RequestGuard { activity: self.clone(), done: false }
    }

    /// Asks the connection task to drain and close the connection.
    pub(crate) fn request_close(&self) {
        self.close_requested.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Decides, at `now`, whether the connection lives on.
    ///
    /// A `Wait` is never further than the shortest timeout away: a deadline that starts
    /// between two looks (bytes of a new head, a write finding the socket full) ends at
    /// least that far after it, so the task sees it in time without being woken for it.
    pub(crate) fn verdict(&self, limits: &Limits, now: Instant) -> Verdict {
        let blocked = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked != NONE {
            let deadline = self.at(blocked) + limits.send_timeout();
            if now >= deadline {
                return Verdict::Close("client did not read the response within send_timeout_ms");
            }
        }
        if self.close_requested.load(Ordering::Acquire) {
            return Verdict::Drain("closing after this connection's last answer");
        }
        if self.cancelled.load(Ordering::Relaxed) > limits.max_cancelled_requests {
            return Verdict::Drain("too many cancelled requests (max_cancelled_requests)");
        }
        let recheck = now + limits.header_timeout().min(limits.idle_timeout()).min(limits.send_timeout());
        let head = self.head_since.load(Ordering::Acquire);
        let deadline = if head != NONE {
            let deadline = self.at(head) + limits.header_timeout();
            if now >= deadline {
                return Verdict::Close("request head not received within header_timeout_ms");
            }
            deadline
        } else if self.in_flight.load(Ordering::Acquire) == 0 {
            let deadline = self.at(self.idle_since.load(Ordering::Acquire)) + limits.idle_timeout();
            if now >= deadline {
                return Verdict::Drain("idle for idle_timeout_ms");
            }
            deadline
        } else {
            recheck
        };
        let deadline = match blocked {
            NONE => deadline,
            mark => deadline.min(self.at(mark) + limits.send_timeout()),
        };
        Verdict::Wait(deadline.min(recheck))
    }
}

/// Held by a request from its head to the end of its answer's body.
#[derive(Debug)]
pub(crate) struct RequestGuard {
    activity: Arc<Activity>,
    done: bool,
}

impl RequestGuard {
    /// The answer was handed over in full (its body ended or was never polled to the end
    /// because hyper did not need to).
    pub(crate) fn complete(&mut self) {
        self.done = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let a = &self.activity;
        if !self.done {
            a.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        a.idle_since.store(a.now_mark(), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// The connection's IO, telling [`Activity`] when bytes move.
    pub(crate) struct TrackedIo<T> {
        #[pin]
        inner: T,
        activity: Arc<Activity>,
    }
}

impl<T> TrackedIo<T> {
    pub(crate) fn new(inner: T, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<T: AsyncRead> AsyncRead for TrackedIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.on_read();
        }
        result
    }
}

impl<T: AsyncWrite> AsyncWrite for TrackedIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write(cx, buf);
        this.activity.on_write(&result, |n| *n > 0);
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write_vectored(cx, bufs);
        this.activity.on_write(&result, |n| *n > 0);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        // A flush that completes says nothing about the client reading: only bytes moved
        // by a write clear the blocked mark.
        let result = this.inner.poll_flush(cx);
        this.activity.on_write(&result, |()| false);
        result
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout_ms: 1_000,
            idle_timeout_ms: 5_000,
            send_timeout_ms: 3_000,
            max_requests_per_connection: 3,
            max_cancelled_requests: 1,
            ..Limits::default()
        }
    }

    #[test]
    fn phases_give_deadlines_and_reasons() {
        let l = limits();
        let a = Activity::new();
        let t0 = a.start;
        // Before the first request: the header timeout runs from accept.
        assert_eq!(a.verdict(&l, t0), Verdict::Wait(t0 + Duration::from_secs(1)));
        assert!(matches!(a.verdict(&l, t0 + Duration::from_millis(999)), Verdict::Wait(_)));
        assert!(matches!(a.verdict(&l, t0 + Duration::from_secs(1)), Verdict::Close(_)));
        // A request in flight has no deadline of its own.
        let mut guard = a.begin(false, &l);
        assert!(matches!(a.verdict(&l, t0 + Duration::from_secs(30)), Verdict::Wait(_)));
        guard.complete();
        drop(guard);
        // Idle: the idle timeout runs from the end of the last request.
        let idle_from = a.at(a.idle_since.load(Ordering::Relaxed));
        assert_eq!(a.verdict(&l, idle_from), Verdict::Wait(idle_from + Duration::from_secs(1)));
        assert!(matches!(a.verdict(&l, idle_from + Duration::from_secs(5)), Verdict::Drain(_)));
        // Bytes of a new head start the header timeout again (HTTP/1.1 only).
        a.on_read();
        assert!(matches!(a.verdict(&l, idle_from + Duration::from_secs(5)), Verdict::Close(_)));
    }

    #[test]
    fn cancelled_and_counted_requests_drain() {
        let l = limits();
        let a = Activity::new();
        drop(a.begin(true, &l));
        assert!(matches!(a.verdict(&l, a.start), Verdict::Wait(_)), "one cancel is allowed");
        drop(a.begin(true, &l));
        assert_eq!(a.verdict(&l, a.start), Verdict::Drain("too many cancelled requests (max_cancelled_requests)"));
        let b = Activity::new();
        for _ in 0..3 {
            b.begin(false, &l).complete();
        }
        assert!(matches!(b.verdict(&l, b.start), Verdict::Drain(_)), "max_requests_per_connection");
    }

    #[test]
    fn a_blocked_writer_is_dropped() {
        let l = limits();
        let a = Activity::new();
        let _guard = a.begin(false, &l);
        a.on_write(&Poll::<io::Result<usize>>::Pending, |n| *n > 0);
        let blocked_at = a.at(a.write_blocked_since.load(Ordering::Relaxed));
        assert!(matches!(a.verdict(&l, blocked_at + Duration::from_secs(3)), Verdict::Close(_)));
        a.on_write(&Poll::Ready(Ok(())), |()| false);
        assert!(
            matches!(a.verdict(&l, blocked_at + Duration::from_secs(3)), Verdict::Close(_)),
            "a flush is no progress"
        );
        a.on_write(&Poll::Ready(Ok(10usize)), |n| *n > 0);
        assert!(matches!(a.verdict(&l, blocked_at + Duration::from_secs(3)), Verdict::Wait(_)));
    }
}
