//! The process allocator's settings: how many glibc malloc arenas the server uses, where
//! large blocks come from, and giving memory freed by large maintenance work back to the
//! kernel.
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

/// Blocks at least this large get their own mapping, returned to the kernel when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1 << 20;

/// Sets up glibc malloc for a server with a large, slowly changing heap. Call before any
/// thread starts; an operator's `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` wins.
///
/// - **Arenas.** glibc gives each thread that allocates under contention its own arena, up
///   to eight per core; memory freed in one arena is not reused by another. One arena per
///   core keeps contention low and measured 22 % less resident memory for 173 k head series.
/// - **Large blocks.** glibc starts by mapping blocks of 128 KiB and more, but raises that
///   threshold (up to 32 MiB) each time such a block is freed, after which big buffers (the
///   label-run table, WAL and snappy buffers, batch vectors) come from the arena, and the holes
///   they leave when they grow are filled by small long-lived allocations and never given
///   back. The threshold is fixed at 1 MiB: above hyper's ~408 KiB read buffers, which a line
///   protocol request of ~1 MB allocates anew for each chunk (at 128 KiB each of those was an
///   `mmap` plus a hundred page faults: 3–4 s of extra system time per 5.25 M line protocol
///   samples), and below the buffers that grow to megabytes. At 1 MiB the medium replay ends
///   at 114.9 MB resident; with the head's series tables in fixed segments, which no longer
///   grow by reallocation (`storage/src/head/table.rs`), at 107.0 MB (`docs/benchmarks.md`,
///   "Server memory, eighth session").
pub fn configure_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY (both calls): mallopt only changes allocator parameters.
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, arenas);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
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
