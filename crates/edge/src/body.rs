//! Bodies: what viewers are sent (counted into a distribution's counters as it goes), what
//! the origin is sent, and the origin's body bounded in time.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::cache::Fill;
use crate::counters::DistState;

/// Errors of bodies the edge passes on.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body for viewers: bytes from the cache, the origin's body streamed through,
/// or streamed while it fills the cache.
pub(crate) struct EdgeBody {
    kind: Kind,
    counter: Option<Arc<DistState>>,
}

enum Kind {
    Full(Option<Bytes>),
    Stream(OriginBody),
    Fill(Box<Fill>),
}

impl EdgeBody {
    pub(crate) fn full(bytes: Bytes) -> Self {
        Self { kind: Kind::Full((!bytes.is_empty()).then_some(bytes)), counter: None }
    }

    pub(crate) fn empty() -> Self {
        Self { kind: Kind::Full(None), counter: None }
    }

    pub(crate) fn stream(rest: OriginBody) -> Self {
        Self { kind: Kind::Stream(rest), counter: None }
    }

    pub(crate) fn fill(fill: Fill) -> Self {
        Self { kind: Kind::Fill(Box::new(fill)), counter: None }
    }

    /// Counts what is sent from now on into `state`'s `bytes_downloaded`.
    pub(crate) fn counted(mut self, state: Arc<DistState>) -> Self {
        self.counter = Some(state);
        self
    }
}

impl Body for EdgeBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream(rest) => Pin::new(rest).poll_frame(cx),
            Kind::Fill(fill) => Pin::new(fill.as_mut()).poll_frame(cx),
        };
        if let (Poll::Ready(Some(Ok(frame))), Some(counter)) = (&polled, &this.counter)
            && let Some(data) = frame.data_ref()
        {
            counter.downloaded(data.len());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(bytes) => bytes.is_none(),
            Kind::Stream(rest) => rest.is_end_stream(),
            Kind::Fill(fill) => fill.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream(rest) => rest.size_hint(),
            Kind::Fill(fill) => fill.size_hint(),
        }
    }
}

/// The origin did not send the next part of a body within the read timeout.
#[derive(Debug, thiserror::Error)]
#[error("origin sent nothing for {0:?} in the middle of a response body")]
pub(crate) struct OriginStalled(Duration);

/// An origin's response body with a bound on the wait between two frames: CloudFront's
/// origin response timeout is also "how long CloudFront waits after receiving the last
/// packet of a response". An origin that stalls mid-body would otherwise hold the viewer's
/// request and an origin socket forever.
///
/// The clock starts when a poll finds no frame ready (hyper's `Incoming` returns `Pending`),
/// and is armed only then: a small response whose body arrived with its head (most misses)
/// is passed on without touching the timer wheel, and a frame that arrives in time costs
/// no clock read. The bound is the same: no wait for the origin lasts longer than
/// `timeout`.
pub(crate) struct OriginBody {
    inner: Incoming,
    timeout: Duration,
    /// The running wait, if any; `None` until the body first waits.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A frame arrived since `deadline` was set: the next wait starts a new one.
    progressed: bool,
}

impl OriginBody {
    pub(crate) fn new(inner: Incoming, timeout: Duration) -> Self {
        Self { inner, timeout, deadline: None, progressed: false }
    }
}

impl Body for OriginBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.progressed = true;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let timeout = this.timeout;
                let deadline = match &mut this.deadline {
                    Some(deadline) if !this.progressed => deadline,
                    Some(deadline) => {
                        deadline.as_mut().reset(tokio::time::Instant::now() + timeout);
                        deadline
                    }
                    None => this.deadline.insert(Box::pin(tokio::time::sleep(timeout))),
                };
                this.progressed = false;
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(OriginStalled(timeout))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body for the origin: the viewer's upload streamed through, counted into
/// `bytes_uploaded`, or nothing.
pub(crate) struct UploadBody {
    /// Boxed: the listener's body holds its deadline timer (not `Unpin`), and hyper's client
    /// sends only `Unpin` bodies.
    inner: Option<Pin<Box<carapace_net::Body>>>,
    counter: Option<Arc<DistState>>,
}

impl UploadBody {
    pub(crate) fn empty() -> Self {
        Self { inner: None, counter: None }
    }

    pub(crate) fn viewer(body: carapace_net::Body, state: Arc<DistState>) -> Self {
        // A request without a body (most GETs) needs no box: nothing is sent either way.
        let inner = (!body.is_end_stream()).then(|| Box::pin(body));
        Self { inner, counter: Some(state) }
    }
}

impl Body for UploadBody {
    type Data = Bytes;
    /// The listener's body error: the viewer's connection failed, or the body did not arrive
    /// within `body_timeout_ms` (`carapace_net::BodyTimeout`).
    type Error = carapace_net::BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else { return Poll::Ready(None) };
        let polled = inner.as_mut().poll_frame(cx);
        if let (Poll::Ready(Some(Ok(frame))), Some(counter)) = (&polled, &this.counter)
            && let Some(data) = frame.data_ref()
        {
            counter.uploaded(data.len());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}
