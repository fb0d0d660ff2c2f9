//! The decimal value layout: floats that are short decimals or ratios become integers `m`
//! with one common divisor `d` (`v = m / d`), then go through an int stream as raw values,
//! deltas or deltas of deltas. The divisor is either `b·10^k`, `b ∈ {1, 3, 9}` (short
//! decimals), or any integer up to 2^24 (a *ratio*: a buffer pool's `used / total`, a meter's
//! `count / 60`), divided in f64 or, for Java floats widened to double, in f32. Values that
//! do not survive the round trip bit for bit (NaN, the stale marker, ±Inf, -0.0) are stored
//! verbatim as patches, if there are few of them.
//!
//! A value is accepted only if the decoder's exact formula, `m as f64 / d` (or
//! `(m as f32 / d as f32) as f64`), gives back the same bits. The conversions and the
//! division are correctly rounded IEEE operations, so the check is deterministic on every
//! platform.

use super::ints::{self, Plan, Stream};
use super::varint::{put_uvarint, put_varint, uvarint_len, zigzag, Reader};
use super::Scratch;
use crate::error::{Error, Result};

/// Largest decimal exponent tried: 10^18 is exact in f64 and covers nano-units.
pub(crate) const MAX_SCALE: usize = 18;

const POW10: [f64; MAX_SCALE + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18,
];

/// Factors in front of the power of ten. A Flink `MeterView` rate is `(double) count /
/// 60`; since `m / 60 = 5m / 300`, the divisor `3·10^2` makes every such rate a small
/// integer. Base 9 covers windows like 45 s, 90 s and 3,600 s.
const BASES: [f64; 3] = [1.0, 3.0, 9.0];

/// The scale byte that announces a ratio divisor (a uvarint) after it. Its base field (7)
/// is past [`BASES`], so no decimal scale byte can be mistaken for it.
const RATIO_SCALE_BYTE: u8 = 7 << 5;
/// The scale byte of a ratio divided in single precision (base field 6): Flink's buffer pool
/// gauges are Java floats, `(float) used / total`, widened to double by the reporters.
const RATIO32_SCALE_BYTE: u8 = 6 << 5;

/// Integers that f32 holds exactly: a single-precision ratio's numerator and divisor.
const F32_EXACT: i64 = 1 << 24;

/// Largest ratio divisor: a few times any buffer pool's size, small enough that the
/// search over continued fractions below stays short and the hint fits in three bytes.
pub(crate) const MAX_RATIO_DIVISOR: u64 = (1 << 24) - 1;

/// A decimal plan above this many bits per value also tries a ratio divisor (integers never
/// do: no divisor makes an integer column smaller).
const RATIO_WORTH_TRYING_BITS: u64 = 4;

/// How the integers are stored (low bits of the mode byte).
pub(crate) const FOR: u8 = 0;
pub(crate) const DELTA: u8 = 1;
pub(crate) const DOD: u8 = 2;
/// Set in the mode byte when a patch list follows the scale.
pub(crate) const HAS_PATCHES: u8 = 0x08;

/// The common divisor. A decimal one is stored as one byte `base << 5 | k`; a ratio one as
/// [`RATIO_SCALE_BYTE`] (or [`RATIO32_SCALE_BYTE`], divided in f32) and a uvarint. Every divisor is an integer below 2^63 that f64
/// represents exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    Decimal {
        base: usize,
        k: usize,
    },
    /// `single`: the decoder divides in f32 and widens the quotient.
    Ratio {
        d: u32,
        single: bool,
    },
}

impl Scale {
    fn divisor(self) -> f64 {
        match self {
            Scale::Decimal { base, k } => BASES[base] * POW10[k],
            Scale::Ratio { d, .. } => f64::from(d),
        }
    }

    fn formula(self) -> Formula {
        Formula {
            divisor: self.divisor(),
            single: matches!(self, Scale::Ratio { single: true, .. }),
        }
    }

    fn scale_byte(self) -> u8 {
        match self {
            Scale::Decimal { base, k } => (base << 5 | k) as u8,
            Scale::Ratio { single: false, .. } => RATIO_SCALE_BYTE,
            Scale::Ratio { single: true, .. } => RATIO32_SCALE_BYTE,
        }
    }

    /// True unless the divisor is 1 (integers).
    fn is_fractional(self) -> bool {
        self != Scale::Decimal { base: 0, k: 0 }
    }

    fn write(self, dst: &mut Vec<u8>) {
        dst.push(self.scale_byte());
        if let Scale::Ratio { d, .. } = self {
            put_uvarint(dst, u64::from(d));
        }
    }

    fn encoded_len(self) -> usize {
        match self {
            Scale::Decimal { .. } => 1,
            Scale::Ratio { d, .. } => 1 + uvarint_len(u64::from(d)),
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let b = r.u8("truncated decimal scale")?;
        if b == RATIO_SCALE_BYTE || b == RATIO32_SCALE_BYTE {
            let d = r.uvarint("truncated ratio divisor")?;
            return Scale::ratio(d, b == RATIO32_SCALE_BYTE)
                .ok_or(Error::ChunkDecode("ratio divisor out of range"));
        }
        let (base, k) = (usize::from(b >> 5), usize::from(b & 0x1f));
        if base >= BASES.len() || k > MAX_SCALE {
            return Err(Error::ChunkDecode("decimal scale out of range"));
        }
        Ok(Scale::Decimal { base, k })
    }

    fn ratio(d: u64, single: bool) -> Option<Self> {
        (2..=MAX_RATIO_DIVISOR)
            .contains(&d)
            .then_some(Scale::Ratio {
                d: d as u32,
                single,
            })
    }

    /// The compact form a series keeps between chunks ([`ScaleCode`]).
    fn code(self) -> ScaleCode {
        match self {
            Scale::Decimal { base, k } => ScaleCode([(base << 5 | k) as u8, 0, 0, 0]),
            Scale::Ratio { d, .. } => {
                let [a, b, c, _] = d.to_le_bytes();
                ScaleCode([self.scale_byte(), a, b, c])
            }
        }
    }
}

/// A column's divisor in four bytes with no alignment, for layout hints that a head series
/// keeps beside its open chunk (every byte of a series' entry counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScaleCode([u8; 4]);

impl ScaleCode {
    /// The divisor of a value column that starts at its scale byte (after the mode byte).
    pub(crate) fn of(column_after_mode: &[u8]) -> Option<ScaleCode> {
        Scale::read(&mut Reader::new(column_after_mode))
            .ok()
            .map(Scale::code)
    }

    fn scale(self) -> Option<Scale> {
        let [b, x, y, z] = self.0;
        if b == RATIO_SCALE_BYTE || b == RATIO32_SCALE_BYTE {
            let d = u32::from_le_bytes([x, y, z, 0]);
            return Scale::ratio(u64::from(d), b == RATIO32_SCALE_BYTE);
        }
        Scale::read(&mut Reader::new(&[b])).ok()
    }
}

/// The decoder's formula. Dividing by 1.0 is exact, so one formula serves every scale.
#[inline]
fn to_f64(m: i64, divisor: f64) -> f64 {
    m as f64 / divisor
}

/// `v` as an integer at `divisor`, if the decoder gets exactly `v` back.
#[inline]
fn mantissa(v: f64, divisor: f64) -> Option<i64> {
    let m = nearest_integer(v * divisor);
    (to_f64(m, divisor).to_bits() == v.to_bits()).then_some(m)
}

/// Rounds half away from zero without a libm call; `as` saturates on overflow and maps NaN
/// to 0, and every caller checks the result by decoding it.
#[inline]
fn nearest_integer(x: f64) -> i64 {
    let t = x as i64;
    let frac = x - t as f64;
    t.wrapping_add(i64::from(frac >= 0.5) - i64::from(frac <= -0.5))
}

/// How a column's integers become floats: `m / divisor` in f64, or for a single-precision
/// ratio `(m as f32 / divisor as f32) as f64` (Java's `(float) used / total`, widened).
#[derive(Debug, Clone, Copy)]
struct Formula {
    divisor: f64,
    single: bool,
}

impl Formula {
    #[inline]
    fn value(self, m: i64) -> f64 {
        if self.single {
            f64::from(m as f32 / self.divisor as f32)
        } else {
            to_f64(m, self.divisor)
        }
    }

    /// `v` as an integer under this formula, if the decoder gets exactly `v` back.
    #[inline]
    fn mantissa(self, v: f64) -> Option<i64> {
        if !self.single {
            return mantissa(v, self.divisor);
        }
        let m = nearest_integer(v * self.divisor);
        // Beyond 2^24, `m as f32` rounds and the encoder could not predict the decoder.
        (m.unsigned_abs() < F32_EXACT as u64 && self.value(m).to_bits() == v.to_bits()).then_some(m)
    }
}

/// The smallest power of ten above `from` (for `base`) at which `v` round-trips, if any.
fn min_k(v: f64, base: usize, from: usize) -> Option<usize> {
    if !v.is_finite() {
        return None;
    }
    (from..=MAX_SCALE).find(|&k| mantissa(v, Scale::Decimal { base, k }.divisor()).is_some())
}

/// True if at least two of four spread-out values are not decimals at `base`: then the
/// column is arbitrary floats, and scanning all of it would be wasted work.
fn clearly_not_decimal(src: &[f64], base: usize) -> bool {
    let n = src.len();
    if n < 16 {
        return false;
    }
    [0, n / 3, 2 * n / 3, n - 1]
        .iter()
        .filter(|&&i| min_k(src[i], base, 0).is_none())
        .count()
        >= 2
}

/// [`clearly_not_decimal`] for ratios: at least two of four spread-out values have no
/// denominator up to [`MAX_RATIO_DIVISOR`].
fn clearly_not_ratio(src: &[f64], single: bool) -> bool {
    let n = src.len();
    n >= 16
        && [0, n / 3, 2 * n / 3, n - 1]
            .iter()
            .filter(|&&i| ratio_denominator(src[i], MAX_RATIO_DIVISOR, single).is_none())
            .count()
            >= 2
}

/// A decimal encoding of one column, ready to write.
#[derive(Debug)]
pub(crate) struct DecimalPlan {
    scale: Scale,
    transform: u8,
    ints: Plan,
    /// Estimated size in bits.
    pub(crate) bits: u64,
}

/// Above this many bits per value, bases 3 and 9 are tried as well.
const BASE_1_GOOD_ENOUGH_BITS: u64 = 12;

/// Plans the decimal layout with the divisor that gives the fewest bits: a power of ten
/// (times each base), or a ratio divisor when the decimals are poor. On return, `scratch`
/// holds the integers and patches of the returned plan.
pub(crate) fn plan(src: &[f64], scratch: &mut Scratch) -> Option<DecimalPlan> {
    let n = src.len() as u64;
    let decimal = plan_decimal(src, scratch);
    let ratio_may_win = match &decimal {
        None => true,
        Some(p) => p.scale.is_fractional() && p.bits > RATIO_WORTH_TRYING_BITS * n,
    };
    if !ratio_may_win {
        return decimal;
    }
    // Single precision only for values a float holds (Java `Float` gauges, widened).
    let ratio = plan_ratio(src, false, scratch).or_else(|| {
        src.iter()
            .filter(|v| v.is_finite())
            .take(4)
            .all(|&v| f64::from(v as f32) == v)
            .then(|| plan_ratio(src, true, scratch))
            .flatten()
    });
    match (ratio, decimal) {
        (Some(r), Some(d)) if r.bits < d.bits => Some(r),
        (Some(r), None) => Some(r),
        // The ratio attempt overwrote the decimal plan's scratch state.
        (
            _,
            Some(DecimalPlan {
                scale: Scale::Decimal { base, .. },
                ..
            }),
        ) => plan_base(src, base, scratch),
        _ => None,
    }
}

/// [`plan`] over decimal divisors only.
fn plan_decimal(src: &[f64], scratch: &mut Scratch) -> Option<DecimalPlan> {
    let n = src.len() as u64;
    let first = plan_base(src, 0, scratch);
    // Integers (scale 10^0) cannot get smaller at base 3 or 9: every integer there is the
    // base-1 integer times the base, and so is every delta.
    if first
        .as_ref()
        .is_some_and(|p| p.bits <= BASE_1_GOOD_ENOUGH_BITS * n || !p.scale.is_fractional())
    {
        return first;
    }
    let mut best = first;
    let mut last_base = 0;
    for base in 1..BASES.len() {
        let p = plan_base(src, base, scratch);
        last_base = base;
        if let Some(p) = p {
            if best.as_ref().is_none_or(|b| p.bits < b.bits) {
                best = Some(p);
            }
        }
    }
    // Re-plan the winner if a later attempt overwrote its scratch state.
    match best {
        Some(DecimalPlan {
            scale: Scale::Decimal { base, .. },
            ..
        }) if base != last_base => plan_base(src, base, scratch),
        other => other,
    }
}

/// [`plan`] at one given divisor (a previous chunk's): `None` if the code is not a
/// valid divisor or too many values are not decimals at exactly that scale. Unlike the full
/// plan it never raises the exponent, so values needing more digits fall back to [`plan`].
pub(crate) fn plan_at_scale(
    src: &[f64],
    scale: ScaleCode,
    transform: u8,
    scratch: &mut Scratch,
) -> Option<DecimalPlan> {
    let scale = scale.scale()?;
    let formula = scale.formula();
    let n = src.len();
    let max_patches = (n / 16).max(1);
    scratch.patches.clear();
    let ms = &mut scratch.a;
    ms.clear();
    for (i, &v) in src.iter().enumerate() {
        match formula.mantissa(v) {
            Some(m) => ms.push(m),
            None => {
                scratch.patches.push(i);
                if scratch.patches.len() > max_patches {
                    return None;
                }
                ms.push(i64::MIN);
            }
        }
    }
    if scratch.patches.len() == n {
        return None;
    }
    fill_patch_slots(ms, &scratch.patches);
    Some(finish_plan(scale, scratch, Some(transform)))
}

/// The plan for the integers in `scratch.a` at `scale` with the patches in `scratch.patches`,
/// choosing the integer transform or taking `transform`.
fn finish_plan(scale: Scale, scratch: &mut Scratch, transform: Option<u8>) -> DecimalPlan {
    let (transform, ints) = plan_transform(scratch, transform);
    let bits = 8 * (1 + scale.encoded_len() as u64) + patch_bits(scratch.patches.len()) + ints.bits;
    DecimalPlan {
        scale,
        transform,
        ints,
        bits,
    }
}

/// Bits of a patch list of `k` entries: the count, then per patch a 1–2 byte index gap and 8
/// raw bytes.
fn patch_bits(k: usize) -> u64 {
    match k {
        0 => 0,
        k => 8 * (uvarint_len(k as u64) + 10 * k) as u64,
    }
}

/// Plans `src` at one base: the common power of ten is the largest any value needs. None if
/// too many values are not short decimals at this base.
fn plan_base(src: &[f64], base: usize, scratch: &mut Scratch) -> Option<DecimalPlan> {
    if clearly_not_decimal(src, base) {
        scratch.patches.clear();
        return None;
    }
    plan_widening(src, Scale::Decimal { base, k: 0 }, scratch, |v, scale| {
        let Scale::Decimal { base, k } = scale else {
            return None;
        };
        min_k(v, base, k + 1).map(|k_v| Scale::Decimal {
            base,
            k: k.max(k_v),
        })
    })
}

/// Plans `src` with a ratio divisor (divided in f32 if `single`): the least common multiple
/// of every value's smallest denominator, up to [`MAX_RATIO_DIVISOR`]. None if too many
/// values are not such ratios, or if all are integers (the decimal plan covers those).
fn plan_ratio(src: &[f64], single: bool, scratch: &mut Scratch) -> Option<DecimalPlan> {
    if clearly_not_ratio(src, single) {
        scratch.patches.clear();
        return None;
    }
    let plan = plan_widening(
        src,
        Scale::Decimal { base: 0, k: 0 },
        scratch,
        |v, scale| {
            // Every divisor seen here is an integer below 2^24.
            let d = scale.divisor() as u64;
            let q = ratio_denominator(v, MAX_RATIO_DIVISOR, single)?;
            Scale::ratio(lcm(d, q), single)
        },
    )?;
    matches!(plan.scale, Scale::Ratio { .. }).then_some(plan)
}

/// The smallest denominator `q ≤ max` at which `v` round-trips as `m / q`, looked for among
/// the denominators of the convergents of `v`'s continued fraction: a ratio `m / q` whose
/// nearest double is `v` lies closer to `v` than `1 / 2q²` (whenever `q² · |v| < 2^52`), so
/// it is one of them (Legendre). The expansion is exact: a double is `mant / 2^k`, and
/// Euclid's algorithm runs on those integers.
///
/// With `single`, the candidates are checked with the single-precision formula instead; the
/// quotient is then only within 2^-24 of `m / q`, so Legendre's bound finds denominators up to
/// about `2^11.5 / √|v|` (buffer pools are rarely larger).
fn ratio_denominator(v: f64, max: u64, single: bool) -> Option<u64> {
    if !v.is_finite() {
        return None;
    }
    let round_trips = |q: u64| {
        Formula {
            divisor: q as f64,
            single,
        }
        .mantissa(v)
        .is_some()
    };
    if round_trips(1) {
        return Some(1);
    }
    let a = v.abs();
    // Below 2^-25 no m ≥ 1 over q < 2^24 is near; from 2^53 on every double is an integer.
    if !(2f64.powi(-25)..2f64.powi(53)).contains(&a) {
        return None;
    }
    let bits = a.to_bits();
    // A normal double in this range: mantissa with its hidden bit, exponent 1075 - k.
    let mant = u128::from(bits & ((1 << 52) - 1) | 1 << 52);
    let k = 1075 - ((bits >> 52) & 0x7ff) as u32;
    let (mut p, mut q) = (mant, 1u128 << k);
    // Convergent denominators: Q₋₁ = 0, Q₀ = 1, Qᵢ = aᵢ·Qᵢ₋₁ + Qᵢ₋₂.
    let (mut q_before, mut q_now) = (0u64, 1u64);
    (p, q) = (q, p % q);
    while q != 0 {
        let term = u64::try_from(p / q).ok()?;
        let next = term.checked_mul(q_now)?.checked_add(q_before)?;
        if next > max {
            return None;
        }
        (q_before, q_now) = (q_now, next);
        if round_trips(q_now) {
            return Some(q_now);
        }
        (p, q) = (q, p % q);
    }
    None
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Saturates instead of overflowing; callers bound the result far below `u64::MAX`.
fn lcm(a: u64, b: u64) -> u64 {
    (a / gcd(a, b)).saturating_mul(b)
}

/// Converts `src` to integers in `scratch.a` (patch slots hold a neighbour's value) and patch
/// indices in `scratch.patches`, starting at divisor `first` and moving to `widen(v, scale)`
/// whenever a value `v` does not round-trip at the current one (a value it cannot place is
/// patched); plans the cheapest int transform. None if too many values need patches.
fn plan_widening(
    src: &[f64],
    first: Scale,
    scratch: &mut Scratch,
    mut widen: impl FnMut(f64, Scale) -> Option<Scale>,
) -> Option<DecimalPlan> {
    let n = src.len();
    let max_patches = (n / 16).max(1);
    scratch.patches.clear();
    let mut scale = first;
    let mut formula = scale.formula();
    for (i, &v) in src.iter().enumerate() {
        if formula.mantissa(v).is_some() {
            continue;
        }
        match widen(v, scale) {
            Some(wider) => {
                scale = wider;
                formula = scale.formula();
            }
            None => {
                scratch.patches.push(i);
                if scratch.patches.len() > max_patches {
                    return None;
                }
            }
        }
    }
    if scratch.patches.len() == n {
        return None;
    }
    let ms = &mut scratch.a;
    ms.clear();
    let mut patch_iter = scratch.patches.iter().peekable();
    let mut extra = Vec::new();
    for (i, &v) in src.iter().enumerate() {
        if patch_iter.peek() == Some(&&i) {
            patch_iter.next();
            ms.push(i64::MIN); // filled below
            continue;
        }
        match formula.mantissa(v) {
            Some(m) => ms.push(m),
            None => {
                // Exact at a smaller divisor but not at the common one (overflow): patch it.
                extra.push(i);
                ms.push(i64::MIN);
            }
        }
    }
    if !extra.is_empty() {
        scratch.patches.extend(extra);
        scratch.patches.sort_unstable();
        if scratch.patches.len() > max_patches || scratch.patches.len() == n {
            return None;
        }
    }
    fill_patch_slots(ms, &scratch.patches);
    Some(finish_plan(scale, scratch, None))
}

/// Gives each patched slot its left neighbour's integer (the right one for leading slots),
/// so deltas stay small across a stale marker.
fn fill_patch_slots(ms: &mut [i64], patches: &[usize]) {
    let Some(first_good) = (0..ms.len()).find(|i| patches.binary_search(i).is_err()) else {
        return;
    };
    let lead = ms[first_good];
    let mut prev = lead;
    let mut p = patches.iter().peekable();
    for (i, m) in ms.iter_mut().enumerate() {
        if p.peek() == Some(&&i) {
            p.next();
            *m = prev;
        } else {
            prev = *m;
        }
    }
}

/// Picks raw (`FOR`), delta or delta-of-delta for the integers in `scratch.a`, the cheapest
/// of the three or only `only` (a growing head chunk keeps the transform it had). Leaves the
/// deltas in `scratch.b` and the deltas of deltas in `scratch.c` where the chosen transform
/// needs them.
fn plan_transform(scratch: &mut Scratch, only: Option<u8>) -> (u8, Plan) {
    let ms = &scratch.a;
    if ms.len() < 3 {
        return (FOR, ints::plan(ms));
    }
    let wanted = |t: u8| only.is_none_or(|o| o == t);
    let frame_only = scratch.frame_only;
    let for_plan = ints::plan_if(wanted(FOR), frame_only, ms);
    let deltas = &mut scratch.b;
    deltas.clear();
    deltas.extend(ms.windows(2).map(|w| w[1].wrapping_sub(w[0])));
    let delta_plan = ints::plan_if(wanted(DELTA), frame_only, deltas);
    let delta_bits = delta_plan
        .bits
        .saturating_add(8 * uvarint_len(zigzag(ms[0])) as u64);
    let dods = &mut scratch.c;
    dods.clear();
    if wanted(DOD) {
        dods.extend(deltas.windows(2).map(|w| w[1].wrapping_sub(w[0])));
    }
    let dod_plan = ints::plan_if(wanted(DOD), frame_only, dods);
    let dod_bits = dod_plan
        .bits
        .saturating_add(8 * (uvarint_len(zigzag(ms[0])) + uvarint_len(zigzag(deltas[0]))) as u64);
    if for_plan.bits <= delta_bits && for_plan.bits <= dod_bits {
        (FOR, for_plan)
    } else if delta_bits <= dod_bits {
        (DELTA, delta_plan.with_bits(delta_bits))
    } else {
        (DOD, dod_plan.with_bits(dod_bits))
    }
}

/// Writes the column planned by [`plan`] (which must have run on the same `src` and
/// `scratch` just before): mode byte, scale, patches, heads, int stream.
pub(crate) fn encode(
    dst: &mut Vec<u8>,
    src: &[f64],
    p: &DecimalPlan,
    scratch: &mut Scratch,
    mode: u8,
) {
    let patched = !scratch.patches.is_empty();
    dst.push(mode | p.transform | if patched { HAS_PATCHES } else { 0 });
    p.scale.write(dst);
    if patched {
        put_uvarint(dst, scratch.patches.len() as u64);
        let mut next = 0;
        for &i in &scratch.patches {
            put_uvarint(dst, (i - next) as u64);
            dst.extend_from_slice(&src[i].to_bits().to_le_bytes());
            next = i + 1;
        }
    }
    let ms = &scratch.a;
    let stream = match p.transform {
        FOR => &scratch.a,
        DELTA => {
            put_varint(dst, ms[0]);
            &scratch.b
        }
        _ => {
            put_varint(dst, ms[0]);
            put_varint(dst, scratch.b[0]);
            &scratch.c
        }
    };
    ints::encode(dst, stream, &p.ints, &mut scratch.packed);
}

/// Integers decoded per block: big enough to amortise the loop, small enough for the stack.
const BLOCK: usize = 256;

/// Decodes `n ≥ 1` values after the mode byte `mode`; appends values `skip..n` to `dst`
/// (`skip <= n`). Skipped values are still unpacked (deltas need every one before them) but
/// not converted or stored.
pub(crate) fn decode(
    r: &mut Reader<'_>,
    mode: u8,
    n: usize,
    skip: usize,
    dst: &mut Vec<f64>,
) -> Result<()> {
    let transform = mode & 0x07;
    let formula = Scale::read(r)?.formula();
    let divisor = formula.divisor;
    let patches = if mode & HAS_PATCHES != 0 {
        Some(skip_patches(r, n)?)
    } else {
        None
    };
    let (heads, stream_n) = match transform {
        FOR => ([0, 0], n),
        DELTA if n >= 1 => ([r.varint("truncated first decimal")?, 0], n - 1),
        DOD if n >= 2 => (
            [
                r.varint("truncated first decimal")?,
                r.varint("truncated first decimal delta")?,
            ],
            n - 2,
        ),
        _ => return Err(Error::ChunkDecode("unknown decimal transform")),
    };
    let stream = Stream::parse(r, stream_n)?;
    let old = dst.len();
    dst.reserve(n - skip);
    let conv = |m: i64| formula.value(m);
    let (mut acc, mut delta) = (heads[0], heads[1]);
    // Values before the stream's first (the heads) are values 0 and 1.
    let heads_n = n - stream_n;
    if transform != FOR && skip == 0 {
        dst.push(conv(acc));
    }
    if transform == DOD {
        acc = acc.wrapping_add(delta);
        if skip <= 1 {
            dst.push(conv(acc));
        }
    }
    // Stream values to leave out.
    let mut left_out = skip.saturating_sub(heads_n);
    let mut buf = [0i64; BLOCK];
    let mut ints = stream.decoder();
    for start in (0..stream_n).step_by(BLOCK) {
        let buf = &mut buf[..BLOCK.min(stream_n - start)];
        ints.next(buf);
        // Serial prefix sums; the conversion below is a separate, vectorisable pass.
        match transform {
            DELTA => {
                for x in buf.iter_mut() {
                    acc = acc.wrapping_add(*x);
                    *x = acc;
                }
            }
            DOD => {
                for x in buf.iter_mut() {
                    delta = delta.wrapping_add(*x);
                    acc = acc.wrapping_add(delta);
                    *x = acc;
                }
            }
            _ => {}
        }
        let keep = &buf[left_out.min(buf.len())..];
        left_out -= buf.len() - keep.len();
        if divisor == 1.0 {
            dst.extend(keep.iter().map(|&m| m as f64));
        } else if formula.single {
            dst.extend(keep.iter().map(|&m| formula.value(m)));
        } else {
            dst.extend(keep.iter().map(|&m| m as f64 / divisor));
        }
    }
    if let Some(mut pr) = patches {
        apply_patches(&mut pr, skip, &mut dst[old..])?;
    }
    Ok(())
}

/// Validates the patch list and skips it; returns a reader positioned at its start.
fn skip_patches<'a>(r: &mut Reader<'a>, n: usize) -> Result<Reader<'a>> {
    let start = r.clone();
    let count = r.uvarint("truncated patch count")?;
    if count == 0 || count > n as u64 {
        return Err(Error::ChunkDecode("bad patch count in decimal values"));
    }
    let mut next = 0u64;
    for _ in 0..count {
        let i = next.saturating_add(r.uvarint("truncated patch index")?);
        if i >= n as u64 {
            return Err(Error::ChunkDecode("patch index past the last value"));
        }
        r.skip(8, "truncated patch value")?;
        next = i + 1;
    }
    Ok(start)
}

/// Writes the patched values into `out`, which holds values `skip..` of the column (patches
/// of skipped values are read and left out).
fn apply_patches(r: &mut Reader<'_>, skip: usize, out: &mut [f64]) -> Result<()> {
    let count = r.uvarint("truncated patch count")?;
    let mut next = 0usize;
    for _ in 0..count {
        let i = next.saturating_add(r.uvarint("truncated patch index")? as usize);
        let v = r.u64_le("truncated patch value")?;
        if i >= skip {
            *out.get_mut(i - skip)
                .ok_or(Error::ChunkDecode("patch index past the last value"))? = f64::from_bits(v);
        }
        next = i + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_small_ratio_finds_its_reduced_denominator() {
        for d in 2..=600u64 {
            for m in 0..=d {
                let v = m as f64 / d as f64;
                let reduced = d / gcd(m, d);
                assert_eq!(
                    ratio_denominator(v, MAX_RATIO_DIVISOR, false),
                    Some(reduced),
                    "{m}/{d}"
                );
                // -0.0 is no ratio (0 / d is +0.0); the column patches it.
                let negative = (m > 0).then_some(reduced);
                assert_eq!(
                    ratio_denominator(-v, MAX_RATIO_DIVISOR, false),
                    negative,
                    "-{m}/{d}"
                );
            }
        }
        // Large denominators and numerators far from 1.
        for (m, d) in [
            (1u64, 16_777_215u64),
            (12_345_677, 16_777_213),
            (50_407, 60),
        ] {
            let v = m as f64 / d as f64;
            let q = ratio_denominator(v, MAX_RATIO_DIVISOR, false).expect("a ratio");
            assert_eq!(q, d / gcd(m, d), "{m}/{d}");
        }
    }

    #[test]
    fn non_ratios_have_no_denominator() {
        for v in [
            f64::NAN,
            f64::INFINITY,
            0.1 + 0.2,
            std::f64::consts::PI,
            1e-300,
        ] {
            assert_eq!(ratio_denominator(v, MAX_RATIO_DIVISOR, false), None, "{v}");
        }
        // 1/7 exists, but not below the bound.
        assert_eq!(ratio_denominator(1.0 / 7.0, 6, false), None);
    }

    #[test]
    fn ratio_divisors_out_of_range_are_errors() {
        for bytes in [
            &[RATIO_SCALE_BYTE][..],
            &[RATIO_SCALE_BYTE, 0],
            &[RATIO_SCALE_BYTE, 1],
            &[RATIO_SCALE_BYTE, 0x80, 0x80, 0x80, 0x08], // 2^24
            &[RATIO_SCALE_BYTE, 0xff],                   // truncated uvarint
        ] {
            assert!(Scale::read(&mut Reader::new(bytes)).is_err(), "{bytes:x?}");
            assert_eq!(ScaleCode::of(bytes), None, "{bytes:x?}");
        }
        for single in [false, true] {
            let top = Scale::ratio(MAX_RATIO_DIVISOR, single).expect("the largest divisor");
            let mut b = Vec::new();
            top.write(&mut b);
            assert_eq!(b.len(), top.encoded_len());
            assert_eq!(Scale::read(&mut Reader::new(&b)).ok(), Some(top));
            assert_eq!(ScaleCode::of(&b).and_then(ScaleCode::scale), Some(top));
        }
        assert!(Scale::read(&mut Reader::new(&[RATIO32_SCALE_BYTE, 1])).is_err());
    }

    /// Java's `(float) used / total`, widened to double: every pool size up to 2,000 and
    /// every fill level is found with the single-precision formula (the f64 one cannot
    /// reproduce the float's rounding).
    #[test]
    fn float_ratios_find_their_denominator() {
        for d in 2..=2_000u32 {
            for m in (0..=d).step_by(1 + d as usize / 50) {
                let v = f64::from(m as f32 / d as f32);
                let q = ratio_denominator(v, MAX_RATIO_DIVISOR, true).expect("a float ratio");
                let f = Formula {
                    divisor: q as f64,
                    single: true,
                };
                let back = f.mantissa(v).map(|m| f.value(m));
                assert_eq!(back.map(f64::to_bits), Some(v.to_bits()), "{m}/{d}");
                assert!(q <= u64::from(d), "{m}/{d}: {q}");
            }
        }
    }
}
