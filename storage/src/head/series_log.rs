//! The series an append created (or must log again), with their label sets packed into one
//! text buffer: what the WAL's series record and the postings need from them.
//!
//! Each new series used to carry its own `Labels`, two `String`s per label: ~20 allocations
//! and frees per new series, and a job restart creates thousands of series in one request
//! (perf of `compare.sh --medium`'s replay: 3 % of the server's time in glibc for those
//! strings and for consolidating its free lists after the batch's list was dropped). The
//! buffers here are kept between appends by the appending thread.

/// Series ids with their `(name, value)` pairs, in the order they were pushed.
#[derive(Debug, Default)]
pub struct SeriesLog {
    ids: Vec<u32>,
    /// Per series: its end in `pairs`.
    ends: Vec<u32>,
    /// Per pair: where its name ends in `text` and where its value ends (the name starts
    /// where the previous pair's value ended).
    pairs: Vec<(u32, u32)>,
    text: String,
}

/// Text bytes a log keeps between appends at most; a larger one (a huge batch of new
/// series) is freed instead, so idle threads do not pin it.
const MAX_RETAINED_TEXT: usize = 1 << 18;

impl SeriesLog {
    /// Adds series `id` with its label pairs (canonical: sorted, no empty values).
    pub fn push<'a>(&mut self, id: u32, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (name, value) in pairs {
            self.text.push_str(name);
            let name_end = self.text.len();
            self.text.push_str(value);
            self.pairs.push((offset(name_end), offset(self.text.len())));
        }
        self.ids.push(id);
        self.ends.push(offset(self.pairs.len()));
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no series was logged.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The series ids, in order.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Each series' id and label pairs, from `first` on.
    pub fn iter_from(
        &self,
        first: usize,
    ) -> impl ExactSizeIterator<Item = (u32, SeriesPairs<'_>)> + '_ {
        (first..self.ids.len()).map(move |i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
            let pairs = &self.pairs[start..self.ends[i] as usize];
            let text_start = match start {
                0 => 0,
                s => self.pairs[s - 1].1 as usize,
            };
            (
                self.ids[i],
                SeriesPairs {
                    text: &self.text,
                    pairs: pairs.iter(),
                    at: text_start,
                },
            )
        })
    }

    /// Each series' id and label pairs.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u32, SeriesPairs<'_>)> + '_ {
        self.iter_from(0)
    }

    /// Empties the log, keeping its buffers unless they grew past what is worth keeping.
    pub fn clear(&mut self) {
        if self.text.capacity() > MAX_RETAINED_TEXT {
            *self = SeriesLog::default();
            return;
        }
        self.ids.clear();
        self.ends.clear();
        self.pairs.clear();
        self.text.clear();
    }
}

/// One series' `(name, value)` pairs in a [`SeriesLog`].
#[derive(Debug, Clone)]
pub struct SeriesPairs<'a> {
    text: &'a str,
    pairs: std::slice::Iter<'a, (u32, u32)>,
    /// Where the next pair's name starts in `text`.
    at: usize,
}

impl<'a> Iterator for SeriesPairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let &(name_end, value_end) = self.pairs.next()?;
        let (name_end, value_end) = (name_end as usize, value_end as usize);
        let start = std::mem::replace(&mut self.at, value_end);
        // The offsets were taken at `push`, each at the end of a whole `&str`, so they are
        // char boundaries of `text`.
        Some((&self.text[start..name_end], &self.text[name_end..value_end]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.pairs.size_hint()
    }
}

impl ExactSizeIterator for SeriesPairs<'_> {}

/// A buffer offset as stored: one batch's new series hold far less than 4 GiB of label text
/// (a request body is limited to megabytes).
fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(log: &SeriesLog, first: usize) -> Vec<(u32, Vec<(String, String)>)> {
        log.iter_from(first)
            .map(|(id, pairs)| {
                assert_eq!(pairs.len(), pairs.clone().count());
                (
                    id,
                    pairs.map(|(n, v)| (n.to_string(), v.to_string())).collect(),
                )
            })
            .collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn series_come_back_with_their_own_pairs() {
        let mut log = SeriesLog::default();
        let a = [("__name__", "up"), ("job", "flink"), ("tm", "täsk-ü")];
        let b: [(&str, &str); 0] = [];
        let c = [("__name__", "x"), ("a", "")];
        log.push(7, a);
        log.push(9, b);
        log.push(3, c);
        assert_eq!((log.len(), log.ids()), (3, &[7, 9, 3][..]));
        let want = vec![(7, owned(&a)), (9, owned(&b)), (3, owned(&c))];
        assert_eq!(collect(&log, 0), want);
        assert_eq!(collect(&log, 1), want[1..]);
        assert_eq!(collect(&log, 2), want[2..]);
        assert!(collect(&log, 3).is_empty());
        log.clear();
        assert!(log.is_empty());
        log.push(1, [("k", "v")]);
        assert_eq!(collect(&log, 0), vec![(1, owned(&[("k", "v")]))]);
    }

    #[test]
    fn a_huge_log_is_freed_on_clear() {
        let mut log = SeriesLog::default();
        let value = "v".repeat(MAX_RETAINED_TEXT + 1);
        log.push(1, [("name", value.as_str())]);
        log.clear();
        assert!(log.is_empty());
        assert_eq!(log.text.capacity(), 0);
    }
}
