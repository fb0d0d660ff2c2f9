//! Histograms and summaries: `_bucket{le}`/`_sum`/`_count` and `{quantile}`/`_sum`/`_count`
//! series. A second `impl` block of the request decoder.

use std::borrow::Cow;

use eddy_storage::api::stale_nan;

use super::naming::{self, format_float, Kind, Suffixes};
use super::proto::{expect, repeated_fixed64, Reader, Wire};
use super::{count_points, Decoder, Result};

impl<'a> Decoder<'a, '_> {
    pub(super) fn histogram(
        &mut self,
        data: Reader<'a>,
        name: &'a str,
        unit: &str,
        sfx: Suffixes,
    ) -> Result<()> {
        let mut temporality = 0;
        let mut pass = data;
        while let Some((f, w, at)) = pass.field()? {
            match f {
                2 => {
                    temporality = expect(w, Wire::Varint, "temporality", at)
                        .and_then(|_| pass.varint("temporality"))?
                }
                _ => pass.skip(w)?,
            }
        }
        if temporality != 2 {
            // Delta histograms would need bucket-wise accumulation; Flink never sends them.
            self.stats.points_dropped += count_points(data)?;
            return Ok(());
        }
        let base = naming::metric_name(name, unit, Kind::Other, sfx);
        let names = [
            format!("{base}_bucket"),
            format!("{base}_sum"),
            format!("{base}_count"),
        ];
        let mut pass = data;
        while let Some((f, w, at)) = pass.field()? {
            if f != 1 {
                pass.skip(w)?;
                continue;
            }
            expect(w, Wire::Len, "histogram point", at)?;
            self.histogram_point(pass.message("histogram point")?, &names)?;
        }
        Ok(())
    }

    fn histogram_point(&mut self, mut r: Reader<'a>, names: &[String; 3]) -> Result<()> {
        self.begin_point();
        self.buckets.clear();
        self.bounds.clear();
        let (mut time, mut count, mut sum, mut flags) = (0, 0, None, 0);
        while let Some((f, w, at)) = r.field()? {
            match f {
                9 => self.attribute(&mut r, w, at, Some("le"))?,
                3 => {
                    time = expect(w, Wire::I64, "time_unix_nano", at)
                        .and_then(|_| r.fixed64("time"))?
                }
                4 => count = expect(w, Wire::I64, "count", at).and_then(|_| r.fixed64("count"))?,
                5 => sum = Some(expect(w, Wire::I64, "sum", at).and_then(|_| r.f64("sum"))?),
                6 => repeated_fixed64(&mut r, w, "bucket_counts", at, &mut self.buckets)?,
                7 => repeated_fixed64(&mut r, w, "explicit_bounds", at, &mut self.bounds)?,
                10 => {
                    flags = expect(w, Wire::Varint, "flags", at).and_then(|_| r.varint("flags"))?
                }
                _ => r.skip(w)?,
            }
        }
        self.stats.data_points += 1;
        self.finish_labels();
        let ts = self.ts_ms(time);
        let stale = flags & 1 != 0;
        let val = |v: f64| if stale { stale_nan() } else { v };
        if self.buckets.len() == self.bounds.len() + 1 {
            let mut cumulative = 0u64;
            for i in 0..self.bounds.len() {
                cumulative = cumulative.saturating_add(self.buckets[i]);
                let le = format_float(f64::from_bits(self.bounds[i]));
                self.emit(
                    Cow::Owned(names[0].clone()),
                    Some(("le", le)),
                    ts,
                    val(cumulative as f64),
                );
            }
        } else if !self.buckets.is_empty() {
            self.stats.invalid_histograms += 1;
        }
        self.emit(
            Cow::Owned(names[0].clone()),
            Some(("le", Cow::Borrowed("+Inf"))),
            ts,
            val(count as f64),
        );
        if let Some(s) = sum {
            self.emit(Cow::Owned(names[1].clone()), None, ts, val(s));
        }
        self.emit(Cow::Owned(names[2].clone()), None, ts, val(count as f64));
        Ok(())
    }

    pub(super) fn summary(
        &mut self,
        data: Reader<'a>,
        name: &'a str,
        unit: &str,
        sfx: Suffixes,
    ) -> Result<()> {
        let base = naming::metric_name(name, unit, Kind::Other, sfx);
        let names = [format!("{base}_sum"), format!("{base}_count")];
        let mut pass = data;
        while let Some((f, w, at)) = pass.field()? {
            if f != 1 {
                pass.skip(w)?;
                continue;
            }
            expect(w, Wire::Len, "summary point", at)?;
            self.summary_point(pass.message("summary point")?, &base, &names)?;
        }
        Ok(())
    }

    // `&Cow` (not `&str`): cloning keeps a borrowed name borrowed for `'a`.
    #[allow(clippy::ptr_arg)]
    fn summary_point(
        &mut self,
        mut r: Reader<'a>,
        base: &Cow<'a, str>,
        names: &[String; 2],
    ) -> Result<()> {
        self.begin_point();
        self.quantiles.clear();
        let (mut time, mut count, mut sum, mut flags) = (0, 0, 0.0, 0);
        while let Some((f, w, at)) = r.field()? {
            match f {
                7 => self.attribute(&mut r, w, at, Some("quantile"))?,
                3 => {
                    time = expect(w, Wire::I64, "time_unix_nano", at)
                        .and_then(|_| r.fixed64("time"))?
                }
                4 => count = expect(w, Wire::I64, "count", at).and_then(|_| r.fixed64("count"))?,
                5 => sum = expect(w, Wire::I64, "sum", at).and_then(|_| r.f64("sum"))?,
                6 => {
                    expect(w, Wire::Len, "quantile_values", at)?;
                    let mut q = r.message("quantile_values")?;
                    let (mut qq, mut qv) = (0.0, 0.0);
                    while let Some((f, w, at)) = q.field()? {
                        match f {
                            1 => {
                                qq = expect(w, Wire::I64, "quantile", at)
                                    .and_then(|_| q.f64("quantile"))?
                            }
                            2 => {
                                qv = expect(w, Wire::I64, "value", at)
                                    .and_then(|_| q.f64("value"))?
                            }
                            _ => q.skip(w)?,
                        }
                    }
                    self.quantiles.push((qq, qv));
                }
                8 => {
                    flags = expect(w, Wire::Varint, "flags", at).and_then(|_| r.varint("flags"))?
                }
                _ => r.skip(w)?,
            }
        }
        self.stats.data_points += 1;
        self.finish_labels();
        let ts = self.ts_ms(time);
        let stale = flags & 1 != 0;
        let val = |v: f64| if stale { stale_nan() } else { v };
        // Lowest quantile first; Flink repeats quantile 1, keep the first of equal quantiles.
        self.quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.quantiles
            .dedup_by(|b, a| a.0.to_bits() == b.0.to_bits());
        for i in 0..self.quantiles.len() {
            let (q, v) = self.quantiles[i];
            self.emit(
                base.clone(),
                Some(("quantile", format_float(q))),
                ts,
                val(v),
            );
        }
        self.emit(Cow::Owned(names[0].clone()), None, ts, val(sum));
        self.emit(Cow::Owned(names[1].clone()), None, ts, val(count as f64));
        Ok(())
    }
}
