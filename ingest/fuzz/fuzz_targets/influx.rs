//! Fuzzes the InfluxDB line protocol decoder: any body must decode or fail without panicking,
//! and the stats must agree with the batch.
#![no_main]

use eddy_ingest::influx::{parse_body, FlinkNames, InfluxOptions, InfluxScratch};
use eddy_storage::WriteBatch;
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
    if let Ok(stats) = parse_body(body, &opts, &mut scratch, &mut batch) {
        assert_eq!(stats.samples as usize, batch.sample_count());
        assert!(stats.errors.len() as u64 <= stats.bad_lines);
    }
});
