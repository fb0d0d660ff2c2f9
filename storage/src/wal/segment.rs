//! WAL files on disk: names, the 8-byte file header, record framing, and a reader that walks
//! frames and says exactly where the valid ones end.
//!
//! Segments and checkpoints share one framing (see `docs/format/wal.md`):
//! `len u32 LE │ crc32c(len ‖ payload) u32 LE │ payload`. The length is inside the checksum so
//! that a zero-filled tail (a file extended by the kernel but never written) is not read as a run
//! of valid empty records.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// First four bytes of a segment file.
pub(crate) const SEGMENT_MAGIC: [u8; 4] = *b"EWAL";
/// First four bytes of a checkpoint file.
pub(crate) const CHECKPOINT_MAGIC: [u8; 4] = *b"ECKP";
/// On-disk format version, byte 4 of the header.
pub(crate) const FORMAT_VERSION: u8 = 1;
/// File header: magic, version, three zero bytes.
pub(crate) const HEADER_LEN: u64 = 8;
/// Frame header: length and checksum.
pub(crate) const FRAME_HEADER_LEN: u64 = 8;
/// Largest record [`Wal::append`](super::Wal::append) accepts. Also bounds what a reader will
/// allocate for a length field it has not yet verified.
pub const MAX_RECORD_LEN: usize = 256 << 20;

const CHECKPOINT_PREFIX: &str = "checkpoint.";
const TMP_SUFFIX: &str = ".tmp";

/// The header bytes of a file with `magic`.
pub(crate) fn file_header(magic: [u8; 4]) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..4].copy_from_slice(&magic);
    h[4] = FORMAT_VERSION;
    h
}

/// Appends one framed record to `dst`.
pub(crate) fn append_frame(dst: &mut Vec<u8>, payload: &[u8]) {
    // Callers check MAX_RECORD_LEN first, so the length fits in u32.
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    dst.extend_from_slice(&len);
    dst.extend_from_slice(&crc.to_le_bytes());
    dst.extend_from_slice(payload);
}

/// Path of segment `n`: eight or more decimal digits.
pub(crate) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:08}"))
}

/// Path of the checkpoint that covers segments below `n`.
pub(crate) fn checkpoint_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{n:08}"))
}

/// Path a checkpoint is written to before it is renamed into place.
pub(crate) fn checkpoint_tmp_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{CHECKPOINT_PREFIX}{n:08}{TMP_SUFFIX}"))
}

/// The WAL files in a directory, by kind. Other files are ignored.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Segment numbers, ascending.
    pub(crate) segments: Vec<u64>,
    /// Checkpoint numbers, ascending.
    pub(crate) checkpoints: Vec<u64>,
    /// Leftover temporary checkpoint files.
    pub(crate) temps: Vec<PathBuf>,
}

/// Lists the WAL files in `dir`; a missing directory is an empty listing.
pub(crate) fn list(dir: &Path) -> Result<Listing> {
    let mut out = Listing::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list WAL directory", dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list WAL directory", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = parse_number(name) {
            out.segments.push(n);
        } else if name.starts_with(CHECKPOINT_PREFIX) && name.ends_with(TMP_SUFFIX) {
            out.temps.push(entry.path());
        } else if let Some(n) = name.strip_prefix(CHECKPOINT_PREFIX).and_then(parse_number) {
            out.checkpoints.push(n);
        }
    }
    out.segments.sort_unstable();
    out.checkpoints.sort_unstable();
    Ok(out)
}

fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Makes renames, creations and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync WAL directory", dir, e))
}

/// What the reader found at the current offset.
#[derive(Debug)]
pub(crate) enum Frame<'a> {
    /// A record whose checksum matched; `offset` is where its frame starts.
    Record { offset: u64, payload: &'a [u8] },
    /// The file ends exactly after the last good frame.
    End,
    /// The bytes from `offset` on are not a valid frame (torn or corrupt).
    Bad { offset: u64, reason: String },
}

/// Reads the frames of one segment or checkpoint file, start to end.
#[derive(Debug)]
pub(crate) struct FrameReader {
    path: PathBuf,
    src: BufReader<File>,
    /// Offset of the next frame.
    offset: u64,
    /// File length when it was opened.
    len: u64,
    payload: Vec<u8>,
}

impl FrameReader {
    /// Opens `path` and checks its header. Returns the reader, or `Bad` when the header is
    /// missing, torn or wrong (a zero-length file is a valid, empty one).
    pub(crate) fn open(
        path: &Path,
        magic: [u8; 4],
    ) -> Result<(FrameReader, Option<Frame<'static>>)> {
        let file = File::open(path).map_err(|e| Error::io("open WAL file", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat WAL file", path, e))?
            .len();
        let mut r = FrameReader {
            path: path.to_path_buf(),
            src: BufReader::with_capacity(1 << 20, file),
            offset: 0,
            len,
            payload: Vec::new(),
        };
        if len == 0 {
            return Ok((r, None));
        }
        if len < HEADER_LEN {
            let reason = format!("torn file header: {len} of {HEADER_LEN} bytes");
            return Ok((r, Some(Frame::Bad { offset: 0, reason })));
        }
        let mut h = [0u8; HEADER_LEN as usize];
        r.read_exact(&mut h)?;
        if h == [0; HEADER_LEN as usize] {
            // The size reached disk but the data did not: a torn header, not a foreign file.
            return Ok((
                r,
                Some(Frame::Bad {
                    offset: 0,
                    reason: "zeroed file header".into(),
                }),
            ));
        }
        if h != file_header(magic) {
            // Another format or version: refuse rather than truncate data we do not understand.
            let reason = format!("bad file header {h:02x?}, want {:02x?}", file_header(magic));
            return Err(Error::Corruption {
                path: path.to_path_buf(),
                offset: 0,
                reason,
            });
        }
        r.offset = HEADER_LEN;
        Ok((r, None))
    }

    /// File length when opened.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The next frame; I/O errors are errors, bad bytes are [`Frame::Bad`].
    pub(crate) fn next_frame(&mut self) -> Result<Frame<'_>> {
        let start = self.offset;
        let left = self.len - start;
        if left == 0 {
            return Ok(Frame::End);
        }
        if left < FRAME_HEADER_LEN {
            let reason = format!("torn frame header: {left} of {FRAME_HEADER_LEN} bytes");
            return Ok(Frame::Bad {
                offset: start,
                reason,
            });
        }
        let mut h = [0u8; FRAME_HEADER_LEN as usize];
        self.read_exact(&mut h)?;
        let len_bytes = [h[0], h[1], h[2], h[3]];
        let rec_len = u32::from_le_bytes(len_bytes) as u64;
        let stored = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        let room = left - FRAME_HEADER_LEN;
        if rec_len > room || rec_len > MAX_RECORD_LEN as u64 {
            let reason =
                format!("record length {rec_len} exceeds the {room} bytes left in the file");
            return Ok(Frame::Bad {
                offset: start,
                reason,
            });
        }
        self.payload.resize(rec_len as usize, 0);
        let mut payload = std::mem::take(&mut self.payload);
        let read = self.read_exact(&mut payload);
        self.payload = payload;
        read?;
        let got = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), &self.payload);
        if got != stored {
            let reason = format!("checksum mismatch: stored {stored:#010x}, computed {got:#010x}");
            return Ok(Frame::Bad {
                offset: start,
                reason,
            });
        }
        self.offset = start + FRAME_HEADER_LEN + rec_len;
        Ok(Frame::Record {
            offset: start,
            payload: &self.payload,
        })
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.src
            .read_exact(buf)
            .map_err(|e| Error::io("read WAL file", &self.path, e))
    }
}

/// Cuts `path` to `len` bytes and makes that durable.
pub(crate) fn truncate_file(path: &Path, len: u64) -> Result<()> {
    let f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io("open WAL file for truncation", path, e))?;
    f.set_len(len)
        .map_err(|e| Error::io("truncate WAL file", path, e))?;
    f.sync_all()
        .map_err(|e| Error::io("sync truncated WAL file", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_bytes_are_pinned() {
        let mut dst = b"x".to_vec();
        append_frame(&mut dst, b"abc");
        let crc = crc32c::crc32c(&[3, 0, 0, 0, b'a', b'b', b'c']);
        let mut want = b"x".to_vec();
        want.extend_from_slice(&[3, 0, 0, 0]);
        want.extend_from_slice(&crc.to_le_bytes());
        want.extend_from_slice(b"abc");
        assert_eq!(dst, want);
        // An all-zero frame header must not checksum as an empty record.
        assert_eq!(crc32c::crc32c(&[0, 0, 0, 0]), 0x48674bc7);
        assert_eq!(file_header(SEGMENT_MAGIC), *b"EWAL\x01\0\0\0");
    }

    #[test]
    fn names_parse_back() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "00000003",
            "00000001",
            "123456789",
            "checkpoint.00000002",
            "checkpoint.00000004.tmp",
        ] {
            File::create(dir.path().join(name)).unwrap();
        }
        for name in ["notes.txt", "checkpoint.x", "0001a", "checkpoint."] {
            File::create(dir.path().join(name)).unwrap();
        }
        let l = list(dir.path()).unwrap();
        assert_eq!(l.segments, vec![1, 3, 123456789]);
        assert_eq!(l.checkpoints, vec![2]);
        assert_eq!(l.temps, vec![dir.path().join("checkpoint.00000004.tmp")]);
        assert_eq!(segment_path(dir.path(), 3), dir.path().join("00000003"));
        assert_eq!(
            checkpoint_path(dir.path(), 2),
            dir.path().join("checkpoint.00000002")
        );
        let missing = list(&dir.path().join("nope")).unwrap();
        assert!(missing.segments.is_empty() && missing.checkpoints.is_empty());
    }

    #[test]
    fn reader_stops_at_each_kind_of_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000");
        let mut good = file_header(SEGMENT_MAGIC).to_vec();
        append_frame(&mut good, b"one");
        append_frame(&mut good, b"");
        let end = good.len() as u64;
        #[track_caller]
        fn frames(path: &Path, bytes: &[u8]) -> (Vec<Vec<u8>>, Option<(u64, String)>) {
            fs::write(path, bytes).unwrap();
            let (mut r, bad) = FrameReader::open(path, SEGMENT_MAGIC).unwrap();
            if let Some(Frame::Bad { offset, reason }) = bad {
                return (vec![], Some((offset, reason)));
            }
            let mut out = vec![];
            loop {
                match r.next_frame().unwrap() {
                    Frame::Record { payload, .. } => out.push(payload.to_vec()),
                    Frame::End => return (out, None),
                    Frame::Bad { offset, reason } => return (out, Some((offset, reason))),
                }
            }
        }
        let want = vec![b"one".to_vec(), vec![]];
        assert_eq!(frames(&path, &good), (want.clone(), None));
        assert_eq!(frames(&path, &[]), (vec![], None));
        let (_, bad) = frames(&path, &good[..5]);
        assert_eq!(bad, Some((0, "torn file header: 5 of 8 bytes".into())));
        assert_eq!(
            frames(&path, &[0; 8]).1,
            Some((0, "zeroed file header".into()))
        );
        fs::write(&path, b"EWAL\x02\0\0\0").unwrap();
        let e = FrameReader::open(&path, SEGMENT_MAGIC).unwrap_err();
        assert!(e.to_string().ends_with(
            "at offset 0: bad file header [45, 57, 41, 4c, 02, 00, 00, 00], want [45, 57, 41, 4c, 01, 00, 00, 00]"
        ));
        assert!(FrameReader::open(&path, CHECKPOINT_MAGIC).is_err());
        let mut zeros = good.clone();
        zeros.extend_from_slice(&[0; 20]);
        let (got, bad) = frames(&path, &zeros);
        assert_eq!(got, want);
        assert!(bad.unwrap().1.starts_with("checksum mismatch"));
        let mut torn = good.clone();
        torn.extend_from_slice(&[9, 0, 0]);
        assert_eq!(
            frames(&path, &torn).1,
            Some((end, "torn frame header: 3 of 8 bytes".into()))
        );
        let mut short = good.clone();
        append_frame(&mut short, b"four");
        short.pop();
        assert_eq!(
            frames(&path, &short).1,
            Some((
                end,
                "record length 4 exceeds the 3 bytes left in the file".into()
            ))
        );
    }
}
