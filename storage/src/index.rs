//! Series index: interned symbols, roaring postings per label pair, matcher evaluation, and the on-disk index format.
