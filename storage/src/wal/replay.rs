//! Start-up replay: the newest checkpoint, then every later segment in order; and repair of a
//! torn or corrupt tail in the last segment.
//!
//! Only the last segment can legitimately end in a partial record: every earlier one was fsynced
//! before its successor was created. So damage in the last segment is cut off (with a warning)
//! and start-up continues, while damage anywhere else is an [`Error::Corruption`] naming the file
//! and offset, because truncating there would silently drop the records after it.

use std::path::{Path, PathBuf};

use super::segment::{self, Frame, FrameReader, CHECKPOINT_MAGIC, FRAME_HEADER_LEN, SEGMENT_MAGIC};
use crate::error::{Error, Result};

/// What [`replay`] read and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records passed to the callback, checkpoint included.
    pub records: u64,
    /// Segments read (not counting the checkpoint).
    pub segments: u64,
    /// The checkpoint read first: it covers segments below this number.
    pub checkpoint: Option<u64>,
    /// Records that came from the checkpoint.
    pub checkpoint_records: u64,
    /// Number of the last segment read.
    pub last_segment: Option<u64>,
    /// The last segment was cut at this offset because the bytes there were torn or corrupt.
    pub truncated: Option<(PathBuf, u64)>,
    /// How many bytes the truncation dropped.
    pub truncated_bytes: u64,
}

/// Replays the newest checkpoint, then all later segments in order, calling `f` for each record.
///
/// A torn or corrupt tail in the last segment is truncated at the first bad frame, logged with
/// `tracing::warn!` and reported in [`ReplayReport::truncated`]. Damage in a checkpoint or an
/// earlier segment, or a missing segment, is an [`Error::Corruption`] with the file and offset.
/// An error from `f` stops the replay and is returned; a [`DecodeError`](super::DecodeError)
/// converted with `?` gets the segment path and the record's offset filled in. A missing
/// directory replays nothing.
pub fn replay(dir: &Path, f: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<ReplayReport> {
    replay_segments(dir, None, f)
}

/// Reads the newest checkpoint and the finished segments below `before_segment`, without
/// repairing anything (those segments are complete; damage there is an error). The live log
/// keeps appending to later segments meanwhile: this is how a checkpoint collects what it must
/// carry over from the segments it replaces.
pub fn replay_before(
    dir: &Path,
    before_segment: u64,
    f: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<ReplayReport> {
    replay_segments(dir, Some(before_segment), f)
}

fn replay_segments(
    dir: &Path,
    before: Option<u64>,
    f: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<ReplayReport> {
    let listing = segment::list(dir)?;
    let mut report = ReplayReport::default();
    let mut first = None;
    if let Some(&n) = listing.checkpoints.last() {
        let path = segment::checkpoint_path(dir, n);
        // A checkpoint is renamed into place only when complete, so any damage is real.
        let scan = scan_file(&path, CHECKPOINT_MAGIC, false, f)?;
        report.checkpoint = Some(n);
        report.checkpoint_records = scan.records;
        report.records += scan.records;
        first = Some(n);
    }
    let segments: Vec<u64> = listing
        .segments
        .into_iter()
        .filter(|&s| s >= first.unwrap_or(0) && before.is_none_or(|b| s < b))
        .collect();
    let mut expect = first;
    for (i, &n) in segments.iter().enumerate() {
        if let Some(want) = expect.filter(|&want| want != n) {
            let reason = format!("missing WAL segment {want}: the next one is {n}");
            return Err(Error::Corruption {
                path: segment::segment_path(dir, want),
                offset: 0,
                reason,
            });
        }
        // Saturating: u64::MAX can only be the last segment anyway.
        expect = Some(n.saturating_add(1));
        let path = segment::segment_path(dir, n);
        let last = before.is_none() && i + 1 == segments.len();
        let scan = scan_file(&path, SEGMENT_MAGIC, last, f)?;
        report.records += scan.records;
        report.segments += 1;
        report.last_segment = Some(n);
        if let Some((offset, dropped)) = scan.truncated {
            report.truncated = Some((path, offset));
            report.truncated_bytes = dropped;
        }
    }
    Ok(report)
}

/// Checks the last segment of `dir` and cuts a torn tail, without a callback. [`Wal::open`]
/// calls this so that a log opened without [`replay`] never gets a damaged middle segment.
///
/// [`Wal::open`]: super::Wal::open
pub(crate) fn repair_last_segment(dir: &Path, n: u64) -> Result<Option<(u64, u64)>> {
    let path = segment::segment_path(dir, n);
    Ok(scan_file(&path, SEGMENT_MAGIC, true, &mut |_| Ok(()))?.truncated)
}

struct Scan {
    records: u64,
    /// (offset, bytes dropped) when the tail was cut.
    truncated: Option<(u64, u64)>,
}

/// Reads every frame of one file. With `repair`, bad bytes are cut off; otherwise they are an
/// error naming the file and offset.
fn scan_file(
    path: &Path,
    magic: [u8; 4],
    repair: bool,
    f: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<Scan> {
    let (mut r, header_bad) = FrameReader::open(path, magic)?;
    let mut records = 0;
    let bad = match header_bad {
        Some(Frame::Bad { offset, reason }) => Some((offset, reason)),
        _ => loop {
            match r.next_frame()? {
                Frame::Record { offset, payload } => {
                    f(payload).map_err(|e| locate(e, path, offset))?;
                    records += 1;
                }
                Frame::End => break None,
                Frame::Bad { offset, reason } => break Some((offset, reason)),
            }
        },
    };
    let Some((offset, reason)) = bad else {
        return Ok(Scan {
            records,
            truncated: None,
        });
    };
    if !repair {
        return Err(Error::Corruption {
            path: path.to_path_buf(),
            offset,
            reason,
        });
    }
    let dropped = r.len() - offset;
    tracing::warn!(
        path = %path.display(),
        offset,
        dropped_bytes = dropped,
        records_kept = records,
        %reason,
        "WAL: torn or corrupt tail in the last segment; truncating it and continuing"
    );
    segment::truncate_file(path, offset)?;
    Ok(Scan {
        records,
        truncated: Some((offset, dropped)),
    })
}

/// Gives a record-decoding error from the callback (which knows no file) its place on disk.
fn locate(e: Error, path: &Path, frame_offset: u64) -> Error {
    match e {
        Error::Corruption {
            path: p,
            offset,
            reason,
        } if p.as_os_str().is_empty() => Error::Corruption {
            path: path.to_path_buf(),
            offset: frame_offset + FRAME_HEADER_LEN + offset,
            reason,
        },
        other => other,
    }
}
