//! What the fuzz targets share: a batch series as plain data, to compare decoders' batches.

use eddy_storage::WriteBatch;

/// A series' labels (as emitted), timestamps and value bits.
pub type Series = (Vec<(String, String)>, Vec<i64>, Vec<u64>);

/// Series `i` of `batch` as plain data.
pub fn series(batch: &WriteBatch<'_>, i: usize) -> Series {
    let labels = batch
        .series_labels(i)
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (ts, vs) = batch.series_samples(i);
    (
        labels,
        ts.to_vec(),
        vs.iter().map(|v| v.to_bits()).collect(),
    )
}
