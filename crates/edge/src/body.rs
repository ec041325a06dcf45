//! Bodies that count their bytes into a distribution's counters as they are sent.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::counters::DistState;

/// A response body for viewers: bytes from the cache, or the origin's body streamed through
/// (after a prefix already read while deciding whether to cache it).
pub(crate) struct EdgeBody {
    kind: Kind,
    counter: Option<Arc<DistState>>,
}

enum Kind {
    Full(Option<Bytes>),
    Stream { prefix: Option<Bytes>, rest: Incoming },
}

impl EdgeBody {
    pub(crate) fn full(bytes: Bytes) -> Self {
        Self { kind: Kind::Full((!bytes.is_empty()).then_some(bytes)), counter: None }
    }

    pub(crate) fn empty() -> Self {
        Self { kind: Kind::Full(None), counter: None }
    }

    pub(crate) fn stream(prefix: Option<Bytes>, rest: Incoming) -> Self {
        Self { kind: Kind::Stream { prefix: prefix.filter(|b| !b.is_empty()), rest }, counter: None }
    }

    /// Counts what is sent from now on into `state`'s `bytes_downloaded`.
    pub(crate) fn counted(mut self, state: Arc<DistState>) -> Self {
        self.counter = Some(state);
        self
    }
}

impl Body for EdgeBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Stream { prefix, rest } => match prefix.take() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => Pin::new(rest).poll_frame(cx),
            },
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
            Kind::Stream { prefix, rest } => prefix.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Stream { prefix, rest } => {
                let extra = prefix.as_ref().map_or(0, |b| b.len() as u64);
                let inner = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + extra);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + extra);
                }
                hint
            }
        }
    }
}

/// A request body for the origin: the viewer's upload streamed through, counted into
/// `bytes_uploaded`, or nothing.
pub(crate) struct UploadBody {
    inner: Option<Incoming>,
    counter: Option<Arc<DistState>>,
}

impl UploadBody {
    pub(crate) fn empty() -> Self {
        Self { inner: None, counter: None }
    }

    pub(crate) fn viewer(body: Incoming, state: Arc<DistState>) -> Self {
        Self { inner: Some(body), counter: Some(state) }
    }
}

impl Body for UploadBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else { return Poll::Ready(None) };
        let polled = Pin::new(inner).poll_frame(cx);
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
