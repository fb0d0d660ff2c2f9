//! Histograms and summaries: `_bucket{le}`/`_sum`/`_count` and `{quantile}`/`_sum`/`_count`
//! series. A second `impl` block of the request decoder.

use eddy_storage::api::stale_nan;

use super::naming::{format_float, Kind, Suffixes};
use super::proto::{expect, repeated_fixed64, Reader, Wire};
use super::{count_points, Decoder, Result};
use crate::arena::Str;

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
        let base = self.metric_name(name, unit, Kind::Other, sfx);
        let names = [
            self.suffixed(base, "_bucket"),
            self.suffixed(base, "_sum"),
            self.suffixed(base, "_count"),
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

    /// `base` + `suffix`, interned.
    fn suffixed(&mut self, base: Str<'a>, suffix: &str) -> Str<'a> {
        Str::Derived(self.arena.derive(|a, dst| {
            dst.push_str(a.get(base));
            dst.push_str(suffix);
        }))
    }

    fn histogram_point(&mut self, mut r: Reader<'a>, names: &[Str<'a>; 3]) -> Result<()> {
        self.begin_point();
        self.bufs.buckets.clear();
        self.bufs.bounds.clear();
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
                6 => repeated_fixed64(&mut r, w, "bucket_counts", at, &mut self.bufs.buckets)?,
                7 => repeated_fixed64(&mut r, w, "explicit_bounds", at, &mut self.bufs.bounds)?,
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
        let (buckets, bounds) = (&self.bufs.buckets, &self.bufs.bounds);
        if buckets.len() == bounds.len() + 1 {
            let mut cumulative = 0u64;
            for i in 0..self.bufs.bounds.len() {
                cumulative = cumulative.saturating_add(self.bufs.buckets[i]);
                let le = self.float_label(f64::from_bits(self.bufs.bounds[i]));
                self.emit(names[0], Some(("le", le)), ts, val(cumulative as f64));
            }
        } else if !buckets.is_empty() {
            self.stats.invalid_histograms += 1;
        }
        self.emit(
            names[0],
            Some(("le", Str::Borrowed("+Inf"))),
            ts,
            val(count as f64),
        );
        if let Some(s) = sum {
            self.emit(names[1], None, ts, val(s));
        }
        self.emit(names[2], None, ts, val(count as f64));
        Ok(())
    }

    /// A bucket bound or quantile as a label value: static for common values, else interned.
    fn float_label(&mut self, v: f64) -> Str<'a> {
        let mut fixed = None;
        let span = self.arena.derive(|_, dst| fixed = format_float(dst, v));
        match fixed {
            Some(s) => Str::Borrowed(s),
            None => Str::Derived(span),
        }
    }

    pub(super) fn summary(
        &mut self,
        data: Reader<'a>,
        name: &'a str,
        unit: &str,
        sfx: Suffixes,
    ) -> Result<()> {
        let base = self.metric_name(name, unit, Kind::Other, sfx);
        let names = [
            base,
            self.suffixed(base, "_sum"),
            self.suffixed(base, "_count"),
        ];
        let mut pass = data;
        while let Some((f, w, at)) = pass.field()? {
            if f != 1 {
                pass.skip(w)?;
                continue;
            }
            expect(w, Wire::Len, "summary point", at)?;
            self.summary_point(pass.message("summary point")?, &names)?;
        }
        Ok(())
    }

    /// `names`: the quantile series' name, `_sum`, `_count`.
    fn summary_point(&mut self, mut r: Reader<'a>, names: &[Str<'a>; 3]) -> Result<()> {
        self.begin_point();
        self.bufs.quantiles.clear();
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
                    self.bufs.quantiles.push((qq, qv));
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
        let quantiles = &mut self.bufs.quantiles;
        quantiles.sort_by(|a, b| a.0.total_cmp(&b.0));
        quantiles.dedup_by(|b, a| a.0.to_bits() == b.0.to_bits());
        for i in 0..self.bufs.quantiles.len() {
            let (q, v) = self.bufs.quantiles[i];
            let q = self.float_label(q);
            self.emit(names[0], Some(("quantile", q)), ts, val(v));
        }
        self.emit(names[1], None, ts, val(sum));
        self.emit(names[2], None, ts, val(count as f64));
        Ok(())
    }
}
