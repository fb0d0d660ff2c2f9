//! Fuzzes the InfluxDB line protocol decoder: any body must decode or fail without panicking,
//! and the stats must agree with the batch. The keyed decoder (the server's, with the
//! label-run memory) must give back the plain decoder's batch exactly, with nothing known and
//! after remembering its own misses, and `parse_series_again` must rebuild every hit.
#![no_main]

use std::collections::HashMap;

use eddy_ingest::influx::{
    parse_body, parse_body_keyed, parse_series_again, FlinkNames, InfluxOptions, InfluxScratch,
    KeyedLines,
};
use eddy_ingest::key_cache::RunKeyMap;
use eddy_ingest_fuzz::{series, Series};
use eddy_storage::{KeyScratch, SeriesKey, WriteBatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options so that every naming path is reached.
    let (flags, body) = data.split_first().map_or((0, data), |(f, b)| (*f, b));
    let opts = InfluxOptions {
        flink_names: match flags % 3 {
            0 => FlinkNames::Auto,
            1 => FlinkNames::On,
            _ => FlinkNames::Off,
        },
        flink_sanitize_tag_values: flags & 4 != 0,
        prom_names: flags & 8 != 0,
        extra_labels: vec![("db".into(), "fuzz".into())],
        ..Default::default()
    };
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let Ok(stats) = parse_body(body, &opts, &mut scratch, &mut batch) else {
        return;
    };
    assert_eq!(stats.samples as usize, batch.sample_count());
    assert!(stats.errors.len() as u64 <= stats.bad_lines);
    let want: Vec<Series> = (0..batch.series.len()).map(|i| series(&batch, i)).collect();
    let summary = |s: &eddy_ingest::influx::InfluxStats| {
        (
            s.lines,
            s.bad_lines,
            s.samples,
            s.string_fields_skipped,
            s.error_message(),
        )
    };

    let mut known = RunKeyMap::default();
    let mut keyed = KeyedLines::default();
    let mut labels_of: HashMap<SeriesKey, Vec<(String, String)>> = HashMap::new();
    let mut key_scratch = KeyScratch::default();
    for round in 0..2 {
        let mut scratch = InfluxScratch::new();
        let mut got = WriteBatch::new();
        let stats_k = parse_body_keyed(body, &opts, &mut scratch, &mut got, &known, &mut keyed)
            .expect("the keyed decoder accepts what the plain one accepts");
        assert_eq!(summary(&stats_k), summary(&stats));
        assert_eq!(got.series.len(), want.len());
        if round == 0 {
            assert!(keyed.hits.is_empty());
        }
        for (i, w) in want.iter().enumerate() {
            let (labels, ts, vs) = series(&got, i);
            assert_eq!((&ts, &vs), (&w.1, &w.2));
            match got.series[i].key.filter(|_| labels.is_empty()) {
                Some(key) => assert_eq!(&labels_of[&key], &w.0),
                None => assert_eq!(&labels, &w.0),
            }
        }
        let which: Vec<u32> = keyed.hits.iter().map(|h| h.0).collect();
        let mut again_scratch = InfluxScratch::new();
        let mut again = WriteBatch::new();
        let complete =
            parse_series_again(body, &opts, &mut again_scratch, &mut again, &keyed, &which)
                .expect("decoding hits again");
        assert!(complete);
        for (k, &i) in which.iter().enumerate() {
            assert_eq!(series(&again, k), want[i as usize]);
        }
        for &(i, hash) in &keyed.misses {
            if let Ok(key) = SeriesKey::of(got.series_labels(i as usize), &mut key_scratch) {
                known.insert(hash, key);
                labels_of.insert(key, want[i as usize].0.clone());
            }
        }
    }
});
