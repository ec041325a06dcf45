//! The one optimistic read-modify-write loop. Every service writes this way: read the rows
//! a change depends on, decide, and write at the versions read; a store conflict means
//! another writer got there first, so the attempt is run again from fresh reads.

use carapace_store::{Error, Store, Write};

/// How many times an optimistic read-modify-write is run before giving up: a row this
/// contended is answered with the caller's "busy, try again" error.
pub const MAX_ATTEMPTS: usize = 16;

/// Runs an optimistic read-modify-write: `$body`, an attempt given its number (from 0) as
/// `$n`, runs until it evaluates to `Ok(Some(v))` (done: the macro gives `Ok(v)`) or to an
/// error (given as it is, converted with `?`); `Ok(None)` means it lost a race and reads
/// again. After [`MAX_ATTEMPTS`](crate::retry::MAX_ATTEMPTS) lost races the answer is
/// `Err($busy)`. The body is an async block's, whose error type is `$err`: `?` and `return`
/// inside it end the attempt, not the caller. A macro rather than a function taking an async
/// closure, so that each attempt may borrow the caller's state mutably and its future stays
/// `Send` for the handlers and workers that await it.
#[macro_export]
macro_rules! optimistic {
    ($err:ty, $busy:expr, |$n:pat_param| $body:block) => {{
        let mut done = ::std::option::Option::None;
        for $n in 0..$crate::retry::MAX_ATTEMPTS {
            let attempt: ::std::result::Result<::std::option::Option<_>, $err> = async $body.await;
            if let ::std::option::Option::Some(v) = attempt? {
                done = ::std::option::Option::Some(v);
                break;
            }
        }
        match done {
            ::std::option::Option::Some(v) => ::std::result::Result::Ok(v),
            ::std::option::Option::None => ::std::result::Result::Err($busy),
        }
    }};
}

/// Applies `writes` as one batch: `Ok(true)` when committed, `Ok(false)` when a row changed
/// since it was read (the caller's attempt reads again), any other failure as it is.
pub async fn commit(store: &dyn Store, writes: Vec<Write>) -> Result<bool, Error> {
    match store.apply(writes).await {
        Ok(_) => Ok(true),
        Err(Error::Conflict(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn attempts_until_done_an_error_or_the_bound() {
        async fn run(stop_at: Option<usize>, fail: bool, runs: &mut usize) -> Result<usize, String> {
            crate::optimistic!(String, "busy".to_owned(), |n| {
                *runs += 1;
                if fail {
                    return Err("bad".to_owned());
                }
                Ok((Some(n) == stop_at).then_some(n))
            })
        }
        let mut runs = 0;
        assert_eq!((run(Some(3), false, &mut runs).await, runs), (Ok(3), 4));
        let mut runs = 0;
        assert_eq!((run(None, true, &mut runs).await, runs), (Err("bad".to_owned()), 1));
        let mut runs = 0;
        assert_eq!((run(None, false, &mut runs).await, runs), (Err("busy".to_owned()), MAX_ATTEMPTS));
    }
}
