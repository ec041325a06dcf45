//! A panic while handling one request is that request's failure, not the connection's and
//! not a page of backtrace in the log.
//!
//! [`catch`] runs a future and turns a panic inside it into a [`Panic`] value the caller
//! answers with (a 500, an AWS `InternalFailure`) and logs once, with its request id.
//! [`install_hook`] replaces the process's panic hook so that such a caught panic prints
//! nothing by itself (its message and location travel in the [`Panic`]); a panic anywhere
//! else is logged as one `ERROR` line and then handed to the hook it replaced.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

thread_local! {
    /// Depth of [`Catch`] polls on this thread (they nest: the listener catches around a
    /// handler that catches itself).
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// What the hook saw of the last caught panic on this thread.
    static LAST: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

/// A panic caught while handling a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panic {
    /// The panic message.
    pub message: String,
    /// `file:line:column`, when the hook was installed.
    pub location: Option<String>,
}

impl std::fmt::Display for Panic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{} at {location}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Installs the hook described in the module docs (once per process; later calls do
/// nothing).
pub fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = payload_message(info.payload());
            let location = info.location().map(ToString::to_string);
            if CATCHING.with(Cell::get) > 0 {
                LAST.with(|last| *last.borrow_mut() = Some((message, location)));
                return;
            }
            tracing::error!(panic = %message, location = location.as_deref().unwrap_or("-"), "panic");
            previous(info);
        }));
    });
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        String::from("(panic payload is not a string)")
    }
}

pin_project_lite::pin_project! {
    /// The future [`catch`] returns.
    pub struct Catch<F> {
        #[pin]
        inner: F,
    }
}

/// Runs `future`, answering `Err` if it panics. The future is not polled again after a
/// panic.
pub fn catch<F: Future>(future: F) -> Catch<F> {
    Catch { inner: future }
}

impl<F: Future> Future for Catch<F> {
    type Output = Result<F::Output, Panic>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        CATCHING.with(|c| c.set(c.get() + 1));
        let result = catch_unwind(AssertUnwindSafe(|| inner.poll(cx)));
        CATCHING.with(|c| c.set(c.get() - 1));
        match result {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(payload) => {
                let seen = LAST.with(|last| last.borrow_mut().take());
                let panic = match seen {
                    Some((message, location)) => Panic { message, location },
                    None => Panic { message: payload_message(payload.as_ref()), location: None },
                };
                Poll::Ready(Err(panic))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_a_value_with_its_location() {
        install_hook();
        assert_eq!(catch(async { 7 }).await, Ok(7));
        let caught = catch(async {
            let bytes = "é".to_owned();
            let _ = &bytes[..1];
        })
        .await
        .unwrap_err();
        assert!(caught.message.contains("char boundary"), "{caught}");
        assert!(caught.location.as_deref().is_some_and(|l| l.contains("panic.rs")), "{caught:?}");
        // Nested catches: the inner one answers.
        let outer = catch(async { catch(async { panic!("inner") }).await.map_err(|p| p.message) }).await;
        assert_eq!(outer, Ok(Err("inner".to_owned())));
    }
}
