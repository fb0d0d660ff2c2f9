//! An in-memory [`Querier`] over sorted series, for the promqltest runner and engine tests.

use eddy_storage::labels::matches_all;
use eddy_storage::{Labels, Matcher, Querier, Series};

use super::TestStorage;

/// Series kept sorted by labels; each series' samples sorted by time.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    series: Vec<Series>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of series held.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when no series is held.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    fn matching<'a>(
        &'a self,
        matchers: &'a [Matcher],
        mint: i64,
        maxt: i64,
    ) -> impl Iterator<Item = &'a Series> + 'a {
        self.series.iter().filter(move |s| {
            matches_all(&s.labels, matchers) && s.timestamps.iter().any(|&t| t >= mint && t <= maxt)
        })
    }
}

impl TestStorage for MemStorage {
    fn clear(&mut self) {
        self.series.clear();
    }

    fn append(&mut self, labels: Labels, samples: &[(i64, f64)]) {
        let i = match self.series.binary_search_by(|s| s.labels.cmp(&labels)) {
            Ok(i) => i,
            Err(i) => {
                self.series.insert(
                    i,
                    Series {
                        labels,
                        timestamps: Vec::new(),
                        values: Vec::new(),
                    },
                );
                i
            }
        };
        let s = &mut self.series[i];
        let mut pts: Vec<(i64, f64)> = s
            .timestamps
            .iter()
            .copied()
            .zip(s.values.iter().copied())
            .collect();
        for &(t, v) in samples {
            match pts.binary_search_by_key(&t, |p| p.0) {
                Ok(j) => pts[j].1 = v,
                Err(j) => pts.insert(j, (t, v)),
            }
        }
        s.timestamps = pts.iter().map(|p| p.0).collect();
        s.values = pts.iter().map(|p| p.1).collect();
    }

    fn querier(&mut self) -> &dyn Querier {
        self
    }
}

impl Querier for MemStorage {
    fn select(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> eddy_storage::Result<Vec<Series>> {
        Ok(self
            .matching(matchers, mint, maxt)
            .map(|s| {
                let lo = s.timestamps.partition_point(|&t| t < mint);
                let hi = s.timestamps.partition_point(|&t| t <= maxt);
                Series {
                    labels: s.labels.clone(),
                    timestamps: s.timestamps[lo..hi].to_vec(),
                    values: s.values[lo..hi].to_vec(),
                }
            })
            .collect())
    }

    fn series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> eddy_storage::Result<Vec<Labels>> {
        Ok(self
            .matching(matchers, mint, maxt)
            .map(|s| s.labels.clone())
            .collect())
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> eddy_storage::Result<Vec<String>> {
        let mut names: Vec<String> = self
            .matching(matchers, mint, maxt)
            .flat_map(|s| s.labels.iter().map(|l| l.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> eddy_storage::Result<Vec<String>> {
        let mut vals: Vec<String> = self
            .matching(matchers, mint, maxt)
            .filter_map(|s| s.labels.get(name).map(str::to_string))
            .collect();
        vals.sort();
        vals.dedup();
        Ok(vals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_filters_by_matchers_and_time() {
        let mut m = MemStorage::new();
        m.append(
            Labels::from_pairs([("__name__", "a"), ("x", "1")]),
            &[(10, 1.0), (20, 2.0), (30, 3.0)],
        );
        m.append(Labels::from_pairs([("__name__", "b")]), &[(10, 5.0)]);
        let got = m
            .select(&[Matcher::equal("__name__", "a")], 15, 30)
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].timestamps, vec![20, 30]);
        assert_eq!(got[0].values, vec![2.0, 3.0]);
        assert!(m
            .select(&[Matcher::equal("__name__", "b")], 11, 30)
            .unwrap()
            .is_empty());
        assert_eq!(m.label_names(&[], 0, 100).unwrap(), vec!["__name__", "x"]);
        m.clear();
        assert!(m.is_empty());
    }
}
