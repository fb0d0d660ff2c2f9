//! Checkpoints: one file that stands in for all segments below a number, so those segments can
//! be deleted once their data is safely in blocks.
//!
//! A checkpoint is written to `checkpoint.N.tmp`, fsynced, renamed to `checkpoint.N` and the
//! directory fsynced; only then are older files deleted. A crash at any point leaves either the
//! old state or the new one, never a half checkpoint that replay would read.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use super::segment::{self, CHECKPOINT_MAGIC, MAX_RECORD_LEN};
use crate::error::{Error, Result};

/// Writes `records` as checkpoint `n` atomically; returns how many were written.
pub(crate) fn write(dir: &Path, n: u64, records: &mut dyn Iterator<Item = Vec<u8>>) -> Result<u64> {
    let tmp = segment::checkpoint_tmp_path(dir, n);
    let written = write_file(&tmp, records);
    let count = match written {
        Ok(count) => count,
        Err(e) => {
            // Frees the space a failed (e.g. disk full) checkpoint took; replay ignores .tmp files.
            if let Err(rm) = fs::remove_file(&tmp) {
                tracing::warn!(
                    path = %tmp.display(),
                    error = %rm,
                    "WAL: cannot remove failed checkpoint"
                );
            }
            return Err(e);
        }
    };
    let path = segment::checkpoint_path(dir, n);
    fs::rename(&tmp, &path).map_err(|e| Error::io("rename WAL checkpoint", &path, e))?;
    segment::sync_dir(dir)?;
    Ok(count)
}

fn write_file(path: &Path, records: &mut dyn Iterator<Item = Vec<u8>>) -> Result<u64> {
    let io_err = |e: io::Error| Error::io("write WAL checkpoint", path, e);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_err)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&segment::file_header(CHECKPOINT_MAGIC))
        .map_err(io_err)?;
    let mut frame = Vec::new();
    let mut count = 0;
    for rec in records {
        if rec.len() > MAX_RECORD_LEN {
            return Err(super::too_large("write WAL checkpoint", path, rec.len()));
        }
        frame.clear();
        segment::append_frame(&mut frame, &rec);
        w.write_all(&frame).map_err(io_err)?;
        count += 1;
    }
    let file: File = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    file.sync_all().map_err(io_err)?;
    Ok(count)
}

/// Deletes segments and checkpoints below `n`, and leftover temporary files. Failures are logged
/// and left for the next checkpoint: replay skips these files anyway.
pub(crate) fn remove_obsolete(dir: &Path, n: u64) -> Result<()> {
    let listing = segment::list(dir)?;
    let old_segments = listing
        .segments
        .iter()
        .filter(|&&s| s < n)
        .map(|&s| segment::segment_path(dir, s));
    let old_checkpoints = listing
        .checkpoints
        .iter()
        .filter(|&&c| c < n)
        .map(|&c| segment::checkpoint_path(dir, c));
    for path in old_segments.chain(old_checkpoints).chain(listing.temps) {
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), error = %e, "WAL: cannot delete obsolete file");
        }
    }
    Ok(())
}
