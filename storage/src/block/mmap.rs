//! Read-only file bytes for blocks: the one place that memory-maps a file (the only `unsafe`
//! mmap in the crate), plus an owned variant for tests and tiny files.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// The bytes of an immutable file: mapped, or owned.
#[derive(Debug)]
pub(crate) enum FileBytes {
    /// A read-only shared mapping of the whole file.
    Mapped(Mmap),
    /// Bytes held in memory (empty files, which cannot be mapped, and tests).
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Maps `path` read-only.
    pub(crate) fn open(path: &Path) -> Result<FileBytes> {
        let file = File::open(path).map_err(|e| Error::io("open block file", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat block file", path, e))?
            .len();
        if len == 0 {
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: a mapping is only sound while nobody modifies the file. Block files are
        // written once into `<id>.tmp/`, fsynced, and renamed into place; after that nothing in
        // eddy opens them for writing, truncates or rewrites them. Retention and compaction
        // delete a block by unlinking its files, which keeps the inode (and this mapping) alive
        // until the last `Block` holding it is dropped. A process outside eddy that truncates a
        // block file while it is mapped would make reads fault (SIGBUS); that is outside the
        // contract, as for every mmap-based database.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io("mmap block file", path, e))?;
        Ok(FileBytes::Mapped(map))
    }

    /// Drops the mapping's pages from this process's page tables (they stay in the page
    /// cache, and the next read maps them again). Opening a block reads every byte to check
    /// its checksums; without this, a freshly written or compacted block would count in full
    /// towards the server's resident memory until the kernel reclaimed it.
    pub(crate) fn release_pages(&self) {
        if let FileBytes::Mapped(m) = self {
            // SAFETY: MADV_DONTNEED on a read-only shared file mapping only unmaps pages; the
            // contents stay those of the file, which nobody modifies (see `open`), so later
            // reads see the same bytes. Failure only means the pages stay resident.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// Like [`release_pages`](Self::release_pages) for `bytes[start..end]` only (widened to
    /// whole pages), so that a pass over a file larger than the memory it may use can drop
    /// what it has read while it goes on.
    pub(crate) fn release_range(&self, start: usize, end: usize) {
        if let FileBytes::Mapped(m) = self {
            let end = end.min(m.len());
            if start >= end {
                return;
            }
            // SAFETY: as in `release_pages`; memmap2 widens the range to page boundaries.
            let _ = unsafe {
                m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }
}

/// How much of a file a sequential pass (checksums at open, a merge's reads) may leave mapped
/// before releasing it: bounds the resident memory such a pass adds to a few of these.
pub(crate) const RELEASE_EVERY_BYTES: usize = 64 << 20;

impl Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}
