//! Write-ahead log: append-only segment files that make accepted samples durable before they
//! reach a block. Replay and repair live here too.
//!
//! # Brief overview
//! A [`Wal`] is a directory of numbered segment files (`00000000`, `00000001`, …) plus at most one
//! live checkpoint (`checkpoint.0000000N`). Records are opaque bytes, framed with a length and a
//! CRC32C (module `segment` has the framing, `docs/format/wal.md` the byte layout; [`record`] gives the
//! head's series and samples records their encoding).
//!
//! - [`Wal::append`] returns once the record is written, and fsynced under
//!   [`SyncPolicy::Always`]. Concurrent callers are batched by **group commit**: the first caller
//!   to find no write in flight becomes the leader, takes every record queued so far, and issues
//!   one `pwrite` (and one `fsync`) for all of them; the others sleep until their batch is done.
//! - [`replay`] runs at start-up, before [`Wal::open`]: the newest checkpoint, then every later
//!   segment. A torn tail in the last segment is truncated with a warning; damage elsewhere is an
//!   error naming file and offset.
//! - [`Wal::cut_segment`] + [`Wal::checkpoint`] trim the log once its data is safely in blocks.
//!
//! ```
//! use eddy_storage::wal::{self, SyncPolicy, Wal, WalOptions};
//! let dir = tempfile::tempdir()?;
//! let wal = Wal::open(dir.path(), WalOptions { sync: SyncPolicy::Always, ..Default::default() })?;
//! wal.append(b"first")?;
//! wal.append(b"second")?;
//! wal.close()?;
//! let mut seen = Vec::new();
//! let report = wal::replay(dir.path(), &mut |rec| Ok(seen.push(rec.to_vec())))?;
//! assert_eq!(seen, [b"first".to_vec(), b"second".to_vec()]);
//! assert_eq!(report.records, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Disk full
//! A failed write (ENOSPC, EFBIG, EIO) fails every record of its batch with [`Error::Io`] and is
//! cut back to the last complete frame, so the log never holds half a record in front of later
//! ones; once space returns, appends succeed again. A failed `fsync` under `Always` is treated
//! the same way: its batch is removed and reported as failed.

mod checkpoint;
pub mod record;
mod replay;
mod segment;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{self, RecvTimeoutError, Sender};
use parking_lot::{Condvar, Mutex, MutexGuard};

pub use record::{
    begin_series, decode_record, decode_series, encode_samples, encode_series, push_series,
    record_type, DecodeError, DecodedRecord, RecordType, SamplesRecord, SeriesEntry,
};
pub use replay::{replay, replay_before, ReplayReport};
pub use segment::MAX_RECORD_LEN;

use crate::error::{Error, Result};
use writer::Writer;

/// When appended records are fsynced. What each setting can lose is in `docs/format/wal.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync before `append` returns; group commit shares one fsync among concurrent callers.
    /// An acknowledged record survives a power failure.
    Always,
    /// `append` returns after write(2); a background thread fsyncs every interval. Survives
    /// `kill -9` of the process; a power failure can lose up to the interval's records.
    Interval(Duration),
    /// Never fsync on the append path; the OS writes back when it likes (Linux: ~30 s).
    /// Survives `kill -9`; a power failure can lose anything not yet written back.
    Never,
}

impl Default for SyncPolicy {
    /// `Interval(1 s)`.
    fn default() -> Self {
        SyncPolicy::Interval(Duration::from_secs(1))
    }
}

/// How a [`Wal`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// A segment is finished once the next batch would take it past this many bytes (a batch
    /// larger than this gets a segment of its own). Default 128 MiB.
    pub segment_size: u64,
    /// The fsync policy. Default `Interval(1 s)`.
    pub sync: SyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 128 << 20,
            sync: SyncPolicy::default(),
        }
    }
}

/// The write-ahead log. `Send + Sync`: share it (`Arc<Wal>`) and call [`append`](Wal::append)
/// from many threads at once; that is what makes group commit pay off.
#[derive(Debug)]
pub struct Wal {
    shared: Arc<Shared>,
    syncer: Mutex<Option<Syncer>>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    commit: Mutex<Commit>,
    /// Signalled when a leader finishes a batch.
    committed: Condvar,
    writer: Mutex<Writer>,
    /// Serialises checkpoints.
    checkpointing: Mutex<()>,
}

/// Records waiting for a leader.
#[derive(Debug)]
struct Commit {
    /// Framed records not yet taken by a leader.
    pending: Vec<u8>,
    /// Completion of the records in `pending`.
    batch: Arc<Batch>,
    /// The buffer a leader last wrote, kept for its capacity.
    spare: Vec<u8>,
    /// A leader is writing a batch now.
    leading: bool,
    closed: bool,
    stats: WalStats,
}

/// Counters since [`Wal::open`]; `records / batches` is the group-commit batch size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records accepted by `append` (including ones whose batch then failed).
    pub records: u64,
    /// Batches written by a leader, each one write(2).
    pub batches: u64,
    /// Batches whose write or fsync failed.
    pub failed_batches: u64,
    /// Framed bytes in the batches written.
    pub bytes: u64,
    /// Data fsyncs issued (append path, background, rotation and `sync`).
    pub fsyncs: u64,
}

/// Outcome of one group-commit batch, shared by every caller whose record is in it.
#[derive(Debug, Default)]
struct Batch {
    done: OnceLock<Result<(), Failure>>,
}

/// A batch's error in a form every waiter can turn into its own [`Error`].
#[derive(Debug, Clone)]
enum Failure {
    Io {
        op: &'static str,
        path: PathBuf,
        kind: io::ErrorKind,
        message: String,
    },
    Closed(&'static str),
}

impl Failure {
    fn of(e: &Error, dir: &Path) -> Failure {
        match e {
            Error::Io { op, path, source } => Failure::Io {
                op,
                path: path.clone(),
                kind: source.kind(),
                message: source.to_string(),
            },
            Error::Closed(why) => Failure::Closed(why),
            other => Failure::Io {
                op: "append WAL record",
                path: dir.to_path_buf(),
                kind: io::ErrorKind::Other,
                message: other.to_string(),
            },
        }
    }

    fn into_error(self) -> Error {
        match self {
            Failure::Io {
                op,
                path,
                kind,
                message,
            } => Error::io(op, path, io::Error::new(kind, message)),
            Failure::Closed(why) => Error::Closed(why),
        }
    }
}

/// The background fsync thread of [`SyncPolicy::Interval`]; dropping `stop` ends it.
#[derive(Debug)]
struct Syncer {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

/// Buffers above this size are not kept for reuse after a batch.
const MAX_SPARE_CAPACITY: usize = 16 << 20;

impl Wal {
    /// Opens the log in `dir` (created if missing) and starts a new segment after the existing
    /// ones. Does not replay: call [`replay`] first. A torn tail in the last existing segment is
    /// cut (with a warning) so it cannot become damage in the middle of the log.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create WAL directory", dir, e))?;
        let writer = Writer::open(dir, &opts)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            commit: Mutex::new(Commit {
                pending: Vec::new(),
                batch: Arc::default(),
                spare: Vec::new(),
                leading: false,
                closed: false,
                stats: WalStats::default(),
            }),
            committed: Condvar::new(),
            writer: Mutex::new(writer),
            checkpointing: Mutex::new(()),
        });
        let syncer = match opts.sync {
            // A zero interval would spin; 1 ms is already more fsyncs than a disk can use.
            SyncPolicy::Interval(every) => {
                let every = every.max(Duration::from_millis(1));
                Some(spawn_syncer(Arc::clone(&shared), every)?)
            }
            SyncPolicy::Always | SyncPolicy::Never => None,
        };
        Ok(Wal {
            shared,
            syncer: Mutex::new(syncer),
        })
    }

    /// The directory of the log.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Appends one record (opaque bytes, at most [`MAX_RECORD_LEN`]); returns when it is durable
    /// per the [`SyncPolicy`]. Concurrent callers are batched into one write (and fsync) by a
    /// leader. On error the record is not in the log.
    pub fn append(&self, record: &[u8]) -> Result<()> {
        self.append_all(&[record])
    }

    /// Appends several records in one batch (e.g. a series record and the samples that use it),
    /// in order; one wait covers them all. They succeed or fail together.
    pub fn append_all(&self, records: &[&[u8]]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        if let Some(r) = records.iter().find(|r| r.len() > MAX_RECORD_LEN) {
            return Err(too_large("append WAL record", &self.shared.dir, r.len()));
        }
        let mut c = self.shared.commit.lock();
        if c.closed {
            return Err(Error::Closed("WAL is closed"));
        }
        for r in records {
            segment::append_frame(&mut c.pending, r);
        }
        c.stats.records += records.len() as u64;
        let batch = Arc::clone(&c.batch);
        loop {
            if let Some(done) = batch.done.get() {
                return done.clone().map_err(Failure::into_error);
            }
            if !c.leading {
                // No write in flight and ours not done: our records are in `pending`; lead.
                return self.lead(c);
            }
            self.shared.committed.wait(&mut c);
        }
    }

    /// Writes everything pending as one batch, publishes the outcome, and wakes the waiters.
    fn lead(&self, mut c: MutexGuard<'_, Commit>) -> Result<()> {
        c.leading = true;
        let spare = std::mem::take(&mut c.spare);
        let mut buf = std::mem::replace(&mut c.pending, spare);
        let batch = std::mem::take(&mut c.batch);
        let res = MutexGuard::unlocked(&mut c, || self.shared.writer.lock().write_batch(&buf));
        let _ = batch.done.set(
            res.as_ref()
                .map(|_| ())
                .map_err(|e| Failure::of(e, &self.shared.dir)),
        );
        c.stats.batches += 1;
        c.stats.bytes += buf.len() as u64;
        c.stats.failed_batches += u64::from(res.is_err());
        buf.clear();
        if buf.capacity() <= MAX_SPARE_CAPACITY {
            c.spare = buf;
        }
        c.leading = false;
        drop(c);
        self.shared.committed.notify_all();
        res
    }

    /// Finishes the current segment (fsynced) and starts a new one; returns the new segment's
    /// number. Records whose `append` returned before this call are in earlier segments; records
    /// appended after it returns are in this segment or later.
    pub fn cut_segment(&self) -> Result<u64> {
        self.shared.writer.lock().cut()
    }

    /// Counters since open.
    pub fn stats(&self) -> WalStats {
        let mut s = self.shared.commit.lock().stats;
        s.fsyncs = self.shared.writer.lock().fsyncs;
        s
    }

    /// Number of the segment appends currently go to.
    pub fn current_segment(&self) -> u64 {
        self.shared.writer.lock().current()
    }

    /// Writes a checkpoint holding `records` that stands in for every segment below
    /// `before_segment`, atomically (temp file, fsync, rename, fsync directory), then deletes
    /// those segments and older checkpoints. `before_segment` is usually what
    /// [`cut_segment`](Wal::cut_segment) returned; it may not exceed the current segment, nor be
    /// older than an existing checkpoint. On error nothing is deleted.
    pub fn checkpoint(
        &self,
        before_segment: u64,
        records: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> Result<()> {
        let dir = &self.shared.dir;
        let _one_at_a_time = self.shared.checkpointing.lock();
        let current = self.current_segment();
        if before_segment > current {
            let msg = format!(
                "checkpoint before segment {before_segment} would cover the open segment {current}"
            );
            return Err(invalid("write WAL checkpoint", dir, msg));
        }
        if let Some(&newest) = segment::list(dir)?.checkpoints.last() {
            if before_segment < newest {
                let msg = format!(
                    "checkpoint before segment {before_segment} is older than checkpoint {newest}"
                );
                return Err(invalid("write WAL checkpoint", dir, msg));
            }
        }
        let count = checkpoint::write(dir, before_segment, records)?;
        tracing::info!(
            dir = %dir.display(),
            before_segment,
            records = count,
            "WAL: checkpoint written"
        );
        checkpoint::remove_obsolete(dir, before_segment)
    }

    /// Fsyncs everything written so far.
    pub fn sync(&self) -> Result<()> {
        self.shared.writer.lock().sync()
    }

    /// Fsyncs and closes the log and stops the background fsync. Later appends fail with
    /// [`Error::Closed`]. Calling it again does nothing.
    pub fn close(&self) -> Result<()> {
        self.shared.commit.lock().closed = true;
        if let Some(s) = self.syncer.lock().take() {
            drop(s.stop);
            if s.thread.join().is_err() {
                tracing::error!("WAL: background fsync thread panicked");
            }
        }
        self.shared.writer.lock().close()
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(error = %e, "WAL: close on drop failed");
        }
    }
}

/// Starts the thread that fsyncs the open segment every `every`.
fn spawn_syncer(shared: Arc<Shared>, every: Duration) -> Result<Syncer> {
    let (stop, stopped) = channel::bounded::<()>(0);
    let dir = shared.dir.clone();
    let thread = std::thread::Builder::new()
        .name("wal-fsync".into())
        .spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                if let Err(e) = shared.background_sync() {
                    tracing::error!(
                        error = %e,
                        "WAL: background fsync failed; recent records may not survive a power loss"
                    );
                }
            }
        })
        .map_err(|e| Error::io("start WAL fsync thread", dir, e))?;
    Ok(Syncer { stop, thread })
}

impl Shared {
    /// Fsyncs the open segment without holding the writer, so appends continue meanwhile.
    fn background_sync(&self) -> Result<()> {
        let Some((n, file, end, path)) = self.writer.lock().unsynced() else {
            return Ok(());
        };
        file.sync_data()
            .map_err(|e| Error::io("sync WAL segment", path, e))?;
        self.writer.lock().mark_synced(n, end);
        Ok(())
    }
}

/// The error for a record over [`MAX_RECORD_LEN`].
fn too_large(op: &'static str, path: &Path, len: usize) -> Error {
    invalid(
        op,
        path,
        format!("record of {len} bytes exceeds the limit of {MAX_RECORD_LEN} bytes"),
    )
}

fn invalid(op: &'static str, path: &Path, msg: String) -> Error {
    Error::io(op, path, io::Error::new(io::ErrorKind::InvalidInput, msg))
}
