//! The timestamp column: count, first and last timestamp up front (so a header read is
//! cheap), then the cheapest of four layouts for the rest, chosen per column.
//!
//! - `CONST`: every delta is the same; costs 0 bits per sample.
//! - `DELTA`: deltas as an int stream (frame of reference + exceptions for gaps).
//! - `DOD`: first delta, then deltas of deltas as an int stream (drifting intervals).
//! - `GRID`: residuals from the ideal grid `first + i·step`, `step = round(span / (n-1))`.
//!   Scrape jitter of ±j ms costs the bits of 2j here, against 4j for deltas of deltas.
//!
//! All arithmetic wraps, so any i64 sequence round-trips, sorted or not.

use super::ints::{self, Stream};
use super::varint::{put_uvarint, put_varint, uvarint_len, zigzag, Reader};
use super::{check_count, Scratch};
use crate::error::{Error, Result};

const CONST: u8 = 0;
const DELTA: u8 = 1;
const DOD: u8 = 2;
const GRID: u8 = 3;

/// The fields in front of every timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnHeader {
    pub(crate) count: usize,
    pub(crate) first: i64,
    pub(crate) last: i64,
}

/// Reads count, first and last timestamp.
pub(crate) fn read_header(r: &mut Reader<'_>) -> Result<ColumnHeader> {
    let count = check_count(r.uvarint("truncated timestamp count")?)?;
    let first = if count >= 1 {
        r.varint("truncated first timestamp")?
    } else {
        0
    };
    let last = if count >= 2 {
        first.wrapping_add(r.uvarint("truncated timestamp span")? as i64)
    } else {
        first
    };
    Ok(ColumnHeader { count, first, last })
}

/// Parses a column's header and payload framing without decoding the payload; returns the
/// header and the column's length in bytes. Cheap: a few varints, no unpacking.
pub(crate) fn column_len(src: &[u8]) -> Result<(ColumnHeader, usize)> {
    let mut r = Reader::new(src);
    let h = read_header(&mut r)?;
    let n = h.count;
    if n >= 3 {
        match r.u8("truncated timestamp mode")? {
            CONST => {}
            DELTA | GRID => {
                Stream::parse(&mut r, n - 1)?;
            }
            DOD => {
                r.varint("truncated first timestamp delta")?;
                Stream::parse(&mut r, n - 2)?;
            }
            _ => return Err(Error::ChunkDecode("unknown timestamp mode")),
        }
    }
    Ok((h, r.pos()))
}

/// The layout byte of an encoded column, if it has one (three timestamps or more).
pub(crate) fn mode_of(column: &[u8]) -> Option<u8> {
    let mut r = Reader::new(column);
    let h = read_header(&mut r).ok()?;
    if h.count < 3 {
        return None;
    }
    r.u8("truncated timestamp mode").ok()
}

pub(crate) fn encode(dst: &mut Vec<u8>, src: &[i64], scratch: &mut Scratch) {
    encode_planned(dst, src, scratch, None);
}

/// [`encode`] with only the layout `mode` planned (a growing head chunk keeps the layout it
/// had; see `ChunkEncoder::encode_chunk_after`). A constant column is still written as one,
/// and a `CONST` hint for a column that is no longer constant (or an unknown byte) plans every
/// layout.
pub(crate) fn encode_hinted(dst: &mut Vec<u8>, src: &[i64], scratch: &mut Scratch, mode: u8) {
    encode_planned(
        dst,
        src,
        scratch,
        Some(mode).filter(|&m| matches!(m, DELTA | DOD | GRID)),
    );
}

fn encode_planned(dst: &mut Vec<u8>, src: &[i64], scratch: &mut Scratch, only: Option<u8>) {
    let n = src.len();
    put_uvarint(dst, n as u64);
    let Some((&first, &last)) = src.first().zip(src.last()) else {
        return;
    };
    put_varint(dst, first);
    if n == 1 {
        return;
    }
    let span = last.wrapping_sub(first) as u64;
    put_uvarint(dst, span);
    if n == 2 {
        return;
    }
    let deltas = &mut scratch.a;
    deltas.clear();
    deltas.extend(src.windows(2).map(|w| w[1].wrapping_sub(w[0])));
    let d0 = deltas[0];
    let steps = (n - 1) as u64;
    if d0 >= 0 && deltas.iter().all(|&d| d == d0) && (d0 as u64).checked_mul(steps) == Some(span) {
        dst.push(CONST);
        return;
    }
    let wanted = |mode: u8| only.is_none_or(|m| m == mode);
    let frame_only = scratch.frame_only;
    let delta_plan = ints::plan_if(wanted(DELTA), frame_only, deltas);

    let dods = &mut scratch.b;
    dods.clear();
    if wanted(DOD) {
        dods.extend(deltas.windows(2).map(|w| w[1].wrapping_sub(w[0])));
    }
    let dod_plan = ints::plan_if(wanted(DOD), frame_only, dods);

    let grid = &mut scratch.c;
    grid.clear();
    if wanted(GRID) {
        let step = grid_step(span, steps);
        grid.extend(
            src[1..]
                .iter()
                .enumerate()
                .map(|(i, &t)| t.wrapping_sub(grid_point(first, step, i + 1))),
        );
    }
    let grid_plan = ints::plan_if(wanted(GRID), frame_only, grid);

    let dod_bits = dod_plan
        .bits
        .saturating_add(8 * uvarint_len(zigzag(d0)) as u64);
    if grid_plan.bits <= delta_plan.bits && grid_plan.bits <= dod_bits {
        dst.push(GRID);
        ints::encode(dst, &scratch.c, &grid_plan, &mut scratch.packed);
    } else if delta_plan.bits <= dod_bits {
        dst.push(DELTA);
        ints::encode(dst, &scratch.a, &delta_plan, &mut scratch.packed);
    } else {
        dst.push(DOD);
        put_varint(dst, d0);
        ints::encode(dst, &scratch.b, &dod_plan, &mut scratch.packed);
    }
}

/// The grid interval: the span divided by the steps, rounded to nearest so that jitter at
/// the ends does not tilt the whole grid by a millisecond per step.
fn grid_step(span: u64, steps: u64) -> u64 {
    let (q, r) = (span / steps, span % steps);
    if r >= steps - r {
        q.wrapping_add(1)
    } else {
        q
    }
}

fn grid_point(first: i64, step: u64, i: usize) -> i64 {
    first.wrapping_add((i as u64).wrapping_mul(step) as i64)
}

/// Decodes one column, appending to `dst`; returns bytes consumed. `dst` may hold
/// garbage past its original length on error; the public wrapper truncates it.
pub(crate) fn decode(src: &[u8], dst: &mut Vec<i64>) -> Result<usize> {
    let mut r = Reader::new(src);
    let h = read_header(&mut r)?;
    let n = h.count;
    if n == 0 {
        return Ok(r.pos());
    }
    if n <= 2 {
        dst.push(h.first);
        if n == 2 {
            dst.push(h.last);
        }
        return Ok(r.pos());
    }
    let steps = (n - 1) as u64;
    let span = h.last.wrapping_sub(h.first) as u64;
    let mode = r.u8("truncated timestamp mode")?;
    // Parse everything before growing dst, so bad input cannot make us allocate.
    let (d0, stream) = match mode {
        CONST => {
            if span / steps * steps != span {
                return Err(Error::ChunkDecode(
                    "constant-delta timestamps with uneven span",
                ));
            }
            (0, None)
        }
        DELTA | GRID => (0, Some(Stream::parse(&mut r, n - 1)?)),
        DOD => {
            let d0 = r.varint("truncated first timestamp delta")?;
            (d0, Some(Stream::parse(&mut r, n - 2)?))
        }
        _ => return Err(Error::ChunkDecode("unknown timestamp mode")),
    };
    let old = dst.len();
    dst.resize(old + n, 0);
    let out = &mut dst[old..];
    out[0] = h.first;
    let step = grid_step(span, steps);
    match (mode, stream) {
        (DELTA, Some(s)) => {
            s.decoder().next(&mut out[1..]);
            prefix_sum(h.first, &mut out[1..]);
        }
        (DOD, Some(s)) => {
            s.decoder().next(&mut out[2..]);
            out[1] = d0;
            prefix_sum(d0, &mut out[2..]);
            prefix_sum(h.first, &mut out[1..]);
        }
        // The grid points as a running sum (`first + i·step` wrapping, the same values as
        // `grid_point`): one add per timestamp instead of a 64-bit multiply, which was most of
        // decoding a shared column (a sixth of a small dashboard query's instructions).
        (GRID, Some(s)) => {
            s.decoder().next(&mut out[1..]);
            let mut point = h.first;
            for t in &mut out[1..] {
                point = point.wrapping_add(step as i64);
                *t = point.wrapping_add(*t);
            }
        }
        _ => {
            let mut point = h.first;
            for t in out.iter_mut() {
                *t = point;
                point = point.wrapping_add(step as i64);
            }
        }
    }
    if out[n - 1] != h.last {
        return Err(Error::ChunkDecode(
            "last timestamp does not match the header",
        ));
    }
    Ok(r.pos())
}

/// Turns deltas into running sums starting from `acc` (wrapping). A serial loop by nature.
fn prefix_sum(mut acc: i64, xs: &mut [i64]) {
    for x in xs {
        acc = acc.wrapping_add(*x);
        *x = acc;
    }
}
