//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, `count_values`, `limitk`…) with
//! `by`/`without` grouping, hashed once per input series and evaluated step by step.

use std::collections::HashMap;

use eddy_storage::labels::METRIC_NAME;
use eddy_storage::{Label, Labels};

use super::{format_g, projection, EvalResult, Evaluator, OutBuilder, Series, StepCursor, Val};
use crate::ast::{AggregateExpr, AggregateOp};
use crate::functions::{kahan_inc, StrArg};
use crate::value::QueryError;

/// Running state of one group at one step.
#[derive(Debug, Clone, Default)]
struct Group {
    seen: bool,
    value: f64,
    mean: f64,
    kahan: f64,
    count: f64,
    incremental_mean: bool,
    drop_name: bool,
    values: Vec<f64>,
}

/// The grouping labels of `labels`: `by` keeps the listed labels, `without` drops them and
/// the metric name.
pub(crate) fn group_labels(labels: &Labels, grouping: &[String], without: bool) -> Labels {
    let kept: Vec<Label> = labels
        .iter()
        .filter(|l| in_group(l, grouping, without))
        .cloned()
        .collect();
    Labels::from_sorted_unchecked(kept)
}

/// True when label `l` is one of the grouping labels (see [`group_labels`]).
fn in_group(l: &Label, grouping: &[String], without: bool) -> bool {
    let listed = grouping.contains(&l.name);
    if without {
        !listed && l.name != METRIC_NAME
    } else {
        listed
    }
}

/// Writes the grouping labels of `labels` into `key` as `name 0xff value 0xff …`: equal keys
/// mean equal group label sets (0xff never occurs in UTF-8), and building one allocates
/// nothing, where a [`Labels`] costs two allocations per label.
fn group_key(key: &mut Vec<u8>, labels: &Labels, grouping: &[String], without: bool) {
    key.clear();
    for l in labels.iter().filter(|l| in_group(l, grouping, without)) {
        key.extend_from_slice(l.name.as_bytes());
        key.push(0xff);
        key.extend_from_slice(l.value.as_bytes());
        key.push(0xff);
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_aggregate(&mut self, a: &AggregateExpr) -> EvalResult<Val> {
        if a.op == AggregateOp::CountValues {
            return self.count_values(a);
        }
        let param = match (&a.param, a.op.takes_param()) {
            (Some(p), true) => Some(self.eval_scalar(p)?),
            _ => None,
        };
        let input = self.eval_aggregated(a)?;
        let mut group_of = Vec::with_capacity(input.len());
        // Group label sets are built once per group, not once per input series.
        let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut group_label_sets: Vec<Labels> = Vec::new();
        let mut key = Vec::new();
        for s in &input {
            group_key(&mut key, &s.labels, &a.grouping, a.without);
            let g = match index.get(key.as_slice()) {
                Some(&g) => g,
                None => {
                    let g = group_label_sets.len();
                    group_label_sets.push(group_labels(&s.labels, &a.grouping, a.without));
                    index.insert(key.clone(), g);
                    g
                }
            };
            group_of.push(g);
        }
        match a.op {
            AggregateOp::Topk
            | AggregateOp::Bottomk
            | AggregateOp::Limitk
            | AggregateOp::LimitRatio => {
                let param = param.unwrap_or_default();
                self.aggregate_k(a.op, &param, input, &group_of, group_label_sets.len())
            }
            _ => self.aggregate_simple(a, param, input, &group_of, group_label_sets),
        }
    }

    /// Evaluates the aggregated expression, its selector read projected when
    /// [`projection::plan`] finds that safe.
    fn eval_aggregated(&mut self, a: &AggregateExpr) -> EvalResult<Vec<Series>> {
        let Some(planned) = projection::plan(a) else {
            return self.eval_vector(&a.expr);
        };
        self.projected.push(planned);
        let res = self.eval_vector(&a.expr);
        self.projected.pop();
        res
    }

    fn aggregate_simple(
        &mut self,
        a: &AggregateExpr,
        param: Option<Vec<f64>>,
        input: Vec<Series>,
        group_of: &[usize],
        group_labels: Vec<Labels>,
    ) -> EvalResult<Val> {
        let op = a.op;
        if op == AggregateOp::Quantile {
            if let Some(p) = &param {
                if p.iter().any(|q| q.is_nan()) {
                    self.warn(
                        "PromQL warning: quantile value should be between 0 and 1, got NaN".into(),
                    );
                }
                let max = p
                    .iter()
                    .copied()
                    .filter(|q| !q.is_nan())
                    .fold(f64::NEG_INFINITY, f64::max);
                let min = p
                    .iter()
                    .copied()
                    .filter(|q| !q.is_nan())
                    .fold(f64::INFINITY, f64::min);
                if max > 1.0 {
                    self.warn(format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {}",
                        format_g(max)
                    ));
                }
                if min < 0.0 {
                    self.warn(format!(
                        "PromQL warning: quantile value should be between 0 and 1, got {}",
                        format_g(min)
                    ));
                }
            }
        }
        let mut groups = vec![Group::default(); group_labels.len()];
        let steps = self.nsteps();
        let mut out: Vec<Series> = group_labels
            .into_iter()
            .map(|labels| Series {
                labels,
                drop_name: false,
                points: Vec::with_capacity(steps),
            })
            .collect();
        let mut cursor = StepCursor::new(input.len());
        let mut vals = Vec::new();
        for (step, ts) in self.step_times().enumerate() {
            self.check()?;
            cursor.gather(&input, ts, &mut vals);
            groups.iter_mut().for_each(|g| g.seen = false);
            for &(si, f) in &vals {
                let g = &mut groups[group_of[si]];
                let dn = input[si].drop_name;
                if !g.seen {
                    g.seen = true;
                    g.value = f;
                    g.mean = f;
                    g.kahan = 0.0;
                    g.count = 1.0;
                    g.incremental_mean = false;
                    g.drop_name = dn;
                    match op {
                        AggregateOp::Stddev | AggregateOp::Stdvar => {
                            g.value = if f.is_nan() || f.is_infinite() {
                                f64::NAN
                            } else {
                                0.0
                            };
                        }
                        AggregateOp::Quantile => {
                            g.values.clear();
                            g.values.push(f);
                        }
                        AggregateOp::Group => g.value = 1.0,
                        _ => {}
                    }
                    continue;
                }
                g.drop_name |= dn;
                add_to_group(op, g, f);
            }
            for (gi, g) in groups.iter_mut().enumerate() {
                if !g.seen {
                    continue;
                }
                let v = match op {
                    AggregateOp::Avg if g.incremental_mean => g.mean + g.kahan,
                    AggregateOp::Avg => g.value / g.count + g.kahan / g.count,
                    AggregateOp::Count => g.count,
                    AggregateOp::Stdvar => g.value / g.count,
                    AggregateOp::Stddev => (g.value / g.count).sqrt(),
                    AggregateOp::Quantile => {
                        let q = param.as_ref().map_or(f64::NAN, |p| p[step]);
                        crate::functions::quantile(q, &mut g.values)
                    }
                    AggregateOp::Sum => g.value + g.kahan,
                    _ => g.value,
                };
                out[gi].points.push((ts, v));
                out[gi].drop_name = g.drop_name;
            }
        }
        out.retain(|s| !s.points.is_empty());
        Ok(Val::Vector(out))
    }

    /// `topk`, `bottomk`, `limitk`, `limit_ratio`: keep input series (and their labels).
    fn aggregate_k(
        &mut self,
        op: AggregateOp,
        param: &[f64],
        input: Vec<Series>,
        group_of: &[usize],
        ngroups: usize,
    ) -> EvalResult<Val> {
        let max = param.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = param.iter().copied().fold(f64::INFINITY, f64::min);
        let any_nan = param.iter().any(|p| p.is_nan());
        if op == AggregateOp::LimitRatio {
            if any_nan {
                return Err(QueryError::Execution("Ratio value is NaN".into()));
            }
            if max == 0.0 && min == 0.0 {
                return Ok(Val::Vector(Vec::new()));
            }
            if max > 1.0 {
                self.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to 1",
                    format_g(max)
                ));
            }
            if min < -1.0 {
                self.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to -1",
                    format_g(min)
                ));
            }
        } else {
            if any_nan {
                return Err(QueryError::Execution("Parameter value is NaN".into()));
            }
            if max < 1.0 {
                return Ok(Val::Vector(Vec::new()));
            }
            if min <= i64::MIN as f64 {
                return Err(QueryError::Execution(format!(
                    "Scalar value {} underflows int64",
                    format_g(min)
                )));
            }
            if max >= i64::MAX as f64 {
                return Err(QueryError::Execution(format!(
                    "Scalar value {} overflows int64",
                    format_g(max)
                )));
            }
        }
        let offsets: Vec<f64> = if op == AggregateOp::LimitRatio {
            input.iter().map(|s| ratio_offset(&s.labels)).collect()
        } else {
            Vec::new()
        };
        let mut heaps: Vec<Vec<(f64, usize)>> = vec![Vec::new(); ngroups];
        let mut seen = vec![false; ngroups];
        let mut out = OutBuilder::default();
        let mut slots: Vec<Option<usize>> = vec![None; input.len()];
        let mut cursor = StepCursor::new(input.len());
        let mut vals = Vec::new();
        for (step, ts) in self.step_times().enumerate() {
            self.check()?;
            cursor.gather(&input, ts, &mut vals);
            let p = param[step];
            let k = (p as i64).min(input.len() as i64);
            if op != AggregateOp::LimitRatio && k < 1 {
                continue;
            }
            if op == AggregateOp::LimitRatio && p == 0.0 {
                continue;
            }
            let ratio = p.clamp(-1.0, 1.0);
            seen.iter_mut().for_each(|s| *s = false);
            for &(si, f) in &vals {
                let g = group_of[si];
                let heap = &mut heaps[g];
                if !seen[g] {
                    seen[g] = true;
                    heap.clear();
                }
                let k = k as usize;
                match op {
                    AggregateOp::Topk => {
                        if heap.len() < k {
                            heap_push(heap, (f, si), less_topk);
                        } else if heap[0].0 < f || (heap[0].0.is_nan() && !f.is_nan()) {
                            heap[0] = (f, si);
                            if k > 1 {
                                heap_fix_root(heap, less_topk);
                            }
                        }
                    }
                    AggregateOp::Bottomk => {
                        if heap.len() < k {
                            heap_push(heap, (f, si), less_bottomk);
                        } else if heap[0].0 > f || (heap[0].0.is_nan() && !f.is_nan()) {
                            heap[0] = (f, si);
                            if k > 1 {
                                heap_fix_root(heap, less_bottomk);
                            }
                        }
                    }
                    AggregateOp::Limitk => {
                        if heap.len() < k {
                            heap_push(heap, (f, si), less_topk);
                        }
                    }
                    _ => {
                        let off = offsets[si];
                        if (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio) {
                            heap_push(heap, (f, si), less_topk);
                        }
                    }
                }
            }
            for g in 0..ngroups {
                if !seen[g] {
                    continue;
                }
                let heap = &mut heaps[g];
                match op {
                    // Sort descending by value, NaN last.
                    AggregateOp::Topk => heap.sort_by(|a, b| cmp_desc(a.0, b.0, less_topk)),
                    AggregateOp::Bottomk => heap.sort_by(|a, b| cmp_desc(a.0, b.0, less_bottomk)),
                    _ => {}
                }
                for &(f, si) in heap.iter() {
                    let slot = match slots[si] {
                        Some(s) => s,
                        None => {
                            let s = out.slot(&input[si].labels, input[si].drop_name);
                            slots[si] = Some(s);
                            s
                        }
                    };
                    out.push(slot, ts, f)?;
                }
            }
        }
        Ok(Val::Vector(out.finish()))
    }

    fn count_values(&mut self, a: &AggregateExpr) -> EvalResult<Val> {
        let Some(param) = a.param.as_deref().and_then(StrArg::of) else {
            return Err(QueryError::Execution(
                "count_values requires a string parameter".into(),
            ));
        };
        // Prometheus prints the literal (Go-quoted, `\xNN` for bytes that are not UTF-8).
        let Some(label) = param.label_name().map(str::to_string) else {
            return Err(QueryError::Execution(format!(
                "invalid label name {}",
                param.go_quoted()
            )));
        };
        let mut grouping = a.grouping.clone();
        if !a.without {
            grouping.push(label.clone());
        }
        let input = self.eval_vector(&a.expr)?;
        let mut cursor = StepCursor::new(input.len());
        let mut vals = Vec::new();
        let mut out = OutBuilder::default();
        let mut counts: Vec<(usize, f64)> = Vec::new();
        for ts in self.step_times() {
            self.check()?;
            cursor.gather(&input, ts, &mut vals);
            counts.clear();
            for &(si, f) in &vals {
                let mut l = input[si].labels.clone();
                l.set(&label, &crate::format::float_string(f));
                let gl = group_labels(&l, &grouping, a.without);
                let slot = out.slot(&gl, false);
                match counts.iter_mut().find(|c| c.0 == slot) {
                    Some(c) => c.1 += 1.0,
                    None => counts.push((slot, 1.0)),
                }
            }
            for &(slot, c) in &counts {
                out.push(slot, ts, c)?;
            }
        }
        Ok(Val::Vector(out.finish()))
    }
}

/// Adds one more float to a group that has already seen a sample at this step.
fn add_to_group(op: AggregateOp, g: &mut Group, f: f64) {
    match op {
        AggregateOp::Sum => (g.value, g.kahan) = kahan_inc(f, g.value, g.kahan),
        AggregateOp::Avg => {
            g.count += 1.0;
            if !g.incremental_mean {
                let (nv, nc) = kahan_inc(f, g.value, g.kahan);
                if !nv.is_infinite() {
                    (g.value, g.kahan) = (nv, nc);
                    return;
                }
                g.incremental_mean = true;
                g.mean = g.value / (g.count - 1.0);
                g.kahan /= g.count - 1.0;
            }
            let q = (g.count - 1.0) / g.count;
            (g.mean, g.kahan) = kahan_inc(f / g.count, q * g.mean, q * g.kahan);
        }
        AggregateOp::Max if g.value < f || g.value.is_nan() => g.value = f,
        AggregateOp::Min if g.value > f || g.value.is_nan() => g.value = f,
        AggregateOp::Count => g.count += 1.0,
        AggregateOp::Stddev | AggregateOp::Stdvar => {
            g.count += 1.0;
            let delta = f - g.mean;
            g.mean += delta / g.count;
            g.value += delta * (f - g.mean);
        }
        AggregateOp::Quantile => g.values.push(f),
        _ => {}
    }
}

/// `limit_ratio`'s deterministic sampling offset in [0, 1): the xxhash64 of the label set
/// (Prometheus `labels.Hash()`) divided by `u64::MAX`.
fn ratio_offset(labels: &Labels) -> f64 {
    let mut buf = Vec::with_capacity(128);
    for l in labels.iter() {
        buf.extend_from_slice(l.name.as_bytes());
        buf.push(0xff);
        buf.extend_from_slice(l.value.as_bytes());
        buf.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&buf, 0) as f64 / u64::MAX as f64
}

/// Min-heap order of `topk` (Go's `vectorByValueHeap`): NaN sorts first.
fn less_topk(a: f64, b: f64) -> bool {
    a.is_nan() || a < b
}

/// Order of `bottomk`'s heap (`vectorByReverseValueHeap`): NaN first, then descending.
fn less_bottomk(a: f64, b: f64) -> bool {
    a.is_nan() || a > b
}

/// Sorts by `less` reversed (what `sort.Sort(sort.Reverse(heap))` does).
fn cmp_desc(a: f64, b: f64, less: fn(f64, f64) -> bool) -> std::cmp::Ordering {
    if less(b, a) {
        std::cmp::Ordering::Less
    } else if less(a, b) {
        std::cmp::Ordering::Greater
    } else {
        std::cmp::Ordering::Equal
    }
}

/// `container/heap.Push` semantics (so ties resolve like Prometheus).
fn heap_push(h: &mut Vec<(f64, usize)>, x: (f64, usize), less: fn(f64, f64) -> bool) {
    h.push(x);
    let mut j = h.len() - 1;
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h[j].0, h[i].0) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

/// `container/heap.Fix(h, 0)` after replacing the root.
fn heap_fix_root(h: &mut [(f64, usize)], less: fn(f64, f64) -> bool) {
    let n = h.len();
    let mut i = 0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(h[j1 + 1].0, h[j1].0) {
            j = j1 + 1;
        }
        if !less(h[j].0, h[i].0) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_by_and_without() {
        let l = Labels::from_pairs([("__name__", "m"), ("job", "a"), ("instance", "1")]);
        assert_eq!(
            group_labels(&l, &["job".into()], false),
            Labels::from_pairs([("job", "a")])
        );
        assert_eq!(
            group_labels(&l, &["job".into()], true),
            Labels::from_pairs([("instance", "1")])
        );
        assert_eq!(
            group_labels(&l, &["__name__".into()], false),
            Labels::from_pairs([("__name__", "m")])
        );
    }

    #[test]
    fn topk_heap_keeps_largest() {
        let mut h = Vec::new();
        for (i, v) in [3.0, 1.0, 4.0, 1.5, 9.0].into_iter().enumerate() {
            if h.len() < 2 {
                heap_push(&mut h, (v, i), less_topk);
            } else if h[0].0 < v {
                h[0] = (v, i);
                heap_fix_root(&mut h, less_topk);
            }
        }
        h.sort_by(|a, b| cmp_desc(a.0, b.0, less_topk));
        assert_eq!(h, vec![(9.0, 4), (4.0, 2)]);
    }
}
