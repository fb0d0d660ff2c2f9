//! Per-series work spread over threads: selectors and range functions decode and evaluate
//! each series independently, so [`map_series`] hands out batches of series indices to
//! scoped threads and returns the results in index order. The output is the same as a
//! sequential run, bit for bit: each series is computed by the same code on one thread, and
//! results and errors are taken in series order.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use super::EvalResult;
use crate::value::QueryError;

/// Below this much work (samples to decode plus series × steps) a node runs on the calling
/// thread: starting a thread costs tens of microseconds, a few hundred thousand samples cost
/// about a millisecond.
pub(crate) const PARALLEL_MIN_WORK: usize = 200_000;

/// Batches per thread: enough that a thread that got slow series does not hold up the rest.
const BATCHES_PER_THREAD: usize = 16;

/// Cancellation and deadline, checked by workers between batches.
#[derive(Clone, Copy)]
pub(crate) struct Stop<'a> {
    pub(crate) cancel: &'a AtomicBool,
    pub(crate) deadline: Instant,
}

impl Stop<'_> {
    /// `Canceled` or `Timeout` once the query must stop.
    pub(crate) fn check(&self) -> EvalResult<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(QueryError::Canceled);
        }
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }
}

/// Runs `f(i, scratch)` for every `i` in `0..n` on up to `threads` threads (the calling
/// thread included), each with its own `scratch()`, and returns the results in index order.
/// With `threads <= 1` everything runs here. The first error in index order is returned.
pub(crate) fn map_series<T, S>(
    n: usize,
    threads: usize,
    stop: Stop<'_>,
    scratch: impl Fn() -> S + Sync,
    f: impl Fn(usize, &mut S) -> EvalResult<T> + Sync,
) -> EvalResult<Vec<T>>
where
    T: Send,
{
    let threads = threads.min(n);
    if threads <= 1 {
        let mut s = scratch();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            if i % 64 == 0 {
                stop.check()?;
            }
            out.push(f(i, &mut s)?);
        }
        return Ok(out);
    }
    let batch = n.div_ceil(threads * BATCHES_PER_THREAD).max(1);
    let batches = n.div_ceil(batch);
    let next = AtomicUsize::new(0);
    // Lowest failed batch; later batches are skipped, earlier ones still finish so that the
    // error returned is the first in index order, as a sequential run would return.
    let failed = AtomicUsize::new(usize::MAX);
    let work = || {
        let mut s = scratch();
        let mut done: Vec<(usize, EvalResult<Vec<T>>)> = Vec::new();
        loop {
            let b = next.fetch_add(1, Ordering::Relaxed);
            if b >= batches || b > failed.load(Ordering::Relaxed) {
                return done;
            }
            let run = |s: &mut S| -> EvalResult<Vec<T>> {
                stop.check()?;
                let range = b * batch..((b + 1) * batch).min(n);
                let mut v = Vec::with_capacity(range.len());
                for i in range {
                    v.push(f(i, s)?);
                }
                Ok(v)
            };
            let r = run(&mut s);
            if r.is_err() {
                failed.fetch_min(b, Ordering::Relaxed);
            }
            done.push((b, r));
        }
    };
    let mut parts: Vec<Option<EvalResult<Vec<T>>>> = (0..batches).map(|_| None).collect();
    std::thread::scope(|sc| {
        let handles: Vec<_> = (1..threads).map(|_| sc.spawn(work)).collect();
        let mut place = |done: Vec<(usize, EvalResult<Vec<T>>)>| {
            for (b, r) in done {
                parts[b] = Some(r);
            }
        };
        place(work());
        for h in handles {
            match h.join() {
                Ok(done) => place(done),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    let mut out = Vec::with_capacity(n);
    for p in parts {
        match p {
            Some(Ok(v)) => out.extend(v),
            Some(Err(e)) => return Err(e),
            // Only batches after a failed one are skipped, and that one returned above.
            None => {
                return Err(QueryError::Execution(
                    "internal error: a batch of series was not evaluated".into(),
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stop(cancel: &AtomicBool) -> Stop<'_> {
        Stop {
            cancel,
            deadline: Instant::now() + Duration::from_secs(60),
        }
    }

    #[test]
    fn results_keep_index_order_on_any_thread_count() {
        let cancel = AtomicBool::new(false);
        for threads in [1, 2, 3, 8] {
            let got = map_series(
                1000,
                threads,
                stop(&cancel),
                || 0usize,
                |i, calls| {
                    *calls += 1;
                    Ok(i * i)
                },
            )
            .unwrap();
            assert_eq!(got, (0..1000).map(|i| i * i).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_first_error_in_index_order_wins() {
        let cancel = AtomicBool::new(false);
        for threads in [1, 2, 4] {
            let err = map_series(
                5000,
                threads,
                stop(&cancel),
                || (),
                |i, _| {
                    if i % 700 == 699 {
                        Err(QueryError::Execution(format!("bad series {i}")))
                    } else {
                        Ok(i)
                    }
                },
            )
            .unwrap_err();
            assert_eq!(
                err.to_string(),
                QueryError::Execution("bad series 699".into()).to_string()
            );
        }
    }

    #[test]
    fn cancellation_stops_workers() {
        let cancel = AtomicBool::new(true);
        for threads in [1, 2] {
            let err = map_series(100, threads, stop(&cancel), || (), |i, _| Ok(i)).unwrap_err();
            assert!(matches!(err, QueryError::Canceled));
        }
    }
}
