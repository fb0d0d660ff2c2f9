//! The open segment: where the next batch goes, rotation, fsync, and keeping the file consistent
//! when a write fails.
//!
//! Only one thread at a time holds the [`Writer`] (the group-commit leader, or `cut`/`sync`/
//! `close`), so it needs no locking of its own. Its invariant: the open segment holds only
//! complete frames up to `end`. A failed write is cut back to `end` before anything else is
//! written; if even that fails, the next write retries the cut first and fails until it works.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::replay::repair_last_segment;
use super::segment::{self, HEADER_LEN, SEGMENT_MAGIC};
use super::{SyncPolicy, WalOptions};
use crate::error::{Error, Result};

#[derive(Debug)]
struct Segment {
    n: u64,
    path: PathBuf,
    file: Arc<File>,
    /// End of the last complete frame; the next batch is written here.
    end: u64,
    /// Bytes known to be on stable storage.
    synced: u64,
    /// A failed write left bytes after `end` that could not be cut off yet.
    needs_truncate: bool,
}

impl Segment {
    /// Cuts whatever a failed write left after `end`; remembers to retry if that fails too.
    fn discard_tail(&mut self) {
        if let Err(e) = self.file.set_len(self.end) {
            tracing::error!(path = %self.path.display(), offset = self.end, error = %e,
                "WAL: cannot cut a failed write back; will retry before the next write");
            self.needs_truncate = true;
        }
    }

    /// Fsyncs unsynced bytes; true when an fsync was issued.
    fn sync(&mut self) -> Result<bool> {
        if self.synced >= self.end {
            return Ok(false);
        }
        self.file
            .sync_data()
            .map_err(|e| Error::io("sync WAL segment", &self.path, e))?;
        self.synced = self.end;
        Ok(true)
    }
}

/// The writing end of the log.
#[derive(Debug)]
pub(crate) struct Writer {
    dir: PathBuf,
    segment_size: u64,
    sync_on_write: bool,
    /// None before the first segment is created, after a failed rotation, and after close.
    seg: Option<Segment>,
    /// Number of the next segment to create.
    next: u64,
    closed: bool,
    /// Data fsyncs issued (for [`WalStats`](super::WalStats)).
    pub(crate) fsyncs: u64,
}

impl Writer {
    /// Repairs the last existing segment's tail, then starts a fresh segment after it.
    pub(crate) fn open(dir: &Path, opts: &WalOptions) -> Result<Writer> {
        let listing = segment::list(dir)?;
        if let Some(&last) = listing.segments.last() {
            repair_last_segment(dir, last)?;
        }
        let after_segments = match listing.segments.last() {
            None => 0,
            Some(&last) => last.checked_add(1).ok_or_else(|| Error::Corruption {
                path: segment::segment_path(dir, last),
                offset: 0,
                reason: "segment number leaves no room for a next segment".into(),
            })?,
        };
        let after_checkpoint = listing.checkpoints.last().copied().unwrap_or(0);
        let mut w = Writer {
            dir: dir.to_path_buf(),
            segment_size: opts.segment_size,
            sync_on_write: matches!(opts.sync, SyncPolicy::Always),
            seg: None,
            next: after_segments.max(after_checkpoint),
            closed: false,
            fsyncs: 0,
        };
        w.rotate()?;
        Ok(w)
    }

    /// Number of the segment being written (or the one the next write will create).
    pub(crate) fn current(&self) -> u64 {
        self.seg.as_ref().map_or(self.next, |s| s.n)
    }

    /// Writes framed records as one write(2), rotating first if they would overflow the segment;
    /// fsyncs after it under [`SyncPolicy::Always`]. On error nothing of `buf` stays in the log.
    pub(crate) fn write_batch(&mut self, buf: &[u8]) -> Result<()> {
        if self.closed {
            return Err(Error::Closed("WAL is closed"));
        }
        let len = buf.len() as u64;
        let full = self
            .seg
            .as_ref()
            .is_none_or(|s| s.end > HEADER_LEN && s.end + len > self.segment_size);
        if full {
            self.rotate()?;
        }
        let Some(seg) = self.seg.as_mut() else {
            unreachable!("BUG: rotate succeeded without opening a segment");
        };
        if seg.needs_truncate {
            seg.file
                .set_len(seg.end)
                .map_err(|e| Error::io("cut failed write from WAL segment", &seg.path, e))?;
            seg.needs_truncate = false;
        }
        if let Err(e) = seg.file.write_all_at(buf, seg.end) {
            // A short write (disk full) leaves half a frame that would hide every later record.
            seg.discard_tail();
            return Err(Error::io("write WAL segment", &seg.path, e));
        }
        if self.sync_on_write {
            let start = seg.end;
            seg.end += len;
            match seg.sync() {
                Ok(synced) => self.fsyncs += u64::from(synced),
                Err(e) => {
                    // The callers hear the batch failed; take it out so a retry cannot
                    // duplicate it.
                    seg.end = start;
                    seg.discard_tail();
                    return Err(e);
                }
            }
        } else {
            seg.end += len;
        }
        Ok(())
    }

    /// Finishes the open segment and starts the next; returns its number.
    pub(crate) fn cut(&mut self) -> Result<u64> {
        if self.closed {
            return Err(Error::Closed("WAL is closed"));
        }
        self.rotate()?;
        Ok(self.current())
    }

    /// Fsyncs what has been written to the open segment.
    pub(crate) fn sync(&mut self) -> Result<()> {
        if let Some(seg) = self.seg.as_mut() {
            self.fsyncs += u64::from(seg.sync()?);
        }
        Ok(())
    }

    /// Fsyncs and closes the open segment; later writes fail with [`Error::Closed`].
    pub(crate) fn close(&mut self) -> Result<()> {
        self.closed = true;
        let res = self.sync();
        self.seg = None;
        res
    }

    /// What a background fsync needs, when the open segment has unsynced bytes: it can fsync a
    /// shared handle without holding the writer.
    pub(crate) fn unsynced(&self) -> Option<(u64, Arc<File>, u64, PathBuf)> {
        let s = self.seg.as_ref().filter(|s| s.synced < s.end)?;
        Some((s.n, Arc::clone(&s.file), s.end, s.path.clone()))
    }

    /// Records that a background fsync of segment `n` covered bytes up to `end`.
    pub(crate) fn mark_synced(&mut self, n: u64, end: u64) {
        self.fsyncs += 1;
        if let Some(s) = self.seg.as_mut().filter(|s| s.n == n) {
            s.synced = s.synced.max(end.min(s.end));
        }
    }

    /// Fsyncs the open segment and creates the next one. The old segment is complete on disk
    /// before its successor exists, whatever the policy: that is what lets replay treat damage
    /// in any segment but the last as corruption rather than a torn write.
    fn rotate(&mut self) -> Result<()> {
        if let Some(old) = self.seg.as_mut() {
            self.fsyncs += u64::from(old.sync()?);
            // The bytes cut back after a failed write must be gone before a successor exists.
            if old.needs_truncate {
                old.file
                    .set_len(old.end)
                    .map_err(|e| Error::io("cut failed write from WAL segment", &old.path, e))?;
                old.needs_truncate = false;
            }
        }
        self.seg = None;
        let n = self.next;
        let path = segment::segment_path(&self.dir, n);
        let file = match create_segment(&self.dir, &path) {
            Ok(f) => f,
            Err(e) => {
                // Leave no headerless file behind; the next write retries with the same number.
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        self.seg = Some(Segment {
            n,
            path,
            file: Arc::new(file),
            end: HEADER_LEN,
            synced: HEADER_LEN,
            needs_truncate: false,
        });
        self.next = n.saturating_add(1);
        Ok(())
    }
}

/// Creates a segment file with its header, durable along with its directory entry.
fn create_segment(dir: &Path, path: &Path) -> Result<File> {
    let io_err = |e| Error::io("create WAL segment", path, e);
    // Truncate, not create_new: a file with this number can only be a headerless leftover of a
    // failed rotation, since numbers start above every segment that existed at open.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_err)?;
    file.write_all_at(&segment::file_header(SEGMENT_MAGIC), 0)
        .map_err(io_err)?;
    file.sync_data().map_err(io_err)?;
    segment::sync_dir(dir)?;
    Ok(file)
}
