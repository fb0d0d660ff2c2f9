//! Fuzzes the OTLP metrics decoder: any body must decode or fail without panicking, and a
//! failed request must leave the batch and the delta accumulator untouched.
#![no_main]

use eddy_ingest::otlp::{decode_metrics_request, DeltaAccumulator, OtlpOptions};
use eddy_storage::WriteBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = OtlpOptions::default();
    let mut acc = DeltaAccumulator::default();
    let mut batch = WriteBatch::new();
    // Decode twice so that the second pass exercises accumulated delta state.
    for _ in 0..2 {
        let before = (batch.series.len(), acc.len());
        match decode_metrics_request(data, &opts, &mut acc, &mut batch) {
            Ok(_) => {}
            Err(_) => assert_eq!((batch.series.len(), acc.len()), before),
        }
    }
});
