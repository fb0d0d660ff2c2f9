//! Full head chunks kept on disk instead of the heap: append-only files under
//! `<data>/chunks_head/`, read back through read-only memory maps.
//!
//! Why: a series' sealed chunks are most of the head's memory once it holds hours of samples
//! (about 1.5 KB per series at 2 h, 15 s scrapes). Written with `pwrite` and mapped read-only,
//! those bytes live in the page cache, which the kernel may drop and re-read at will, and count
//! towards the process's resident memory only once something read them through the map: a
//! query, or the head cut, which reads every chunk of the window it writes to a block. The head
//! unmaps the pages again while a cut writes its block and after it truncates
//! ([`MappedChunks::release_pages`]); measured at 1 M series × 6 h, the cuts had left 1.4 GiB of
//! these pages in the server's 3.2 GiB RSS.
//!
//! The files are not a source of truth: the WAL is. They are not fsynced, and a start-up deletes
//! them before the WAL replay rebuilds the head (which writes its full chunks here again). When a
//! write fails (disk full, file size limit), the chunk simply stays on the heap; writes are tried
//! again after [`RETRY_AFTER`].
//!
//! A file is deleted once every chunk in it is older than the head's truncation point: the head
//! drops those chunks from its series in the same truncation, under each shard's lock, before it
//! asks this store to delete files, so no series still refers to a deleted file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use memmap2::Mmap;
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};

/// Size every chunk file is created with (sparse until written).
const FILE_BYTES: u64 = 128 << 20;
/// After a failed write, chunks stay on the heap this long before files are tried again.
const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Where one chunk's bytes are: file, offset and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkRef {
    file: u32,
    offset: u32,
    len: u32,
}

impl ChunkRef {
    /// File, offset and length, for a holder that keeps the length apart (a head series keeps
    /// it in a `u16` beside its other small fields, which saves 8 bytes per chunk).
    pub(crate) fn parts(self) -> (u32, u32, u32) {
        (self.file, self.offset, self.len)
    }

    /// The reference [`parts`](Self::parts) returned.
    pub(crate) fn from_parts(file: u32, offset: u32, len: u32) -> ChunkRef {
        ChunkRef { file, offset, len }
    }
}

struct MappedFile {
    map: Mmap,
    path: PathBuf,
    /// Newest sample time of any chunk written to this file.
    max_t: i64,
    /// Bytes written so far.
    written: u64,
}

struct Writer {
    /// The file being appended to: its id, handle and the next free offset.
    current: Option<(u32, File, u64)>,
    next_id: u32,
    failed_at: Option<Instant>,
}

/// Counters of the chunk files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MappedChunkStats {
    /// Files currently on disk.
    pub files: u64,
    /// Bytes written to files that still exist.
    pub bytes: u64,
    /// Chunks kept on the heap because a write failed.
    pub write_failures: u64,
}

/// The chunk files of one head.
pub(crate) struct MappedChunks {
    /// `None`: disabled (tests, in-memory heads); every chunk stays on the heap.
    dir: Option<PathBuf>,
    /// Size of each file; [`FILE_BYTES`] except in tests of rotation.
    file_bytes: u64,
    writer: Mutex<Writer>,
    files: RwLock<BTreeMap<u32, MappedFile>>,
    stats: Mutex<MappedChunkStats>,
}

impl MappedChunks {
    /// A store writing into `dir` (created on first use), or a disabled one.
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self::with_file_bytes(dir, FILE_BYTES)
    }

    fn with_file_bytes(dir: Option<PathBuf>, file_bytes: u64) -> Self {
        MappedChunks {
            dir,
            file_bytes,
            writer: Mutex::new(Writer {
                current: None,
                next_id: 0,
                failed_at: None,
            }),
            files: RwLock::new(BTreeMap::new()),
            stats: Mutex::new(MappedChunkStats::default()),
        }
    }

    /// Writes a chunk whose newest sample is at `max_t`. `None` when the store is disabled or
    /// the write failed: the caller keeps the bytes on the heap.
    pub(crate) fn write(&self, bytes: &[u8], max_t: i64) -> Option<ChunkRef> {
        let dir = self.dir.as_ref()?;
        if bytes.is_empty() || bytes.len() as u64 > self.file_bytes {
            return None;
        }
        let mut w = self.writer.lock();
        if w.failed_at.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            self.stats.lock().write_failures += 1;
            return None;
        }
        match self.write_locked(&mut w, dir, bytes, max_t) {
            Ok(r) => {
                w.failed_at = None;
                self.stats.lock().bytes += bytes.len() as u64;
                Some(r)
            }
            Err(e) => {
                if w.failed_at.is_none() {
                    tracing::warn!(error = %e, "head chunks stay in memory: writing a chunk file failed; retrying in {RETRY_AFTER:?}");
                }
                w.failed_at = Some(Instant::now());
                self.stats.lock().write_failures += 1;
                None
            }
        }
    }

    fn write_locked(
        &self,
        w: &mut Writer,
        dir: &std::path::Path,
        bytes: &[u8],
        max_t: i64,
    ) -> Result<ChunkRef> {
        let fits = |off: u64| off + bytes.len() as u64 <= self.file_bytes;
        let (id, file, offset) = match w.current.take() {
            Some(cur) if fits(cur.2) => cur,
            _ => {
                let id = w.next_id;
                w.next_id += 1;
                (id, self.create_file(dir, id)?, 0)
            }
        };
        if let Err(e) = file.write_all_at(bytes, offset) {
            w.current = Some((id, file, offset));
            return Err(Error::io(
                "write head chunk file",
                dir.join(file_name(id)),
                e,
            ));
        }
        w.current = Some((id, file, offset + bytes.len() as u64));
        if let Some(f) = self.files.write().get_mut(&id) {
            f.max_t = f.max_t.max(max_t);
            f.written += bytes.len() as u64;
        }
        Ok(ChunkRef {
            file: id,
            offset: offset as u32,
            len: bytes.len() as u32,
        })
    }

    fn create_file(&self, dir: &std::path::Path, id: u32) -> Result<File> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create head chunk dir", dir, e))?;
        let path = dir.join(file_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| Error::io("create head chunk file", &path, e))?;
        let sized = file
            .set_len(self.file_bytes)
            .map_err(|e| Error::io("size head chunk file", &path, e));
        // SAFETY: the file is private to this process (the data directory is locked), never
        // shrunk while mapped, and mapped ranges are read only after they were written.
        let mapped = sized.and_then(|()| {
            unsafe { Mmap::map(&file) }.map_err(|e| Error::io("map head chunk file", &path, e))
        });
        let map = match mapped {
            Ok(m) => m,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        self.files.write().insert(
            id,
            MappedFile {
                map,
                path,
                max_t: i64::MIN,
                written: 0,
            },
        );
        self.stats.lock().files += 1;
        Ok(file)
    }

    /// Runs `f` over the bytes of chunk `r`.
    pub(crate) fn with_bytes<R>(&self, r: ChunkRef, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let files = self.files.read();
        let bytes = files.get(&r.file).and_then(|m| {
            let start = r.offset as usize;
            m.map.get(start..start + r.len as usize)
        });
        match bytes {
            Some(b) => Ok(f(b)),
            None => Err(Error::Corruption {
                path: self
                    .dir
                    .as_ref()
                    .map_or_else(PathBuf::new, |d| d.join(file_name(r.file))),
                offset: u64::from(r.offset),
                reason: format!("head chunk of {} bytes is not mapped", r.len),
            }),
        }
    }

    /// Deletes files whose chunks all end before `t` (the caller has dropped those chunks),
    /// except the one being written.
    pub(crate) fn remove_before(&self, t: i64) {
        // The writer's lock is held throughout (same order as `write`: writer, then files), so
        // a file the writer creates meanwhile, still without chunks, is never taken for old.
        let writer = self.writer.lock();
        let writing = writer.current.as_ref().map(|(id, _, _)| *id);
        let mut files = self.files.write();
        let old: Vec<u32> = files
            .iter()
            .filter(|(id, f)| Some(**id) != writing && f.max_t < t)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            if let Some(f) = files.remove(&id) {
                drop(f.map);
                if let Err(e) = fs::remove_file(&f.path) {
                    tracing::warn!(path = %f.path.display(), error = %e, "deleting an old head chunk file failed");
                }
                let mut stats = self.stats.lock();
                stats.files -= 1;
                stats.bytes = stats.bytes.saturating_sub(f.written);
            }
        }
    }

    /// Drops every file's pages from this process's page tables. They stay in the page cache
    /// (written, not yet evicted), and the next read through the map finds them there.
    pub(crate) fn release_pages(&self) {
        for f in self.files.read().values() {
            // SAFETY: MADV_DONTNEED on a read-only shared file mapping only unmaps pages; a
            // later read maps the file's bytes again. Chunks are written once with `pwrite` to
            // offsets no chunk used before, and a file is never truncated or rewritten while
            // mapped, so a reader sees the same bytes before and after. Failure only means
            // the pages stay resident.
            let _ = unsafe { f.map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    pub(crate) fn stats(&self) -> MappedChunkStats {
        *self.stats.lock()
    }
}

fn file_name(id: u32) -> String {
    format!("{id:08}")
}

impl Drop for MappedChunks {
    fn drop(&mut self) {
        // The files only serve this process's head; nothing reads them after it is gone.
        if let Some(dir) = &self.dir {
            let paths: Vec<PathBuf> = self
                .files
                .get_mut()
                .values()
                .map(|f| f.path.clone())
                .collect();
            self.files.get_mut().clear();
            for p in paths {
                let _ = fs::remove_file(p);
            }
            let _ = fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seed: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
    }

    #[test]
    fn writes_rotate_files_read_back_and_old_files_are_deleted() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("chunks_head");
        let store = MappedChunks::with_file_bytes(Some(dir.clone()), 1000);
        let mut refs = Vec::new();
        // 300-byte chunks: three fit a 1000-byte file, the fourth starts a new one.
        for i in 0..7u8 {
            let r = store.write(&chunk(i, 300), i64::from(i) * 100).unwrap();
            refs.push(r);
        }
        assert_eq!(refs[3].file, refs[0].file + 1);
        assert_eq!(refs[3].offset, 0);
        assert_eq!((store.stats().files, store.stats().bytes), (3, 2100));
        for (i, r) in refs.iter().enumerate() {
            let got = store.with_bytes(*r, <[u8]>::to_vec).unwrap();
            assert_eq!(got, chunk(i as u8, 300), "chunk {i}");
        }
        // Files 0 (max_t 200) and 1 (max_t 500) hold only chunks older than 501; file 2 is
        // being written and stays even though its chunk is old too.
        store.remove_before(501);
        assert_eq!(store.stats().files, 1);
        assert!(store.with_bytes(refs[0], |_| ()).is_err());
        assert!(store.with_bytes(refs[5], |_| ()).is_err());
        assert_eq!(
            store.with_bytes(refs[6], <[u8]>::to_vec).unwrap(),
            chunk(6, 300)
        );
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from(file_name(refs[6].file))]
        );
        drop(store);
        assert!(!dir.exists(), "dropping the store deletes its files");
    }

    /// Resident kilobytes of this process's mappings of `path` (`/proc/self/smaps`).
    fn mapped_rss_kb(path: &std::path::Path) -> u64 {
        let smaps = fs::read_to_string("/proc/self/smaps").unwrap();
        let mut in_file = false;
        let mut kb = 0;
        for line in smaps.lines() {
            let first = line.split_whitespace().next().unwrap_or("");
            if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                in_file = line.trim_end().ends_with(path.to_str().unwrap());
            } else if in_file && first == "Rss:" {
                kb += line
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
            }
        }
        kb
    }

    #[test]
    fn released_pages_leave_the_process_and_read_back_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("chunks_head");
        let store = MappedChunks::with_file_bytes(Some(dir.clone()), 4 << 20);
        let refs: Vec<ChunkRef> = (0..64u8)
            .map(|i| store.write(&chunk(i, 40_000), 1).unwrap())
            .collect();
        let file = dir.join(file_name(refs[0].file));
        assert_eq!(mapped_rss_kb(&file), 0, "written with pwrite, not yet read");
        let read = |store: &MappedChunks| {
            for (i, r) in refs.iter().enumerate() {
                let got = store.with_bytes(*r, <[u8]>::to_vec).unwrap();
                assert_eq!(got, chunk(i as u8, 40_000), "chunk {i}");
            }
        };
        read(&store);
        let touched = mapped_rss_kb(&file);
        assert!(touched >= 2_000, "reading 2.5 MB mapped {touched} kB");
        store.release_pages();
        assert_eq!(mapped_rss_kb(&file), 0);
        read(&store);
        assert!(mapped_rss_kb(&file) >= 2_000);
    }

    #[test]
    fn a_failed_write_leaves_the_chunk_to_the_caller() {
        let tmp = tempfile::tempdir().unwrap();
        // A regular file where the directory should be: creating the directory fails.
        let blocked = tmp.path().join("chunks_head");
        fs::write(&blocked, b"not a directory").unwrap();
        let store = MappedChunks::with_file_bytes(Some(blocked), 1000);
        assert_eq!(store.write(&chunk(1, 10), 1), None);
        assert_eq!(store.stats().write_failures, 1);
        // Within the retry delay the file is not tried again; the chunk still counts.
        assert_eq!(store.write(&chunk(2, 10), 2), None);
        assert_eq!(store.stats().write_failures, 2);
        assert_eq!(store.stats().files, 0);
        let disabled = MappedChunks::new(None);
        assert_eq!(disabled.write(&chunk(1, 10), 1), None);
        assert_eq!(disabled.stats(), MappedChunkStats::default());
    }
}
