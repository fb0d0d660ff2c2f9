//! Fuzzes the OTLP metrics decoder: any body must decode or fail without panicking, a failed
//! request must leave the batch and the delta accumulator untouched, and a decoded one must
//! add one series per counted sample.
#![no_main]

use eddy_ingest::otlp::{decode_metrics_request, DeltaAccumulator, OtlpOptions, OtlpScratch};
use eddy_storage::WriteBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let opts = OtlpOptions::default();
    let mut acc = DeltaAccumulator::default();
    // The batch borrows each request's scratch, so two decodes into it need two scratches.
    let mut scratches = [OtlpScratch::new(), OtlpScratch::new()];
    let mut batch = WriteBatch::new();
    // Decode twice so that the second pass exercises accumulated delta state.
    for scratch in scratches.iter_mut() {
        let before = (batch.series.len(), acc.len());
        match decode_metrics_request(data, &opts, &mut acc, scratch, &mut batch) {
            Ok(stats) => assert_eq!(batch.series.len() - before.0, stats.samples as usize),
            Err(_) => assert_eq!((batch.series.len(), acc.len()), before),
        }
    }
});
