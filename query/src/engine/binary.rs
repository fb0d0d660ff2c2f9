//! Binary operators: scalar/scalar, vector/scalar and vector/vector with `on`/`ignoring`,
//! `group_left`/`group_right`, `bool`, and the set operators `and`/`or`/`unless`.

use std::collections::HashMap;

use eddy_storage::labels::METRIC_NAME;
use eddy_storage::Labels;

use super::{labels_string, EvalResult, Evaluator, OutBuilder, Series, StepCursor, Val};
use crate::ast::{BinaryExpr, BinaryOp, Cardinality, VectorMatching};
use crate::value::QueryError;

/// Applies `op` to two floats. Returns the value and whether a comparison keeps the sample.
#[inline]
pub(crate) fn apply_op(op: BinaryOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinaryOp::Add => (l + r, true),
        BinaryOp::Sub => (l - r, true),
        BinaryOp::Mul => (l * r, true),
        BinaryOp::Div => (l / r, true),
        BinaryOp::Mod => (l % r, true),
        BinaryOp::Pow => (l.powf(r), true),
        BinaryOp::Atan2 => (l.atan2(r), true),
        BinaryOp::Eq => (l, l == r),
        BinaryOp::Ne => (l, l != r),
        BinaryOp::Gt => (l, l > r),
        BinaryOp::Lt => (l, l < r),
        BinaryOp::Ge => (l, l >= r),
        BinaryOp::Le => (l, l <= r),
        BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => (f64::NAN, false),
    }
}

/// True for operators whose result is no longer "the same metric" (the name is dropped).
fn changes_metric(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Add
            | BinaryOp::Sub
            | BinaryOp::Mul
            | BinaryOp::Div
            | BinaryOp::Mod
            | BinaryOp::Pow
            | BinaryOp::Atan2
    )
}

impl Evaluator<'_> {
    pub(crate) fn eval_binary(&mut self, b: &BinaryExpr) -> EvalResult<Val> {
        let lhs = self.eval(&b.lhs)?;
        let rhs = self.eval(&b.rhs)?;
        match (lhs, rhs) {
            (Val::Scalar(mut l), Val::Scalar(r)) => {
                for (x, y) in l.iter_mut().zip(r) {
                    let (v, keep) = apply_op(b.op, *x, y);
                    *x = if b.op.is_comparison() {
                        f64::from(u8::from(keep))
                    } else {
                        v
                    };
                }
                Ok(Val::Scalar(l))
            }
            (Val::Vector(v), Val::Scalar(s)) => {
                Ok(Val::Vector(self.vector_scalar(b, v, &s, false)))
            }
            (Val::Scalar(s), Val::Vector(v)) => Ok(Val::Vector(self.vector_scalar(b, v, &s, true))),
            (Val::Vector(l), Val::Vector(r)) => {
                let default = VectorMatching {
                    card: if b.op.is_set() {
                        Cardinality::ManyToMany
                    } else {
                        Cardinality::OneToOne
                    },
                    on: false,
                    labels: Vec::new(),
                    include: Vec::new(),
                };
                let matching = b.matching.as_ref().unwrap_or(&default);
                if b.op.is_set() {
                    self.vector_set(b.op, matching, l, r).map(Val::Vector)
                } else {
                    self.vector_vector(b, matching, l, r).map(Val::Vector)
                }
            }
            _ => Err(QueryError::Execution(format!(
                "binary operator {} not defined between these operand types",
                b.op.as_str()
            ))),
        }
    }

    /// Vector/scalar operation, in place; `swapped` when the scalar is on the left.
    fn vector_scalar(
        &mut self,
        b: &BinaryExpr,
        mut v: Vec<Series>,
        s: &[f64],
        swapped: bool,
    ) -> Vec<Series> {
        let start = self.start;
        let step = self.step;
        // A literal (`x > 0`, the usual case) has one value on every step, so the per-point
        // step lookup, a division, is skipped (it was a third of the operator's cost).
        let constant = s
            .first()
            .copied()
            .filter(|c| s.iter().all(|x| x.to_bits() == c.to_bits()));
        for series in &mut v {
            series.points.retain_mut(|p| {
                let sv = match constant {
                    Some(c) => c,
                    None => s[((p.0 - start) / step) as usize],
                };
                let (l, r) = if swapped { (sv, p.1) } else { (p.1, sv) };
                let (mut val, keep) = apply_op(b.op, l, r);
                if b.op.is_comparison() && swapped {
                    // The vector element's value is kept even when it is on the right.
                    val = r;
                }
                if b.return_bool {
                    p.1 = f64::from(u8::from(keep));
                    return true;
                }
                p.1 = val;
                keep
            });
            if changes_metric(b.op) || b.return_bool {
                series.drop_name = true;
            }
        }
        v.retain(|s| !s.points.is_empty());
        v
    }

    /// Assigns every series of both sides an ordinal of its matching signature.
    fn signatures<'a>(
        matching: &VectorMatching,
        l: &'a [Series],
        r: &'a [Series],
    ) -> (Vec<u32>, Vec<u32>, usize) {
        // Keys borrow the series' label strings (cloning them was most of this function).
        let mut ids: HashMap<Vec<(&str, &str)>, u32> = HashMap::new();
        let mut sig = |labels: &'a Labels| -> u32 {
            let key: Vec<(&str, &str)> = labels
                .iter()
                .filter(|lb| {
                    if matching.on {
                        matching.labels.contains(&lb.name)
                    } else {
                        lb.name != METRIC_NAME && !matching.labels.contains(&lb.name)
                    }
                })
                .map(|lb| (lb.name.as_str(), lb.value.as_str()))
                .collect();
            let n = ids.len() as u32;
            *ids.entry(key).or_insert(n)
        };
        let ls = l.iter().map(|s| sig(&s.labels)).collect();
        let rs = r.iter().map(|s| sig(&s.labels)).collect();
        (ls, rs, ids.len())
    }

    /// `and`, `or`, `unless`.
    fn vector_set(
        &mut self,
        op: BinaryOp,
        m: &VectorMatching,
        l: Vec<Series>,
        r: Vec<Series>,
    ) -> EvalResult<Vec<Series>> {
        let (lsig, rsig, nsig) = Self::signatures(m, &l, &r);
        let (mut lc, mut rc) = (StepCursor::new(l.len()), StepCursor::new(r.len()));
        let (mut lv, mut rv) = (Vec::new(), Vec::new());
        let mut present = vec![false; nsig];
        // Output slots: left series keep their index; right series follow.
        let mut out: Vec<Series> = l
            .iter()
            .chain(r.iter())
            .map(|s| Series {
                labels: s.labels.clone(),
                drop_name: s.drop_name,
                points: Vec::new(),
            })
            .collect();
        let nl = l.len();
        for ts in self.step_times() {
            self.check()?;
            lc.gather(&l, ts, &mut lv);
            rc.gather(&r, ts, &mut rv);
            present.iter_mut().for_each(|p| *p = false);
            match op {
                BinaryOp::And => {
                    rv.iter()
                        .for_each(|&(i, _)| present[rsig[i] as usize] = true);
                    for &(i, v) in &lv {
                        if present[lsig[i] as usize] {
                            out[i].points.push((ts, v));
                        }
                    }
                }
                BinaryOp::Unless => {
                    rv.iter()
                        .for_each(|&(i, _)| present[rsig[i] as usize] = true);
                    for &(i, v) in &lv {
                        if !present[lsig[i] as usize] {
                            out[i].points.push((ts, v));
                        }
                    }
                }
                _ => {
                    for &(i, v) in &lv {
                        present[lsig[i] as usize] = true;
                        out[i].points.push((ts, v));
                    }
                    for &(i, v) in &rv {
                        if !present[rsig[i] as usize] {
                            out[nl + i].points.push((ts, v));
                        }
                    }
                }
            }
        }
        out.retain(|s| !s.points.is_empty());
        // `or` can combine two series with one label set (e.g. the same series on both sides
        // at different steps); they are one output series.
        super::merge_same_labels(out)
    }

    /// Arithmetic and comparison between two vectors.
    fn vector_vector(
        &mut self,
        b: &BinaryExpr,
        m: &VectorMatching,
        l: Vec<Series>,
        r: Vec<Series>,
    ) -> EvalResult<Vec<Series>> {
        // For one-to-many, swap the sides so the right side is always the "one" side.
        let swapped = m.card == Cardinality::OneToMany;
        let (l, r) = if swapped { (r, l) } else { (l, r) };
        let (lsig, rsig, nsig) = Self::signatures(m, &l, &r);
        if m.card == Cardinality::OneToOne {
            if let Some(right_of) = one_series_per_signature(&lsig, &rsig, nsig) {
                return self.vector_vector_pairs(b, m, &l, &r, &lsig, &right_of);
            }
        }
        let (mut lc, mut rc) = (StepCursor::new(l.len()), StepCursor::new(r.len()));
        let (mut lv, mut rv) = (Vec::new(), Vec::new());
        let mut right_by_sig: Vec<Option<(usize, f64)>> = vec![None; nsig];
        let mut matched: Vec<bool> = vec![false; nsig];
        let mut inserted: Vec<Vec<usize>> = vec![Vec::new(); nsig];
        // The output slot of each (left, right) pair, made on the pair's first match. A left
        // series almost always meets one right series over the whole range, so its first
        // pair sits in a plain array; only further pairs go to the map (hashed per step,
        // the map alone cost a sixth of a small `a / b` query).
        let mut first_slot: Vec<Option<(usize, usize)>> = vec![None; l.len()];
        let mut more_slots: HashMap<(usize, usize), usize> = HashMap::new();
        let mut out = OutBuilder::default();
        for ts in self.step_times() {
            self.check()?;
            lc.gather(&l, ts, &mut lv);
            rc.gather(&r, ts, &mut rv);
            if lv.is_empty() || rv.is_empty() {
                continue;
            }
            right_by_sig.iter_mut().for_each(|x| *x = None);
            for &(i, v) in &rv {
                let sig = rsig[i] as usize;
                if let Some((j, _)) = right_by_sig[sig] {
                    return Err(duplicate_error(m, &r[i].labels, &r[j].labels));
                }
                right_by_sig[sig] = Some((i, v));
            }
            matched.iter_mut().for_each(|x| *x = false);
            inserted.iter_mut().for_each(Vec::clear);
            for &(li, lval) in &lv {
                let sig = lsig[li] as usize;
                let Some((ri, rval)) = right_by_sig[sig] else {
                    continue;
                };
                let (x, y) = if swapped { (rval, lval) } else { (lval, rval) };
                let (mut val, keep) = apply_op(b.op, x, y);
                if b.return_bool {
                    val = f64::from(u8::from(keep));
                }
                let slot = match first_slot[li] {
                    Some((r0, s)) if r0 == ri => s,
                    first => match more_slots.get(&(li, ri)) {
                        Some(&s) => s,
                        None => {
                            let labels = result_labels(&l[li].labels, &r[ri].labels, b.op, m);
                            let s = out.slot(&labels, b.return_bool);
                            if first.is_none() {
                                first_slot[li] = Some((ri, s));
                            } else {
                                more_slots.insert((li, ri), s);
                            }
                            s
                        }
                    },
                };
                if m.card == Cardinality::OneToOne {
                    if matched[sig] {
                        return Err(QueryError::Execution(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                                .into(),
                        ));
                    }
                    matched[sig] = true;
                } else {
                    if inserted[sig].contains(&slot) {
                        return Err(QueryError::Execution(
                            "multiple matches for labels: grouping labels must ensure unique matches".into(),
                        ));
                    }
                    inserted[sig].push(slot);
                }
                if !keep && !b.return_bool {
                    continue;
                }
                out.push(slot, ts, val)?;
            }
        }
        Ok(out.finish())
    }
}

impl Evaluator<'_> {
    /// One-to-one [`vector_vector`](Self::vector_vector) when every match group holds at most
    /// one series on each side (`right_of[sig]`: the right series of each group): the pairs
    /// are the same at every step, so each pair's points are joined once, by time, and none
    /// of the per-step checks for duplicate matches can fail. Same result as the step walk.
    fn vector_vector_pairs(
        &mut self,
        b: &BinaryExpr,
        m: &VectorMatching,
        l: &[Series],
        r: &[Series],
        lsig: &[u32],
        right_of: &[Option<u32>],
    ) -> EvalResult<Vec<Series>> {
        let mut out = OutBuilder::default();
        for (li, left) in l.iter().enumerate() {
            let Some(ri) = right_of[lsig[li] as usize] else {
                continue;
            };
            self.check()?;
            let right = &r[ri as usize];
            let mut slot = None;
            let (mut i, mut j) = (0, 0);
            while let (Some(&(lt, x)), Some(&(rt, y))) = (left.points.get(i), right.points.get(j)) {
                if lt < rt {
                    i += 1;
                    continue;
                }
                if rt < lt {
                    j += 1;
                    continue;
                }
                i += 1;
                j += 1;
                let (mut val, keep) = apply_op(b.op, x, y);
                if b.return_bool {
                    val = f64::from(u8::from(keep));
                } else if !keep {
                    continue;
                }
                let s = *slot.get_or_insert_with(|| {
                    out.slot(
                        &result_labels(&left.labels, &right.labels, b.op, m),
                        b.return_bool,
                    )
                });
                out.push(s, lt, val)?;
            }
        }
        Ok(out.finish())
    }
}

/// For each match group, its right-hand series, when no group holds two series on either
/// side (`None` otherwise).
fn one_series_per_signature(lsig: &[u32], rsig: &[u32], nsig: usize) -> Option<Vec<Option<u32>>> {
    let mut left_seen = vec![false; nsig];
    for &s in lsig {
        if std::mem::replace(&mut left_seen[s as usize], true) {
            return None;
        }
    }
    let mut right_of = vec![None; nsig];
    for (i, &s) in rsig.iter().enumerate() {
        if right_of[s as usize].replace(i as u32).is_some() {
            return None;
        }
    }
    Some(right_of)
}

/// The labels of a vector/vector result (Prometheus `resultMetric`).
fn result_labels(l: &Labels, r: &Labels, op: BinaryOp, m: &VectorMatching) -> Labels {
    let mut out = l.clone();
    if changes_metric(op) {
        super::drop_metadata_labels(&mut out);
    }
    if m.card == Cardinality::OneToOne {
        if m.on {
            let keep: Vec<_> = out
                .iter()
                .filter(|lb| m.labels.contains(&lb.name))
                .cloned()
                .collect();
            out = Labels::from_sorted_unchecked(keep);
        } else {
            for n in &m.labels {
                out.remove(n);
            }
        }
    }
    for n in &m.include {
        match r.get(n) {
            Some(v) => {
                let v = v.to_string();
                out.set(n, &v);
            }
            None => out.remove(n),
        }
    }
    out
}

/// The many-to-many error for two right-hand series sharing a match group.
fn duplicate_error(m: &VectorMatching, a: &Labels, b: &Labels) -> QueryError {
    let group: Vec<_> = a
        .iter()
        .filter(|lb| {
            if m.on {
                m.labels.contains(&lb.name)
            } else {
                lb.name != METRIC_NAME && !m.labels.contains(&lb.name)
            }
        })
        .cloned()
        .collect();
    let side = if m.card == Cardinality::OneToMany {
        "left"
    } else {
        "right"
    };
    let (mut d1, mut d2) = (labels_string(a), labels_string(b));
    if d1 > d2 {
        std::mem::swap(&mut d1, &mut d2);
    }
    QueryError::Execution(format!(
        "found duplicate series for the match group {} on the {side} hand-side of the operation: [{d1}, {d2}];many-to-many matching not allowed: matching labels must be unique on one side",
        labels_string(&Labels::from_sorted_unchecked(group))
    ))
}
