//! Columnar sample codecs: timestamps and values as separate columns per chunk.
