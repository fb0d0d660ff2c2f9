//! The process allocator's settings: how many glibc malloc arenas the server uses, and giving
//! memory freed by large maintenance work back to the kernel.
//!
//! Both matter for resident memory, which users compare against other databases: cutting the
//! head into a block or compacting allocates hundreds of megabytes briefly, and glibc keeps
//! freed memory inside its arenas (measured: 528 MB resident after a flush of 173 k series
//! that held 81 MB, `docs/benchmarks.md`). Other allocators and platforms need neither step,
//! so both are no-ops there.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use eddy_storage::Db;

/// glibc gives each thread that allocates under contention its own arena, up to eight per
/// core; memory freed in one arena is not reused by another. One arena per core keeps
/// contention low and measured 22 % less resident memory for 173 k head series. An operator's
/// `MALLOC_ARENA_MAX` wins. Call before any thread starts.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes allocator parameters.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

/// Returns free memory at the top and inside of every arena to the kernel. Takes each arena's
/// lock in turn (milliseconds), so it runs after work that freed a lot, not on a timer alone.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only returns unused pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The database's count of finished big maintenance steps (head cuts, compactions, retention
/// deletions, idle series' buffers freed): when it moves, memory was freed.
fn maintenance_steps(db: &Db) -> u64 {
    let m = db.metrics();
    m.head_cuts.load(Ordering::Relaxed)
        + m.compactions.load(Ordering::Relaxed)
        + m.retention_deletions.load(Ordering::Relaxed)
        + m.idle_releases.load(Ordering::Relaxed)
}

/// Longest wait between looks: idle series are freed by appends too (whenever the newest
/// sample moved five minutes), not only by maintenance. Measured after `compare.sh
/// --medium`'s ingest: `malloc_trim` gave back 21 MB of the 207 MB resident that those
/// frees left inside glibc's arena. Five seconds: the ingest buffers no request used between
/// two looks are freed, so an idle server gives them back 5–10 s after its last request.
const MAX_LOOK_EVERY: Duration = Duration::from_secs(5);

/// Every `every` (at most [`MAX_LOOK_EVERY`]), releases freed memory if the database did big
/// maintenance work since the last look, or if `release_idle` freed something (the server
/// passes the ingest buffers' release of sets unused since the last look). Runs until the
/// runtime shuts down.
pub fn spawn_release_after_maintenance(
    db: Arc<Db>,
    every: Duration,
    release_idle: impl Fn() -> bool + Send + 'static,
) {
    tokio::spawn(async move {
        let mut seen = maintenance_steps(&db);
        let mut tick = tokio::time::interval(every.min(MAX_LOOK_EVERY));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = maintenance_steps(&db);
            let released = release_idle();
            if now != seen || released {
                seen = now;
                let _ = tokio::task::spawn_blocking(release_freed_memory).await;
            }
        }
    });
}
