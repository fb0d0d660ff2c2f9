//! Fuzzes the text exposition parser in both dialects, and the Pushgateway path parser on the
//! same input. Any panic is a bug; errors are fine.
#![no_main]

use eddy_ingest::pushgateway::parse_grouping_path;
use eddy_ingest::text::{parse_text, TextOptions};
use eddy_storage::WriteBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else { return };
    for openmetrics in [false, true] {
        let opts = TextOptions { default_timestamp_ms: 0, openmetrics };
        let mut batch = WriteBatch::new();
        let mut meta = Vec::new();
        if let Ok(stats) = parse_text(body, &opts, &mut batch, &mut meta) {
            assert_eq!(stats.series, batch.series.len());
            assert_eq!(batch.sample_count(), batch.series.len());
        }
    }
    let _ = parse_grouping_path(body);
});
