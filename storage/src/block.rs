//! Immutable on-disk blocks: a time partition of series, written once to a temp dir, renamed, and read through mmap.
