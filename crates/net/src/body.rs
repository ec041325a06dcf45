//! Request and response bodies as the listener hands them over.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::activity::{Activity, RequestGuard};

/// Any error a body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body did not arrive within the listener's `body_timeout_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request body not received within the body timeout")]
pub struct BodyTimeout;

impl BodyTimeout {
    /// Whether `error` (as a body reader such as `http_body_util::Limited` reports it) is a
    /// body timeout.
    pub fn is(error: &(dyn std::error::Error + 'static)) -> bool {
        let mut source = Some(error);
        while let Some(e) = source {
            if e.is::<Self>() {
                return true;
            }
            source = e.source();
        }
        false
    }
}

pin_project_lite::pin_project! {
    /// A request body that must end before a deadline. When it does not, the next frame is
    /// a [`BodyTimeout`] error and the connection is closed after the answer (what is left
    /// of the body will never be read).
    pub struct Body {
        #[pin]
        inner: Incoming,
        #[pin]
        deadline: Sleep,
        activity: Arc<Activity>,
        timed_out: bool,
    }
}

impl Body {
    pub(crate) fn new(inner: Incoming, deadline: Instant, activity: Arc<Activity>) -> Self {
        Self { inner, deadline: tokio::time::sleep_until(deadline), activity, timed_out: false }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body").field("timed_out", &self.timed_out).finish_non_exhaustive()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        if *this.timed_out {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        ready!(this.deadline.poll(cx));
        *this.timed_out = true;
        this.activity.request_close();
        Poll::Ready(Some(Err(Box::new(BodyTimeout))))
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A response body that tells the connection when it is gone (the request is then no
    /// longer in flight).
    pub(crate) struct Tracked<B> {
        #[pin]
        inner: B,
        guard: RequestGuard,
    }
}

impl<B> Tracked<B> {
    pub(crate) fn new(inner: B, guard: RequestGuard) -> Self {
        Self { inner, guard }
    }
}

impl<B> http_body::Body for Tracked<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.project().inner.poll_frame(cx).map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
