//! The line protocol scanner: splits a body into points (measurement, tags, fields, timestamp)
//! without copying, unescaping only the strings that contain backslashes.
//!
//! Grammar (InfluxDB 1.x/2.x line protocol):
//! `measurement[,tag=value...] field=value[,field=value...] [timestamp]`, one point per line.
//! A backslash escapes the next byte while scanning; when unescaping, `\,` `\ ` (measurement)
//! and `\,` `\=` `\ ` (keys, tag values) and `\\` lose their backslash, any other backslash
//! stays literal. String field values are double-quoted with `\"` and `\\` escapes and may span
//! lines. Lines that are blank or start with `#` are skipped. `\r\n` ends a line like `\n`.
//! Unescaped strings go into the request's [`Arena`]; everything else is a slice of the body.

use std::borrow::Cow;

use super::error::LineErrorKind;
use crate::arena::{Arena, Str};

/// Characters whose escapes are removed in a measurement.
const MEASUREMENT_SPECIALS: &[u8] = b", ";
/// Characters whose escapes are removed in tag keys, tag values and field keys.
const KEY_SPECIALS: &[u8] = b",= ";

/// A field value as written. String values stay raw (still escaped); they are counted, not stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FieldValue<'a> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(&'a str),
}

/// A rejected line: what was wrong and where (byte offset into the body).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScanError {
    pub kind: LineErrorKind,
    pub pos: usize,
    /// Where scanning resumes when this line is skipped.
    pub resume_from: usize,
}

impl ScanError {
    fn at(kind: LineErrorKind, pos: usize) -> Self {
        ScanError {
            kind,
            pos,
            resume_from: pos,
        }
    }
}

/// One scanned point. Tags and fields are in the scanner's scratch vectors.
#[derive(Debug)]
pub(crate) struct Point<'a> {
    pub measurement: Str<'a>,
    /// Offset of the point's first byte in the body.
    pub start: usize,
    /// The raw timestamp in the request's precision, if the line has one.
    pub timestamp: Option<i64>,
}

/// A point read by [`Scanner::scan_fast`]: its fields are in the scanner.
#[derive(Debug)]
pub(crate) struct FastPoint<'a> {
    /// The measurement and tags as written (still escaped).
    pub series: &'a str,
    /// The raw timestamp in the request's precision, if the line has one.
    pub timestamp: Option<i64>,
    /// Offset just past the line.
    pub end: usize,
}

/// What [`Scanner::scan_full`] found: a point or a bad line, with the number of its first line.
#[derive(Debug)]
pub(crate) enum Scanned<'a> {
    /// A valid point; tags and fields are in the scanner.
    Point(Point<'a>),
    /// A bad line, already skipped. `line_start` is the offset of its first byte.
    Error { err: ScanError, line_start: usize },
}

/// Walks a body point by point. Scratch vectors are reused across points, and escaped strings
/// are unescaped into the arena, so a body costs no allocation per point.
#[derive(Debug)]
pub(crate) struct Scanner<'a> {
    src: &'a str,
    pos: usize,
    /// 1-based number of the line that `pos` is on.
    line_no: u32,
    /// Newlines consumed inside string fields of the current point.
    nl_in_strings: u32,
    pub tags: Vec<(Str<'a>, Str<'a>)>,
    pub fields: Vec<(Str<'a>, FieldValue<'a>)>,
    sort_scratch: Vec<u32>,
}

type Res<T> = Result<T, ScanError>;

impl<'a> Scanner<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Scanner {
            src,
            pos: 0,
            line_no: 1,
            nl_in_strings: 0,
            // Room for a Flink operator line (12 tags, 11 histogram fields) without growing.
            tags: Vec::with_capacity(32),
            fields: Vec::with_capacity(16),
            sort_scratch: Vec::new(),
        }
    }

    /// Skips blank lines and comments up to the next point; returns its first byte, or `None`
    /// at the end of the body. Tags and fields are emptied for the point.
    pub(crate) fn begin_point(&mut self) -> Option<usize> {
        let b = self.src.as_bytes();
        loop {
            let mut i = self.pos;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t' || b[i] == 0) {
                i += 1;
            }
            if i >= b.len() {
                self.pos = i;
                return None;
            }
            match b[i] {
                b'\n' => {
                    self.pos = i + 1;
                    self.line_no += 1;
                    continue;
                }
                b'\r' if i + 1 >= b.len() || b[i + 1] == b'\n' => {
                    self.pos = i + 1;
                    continue;
                }
                b'#' => {
                    self.pos = skip_past_newline(b, i);
                    if self.pos <= b.len() && self.pos > 0 && b[self.pos - 1] == b'\n' {
                        self.line_no += 1;
                    }
                    continue;
                }
                _ => {}
            }
            self.reset_point();
            return Some(i);
        }
    }

    fn reset_point(&mut self) {
        self.tags.clear();
        self.fields.clear();
        self.nl_in_strings = 0;
    }

    /// Parses the point at `i` (from [`Scanner::begin_point`]) with its tags, and moves past it
    /// or, if it is bad, past its line.
    pub(crate) fn scan_full(&mut self, i: usize, arena: &mut Arena) -> (Scanned<'a>, u32) {
        let b = self.src.as_bytes();
        let line_no = self.line_no;
        self.reset_point();
        match self.parse_point(i, arena) {
            Ok((point, end)) => {
                self.commit(end);
                (Scanned::Point(point), line_no)
            }
            Err(err) => {
                let end = skip_past_newline(b, err.resume_from.max(i));
                self.line_no += count_newlines(&b[i..end]);
                self.pos = end;
                (Scanned::Error { err, line_start: i }, line_no)
            }
        }
    }

    /// Parses the point at `i` without looking into its measurement and tags: the series part
    /// is the bytes up to the first unescaped space (a backslash escapes the byte after it, as
    /// in the full scan), and only the fields and the timestamp are scanned. Leaves the
    /// scanner where it was (see [`Scanner::commit`]); `None` when the line needs
    /// [`Scanner::scan_full`] (it ends before a space, has a string field over several lines,
    /// or has any error, which the full scan reports in its own words).
    pub(crate) fn scan_fast(&mut self, i: usize, arena: &mut Arena) -> Option<FastPoint<'a>> {
        let b = self.src.as_bytes();
        if b[i] == b',' {
            return None;
        }
        let mut j = i;
        let head_end = loop {
            j += memchr::memchr3(b' ', b'\\', b'\n', &b[j..])?;
            match b[j] {
                b' ' => break j,
                // Flink escapes the spaces of task and operator names: `Source:\ datagen`.
                b'\\' if b.get(j + 1).is_some_and(|&c| c != b'\n') => j += 2,
                _ => return None,
            }
        };
        let parsed = self
            .parse_fields(head_end, arena)
            .and_then(|j| parse_timestamp(b, j));
        match parsed {
            // A string over several lines: should the series part turn out bad, the full scan
            // would end the point at its first line, not where its fields end, so such a
            // point is left to the full scan.
            Ok(_) if self.nl_in_strings > 0 => {
                self.reset_point();
                None
            }
            Ok((timestamp, end)) => Some(FastPoint {
                series: &self.src[i..head_end],
                timestamp,
                end,
            }),
            Err(_) => {
                self.reset_point();
                None
            }
        }
    }

    /// The 1-based number of the line the scanner is on (after [`Scanner::begin_point`], the
    /// point's first line).
    pub(crate) fn line_no(&self) -> u32 {
        self.line_no
    }

    /// Moves past a point that [`Scanner::scan_fast`] read, whose line ends at `end`.
    pub(crate) fn commit(&mut self, end: usize) {
        let b = self.src.as_bytes();
        self.line_no += self.nl_in_strings;
        self.pos = end;
        if end > 0 && b[end - 1] == b'\n' {
            self.line_no += 1;
        }
    }

    /// Starts scanning again at `pos`, a line start of the body, counting lines from `line_no`.
    pub(crate) fn seek(&mut self, pos: usize, line_no: u32) {
        self.pos = pos.min(self.src.len());
        self.line_no = line_no;
    }

    /// Parses one point starting at `i` (not blank, not a comment). Returns the point and the
    /// offset just past its line end.
    fn parse_point(&mut self, i: usize, arena: &mut Arena) -> Res<(Point<'a>, usize)> {
        let b = self.src.as_bytes();
        if b[i] == b',' {
            return Err(ScanError::at(LineErrorKind::MissingMeasurement, i));
        }
        let (end, stop, escaped) = scan_token(b, i, false);
        if stop == Stop::Eol {
            return Err(ScanError::at(LineErrorKind::MissingFields, end));
        }
        let measurement = unescape_in(&self.src[i..end], escaped, MEASUREMENT_SPECIALS, arena);
        let mut j = end;
        if stop == Stop::Comma {
            j = self.parse_tags(j + 1, arena)?;
        }
        j = self.parse_fields(j, arena)?;
        let (timestamp, end) = parse_timestamp(b, j)?;
        Ok((
            Point {
                measurement,
                start: i,
                timestamp,
            },
            end,
        ))
    }

    /// Parses `k=v[,k=v]*` starting at `i`; returns the offset of the space before the fields.
    fn parse_tags(&mut self, mut i: usize, arena: &mut Arena) -> Res<usize> {
        let b = self.src.as_bytes();
        loop {
            let (kend, stop, kesc) = scan_token(b, i, true);
            if kend == i {
                return Err(ScanError::at(LineErrorKind::MissingTagKey, i));
            }
            if stop != Stop::Equals {
                return Err(ScanError::at(LineErrorKind::MissingTagValue, kend));
            }
            let vstart = kend + 1;
            let (vend, stop, vesc) = scan_token(b, vstart, true);
            if vend == vstart {
                return Err(ScanError::at(LineErrorKind::MissingTagValue, vstart));
            }
            let key = unescape_in(&self.src[i..kend], kesc, KEY_SPECIALS, arena);
            if arena.get(key) == "__name__" {
                return Err(ScanError::at(LineErrorKind::ReservedKey, i));
            }
            let value = unescape_in(&self.src[vstart..vend], vesc, KEY_SPECIALS, arena);
            self.tags.push((key, value));
            match stop {
                Stop::Comma => i = vend + 1,
                Stop::Space => break self.check_duplicate_tags(i, arena).map(|_| vend),
                Stop::Equals => return Err(ScanError::at(LineErrorKind::InvalidTagFormat, vend)),
                Stop::Eol => return Err(ScanError::at(LineErrorKind::MissingFields, vend)),
            }
        }
    }

    /// InfluxDB rejects a point that names a tag twice; so do we (storage would keep only one).
    fn check_duplicate_tags(&mut self, pos: usize, arena: &Arena) -> Res<()> {
        let tags = &self.tags;
        let key = |i: usize| arena.get(tags[i].0);
        let dup = if tags.len() <= 16 {
            (1..tags.len()).any(|a| (0..a).any(|c| key(a) == key(c)))
        } else {
            // Sort indices rather than the tags: the tags' order is what the client sent.
            self.sort_scratch.clear();
            self.sort_scratch.extend(0..tags.len() as u32);
            self.sort_scratch
                .sort_unstable_by(|&x, &y| key(x as usize).cmp(key(y as usize)));
            self.sort_scratch
                .windows(2)
                .any(|w| key(w[0] as usize) == key(w[1] as usize))
        };
        if dup {
            return Err(ScanError::at(LineErrorKind::DuplicateTags, pos));
        }
        Ok(())
    }

    /// Parses the field set starting at `i` (at the separating space); returns the offset just
    /// past the field set.
    fn parse_fields(&mut self, i: usize, arena: &mut Arena) -> Res<usize> {
        let b = self.src.as_bytes();
        let mut i = skip_spaces(b, i);
        if at_eol(b, i) {
            return Err(ScanError::at(LineErrorKind::MissingFields, i));
        }
        loop {
            let (kend, stop, kesc) = scan_token(b, i, true);
            if kend == i {
                return Err(ScanError::at(LineErrorKind::MissingFieldKey, i));
            }
            if stop != Stop::Equals {
                return Err(ScanError::at(LineErrorKind::InvalidFieldFormat, kend));
            }
            let key = unescape_in(&self.src[i..kend], kesc, KEY_SPECIALS, arena);
            let vstart = kend + 1;
            if at_eol(b, vstart) || b[vstart] == b',' || b[vstart] == b' ' {
                return Err(ScanError::at(LineErrorKind::MissingFieldValue, vstart));
            }
            let (value, vend) = if b[vstart] == b'"' {
                self.scan_string(vstart)?
            } else {
                let (vend, _) = scan_value_token(b, vstart);
                let value =
                    parse_value(&self.src[vstart..vend]).map_err(|k| ScanError::at(k, vstart))?;
                (value, vend)
            };
            self.fields.push((key, value));
            if at_eol(b, vend) || b[vend] == b' ' {
                return Ok(vend);
            }
            if b[vend] != b',' {
                return Err(ScanError::at(LineErrorKind::InvalidFieldFormat, vend));
            }
            i = vend + 1;
        }
    }

    /// Scans a double-quoted string starting at the opening quote `q`.
    fn scan_string(&mut self, q: usize) -> Res<(FieldValue<'a>, usize)> {
        let b = self.src.as_bytes();
        let mut j = q + 1;
        let mut newlines = 0;
        while j < b.len() {
            match b[j] {
                b'\\' if j + 1 < b.len() && (b[j + 1] == b'"' || b[j + 1] == b'\\') => j += 2,
                b'"' => {
                    self.nl_in_strings += newlines;
                    return Ok((FieldValue::Str(&self.src[q + 1..j]), j + 1));
                }
                b'\n' => {
                    newlines += 1;
                    j += 1;
                }
                _ => j += 1,
            }
        }
        // No closing quote: report the line and resume on the line after the opening quote,
        // so one bad line does not swallow the rest of the body.
        Err(ScanError {
            kind: LineErrorKind::UnbalancedQuotes,
            pos: q,
            resume_from: q,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Comma,
    Space,
    Equals,
    Eol,
}

/// Byte classes for [`scan_token`]: most bytes are `PLAIN`, so the hot loop is one table
/// lookup and one compare per byte.
const PLAIN: u8 = 0;
const SPECIAL: u8 = 1;

const fn class_table(equals_stops: bool) -> [u8; 256] {
    let mut t = [PLAIN; 256];
    t[b'\\' as usize] = SPECIAL;
    t[b'\n' as usize] = SPECIAL;
    t[b'\r' as usize] = SPECIAL;
    t[b',' as usize] = SPECIAL;
    t[b' ' as usize] = SPECIAL;
    if equals_stops {
        t[b'=' as usize] = SPECIAL;
    }
    t
}

static MEASUREMENT_CLASS: [u8; 256] = class_table(false);
static KEY_CLASS: [u8; 256] = class_table(true);

/// Scans from `i` to the first unescaped `,`, space or (`equals_stops`) `=`, or the line end.
/// Also says whether the token holds a backslash (if not, it needs no unescaping).
#[inline]
fn scan_token(b: &[u8], mut i: usize, equals_stops: bool) -> (usize, Stop, bool) {
    let class = if equals_stops {
        &KEY_CLASS
    } else {
        &MEASUREMENT_CLASS
    };
    let mut escaped = false;
    while i < b.len() {
        // Skip 8 plain bytes at a time: tag values (ids, names) run 20–70 bytes.
        while let Some(w) = b.get(i..i + 8) {
            match first_special(w, equals_stops) {
                Some(k) => {
                    i += k;
                    break;
                }
                None => i += 8,
            }
        }
        let Some(&c) = b.get(i) else {
            break;
        };
        if class[c as usize] == PLAIN {
            i += 1;
            continue;
        }
        match c {
            b'\\' if i + 1 < b.len() && b[i + 1] != b'\n' => {
                escaped = true;
                i += 2
            }
            b'\\' => {
                escaped = true;
                i += 1
            }
            b'\n' => return (i, Stop::Eol, escaped),
            b'\r' if i + 1 >= b.len() || b[i + 1] == b'\n' => return (i, Stop::Eol, escaped),
            b'\r' => i += 1,
            b',' => return (i, Stop::Comma, escaped),
            b' ' => return (i, Stop::Space, escaped),
            _ => return (i, Stop::Equals, escaped),
        }
    }
    (b.len(), Stop::Eol, escaped)
}

/// Offset of the first byte of `w` (8 bytes) that [`scan_token`] must look at: `\\`, `\n`,
/// `\r`, `,`, space, and `=` if `equals_stops`. Word-at-a-time: a byte equal to `c` is a zero
/// byte of `w ^ c…c`, and the lowest zero byte is found exactly by the borrow trick.
#[inline]
fn first_special(w: &[u8], equals_stops: bool) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut word = [0u8; 8];
    word.copy_from_slice(w);
    let v = u64::from_le_bytes(word);
    let zero = |c: u8| {
        let x = v ^ (LO * u64::from(c));
        x.wrapping_sub(LO) & !x & HI
    };
    let mut m = zero(b'\\') | zero(b'\n') | zero(b'\r') | zero(b',') | zero(b' ');
    if equals_stops {
        m |= zero(b'=');
    }
    (m != 0).then(|| m.trailing_zeros() as usize / 8)
}

/// Scans an unquoted field value: up to `,`, space or line end.
#[inline]
fn scan_value_token(b: &[u8], mut i: usize) -> (usize, Stop) {
    while i < b.len() {
        match b[i] {
            b',' => return (i, Stop::Comma),
            b' ' => return (i, Stop::Space),
            b'\n' => return (i, Stop::Eol),
            b'\r' if i + 1 >= b.len() || b[i + 1] == b'\n' => return (i, Stop::Eol),
            _ => i += 1,
        }
    }
    (b.len(), Stop::Eol)
}

#[inline]
fn at_eol(b: &[u8], i: usize) -> bool {
    i >= b.len() || b[i] == b'\n' || (b[i] == b'\r' && (i + 1 >= b.len() || b[i + 1] == b'\n'))
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    i
}

/// The offset just past the next `\n` at or after `i`, or the end of the body.
fn skip_past_newline(b: &[u8], i: usize) -> usize {
    match b[i.min(b.len())..].iter().position(|&c| c == b'\n') {
        Some(p) => i + p + 1,
        None => b.len(),
    }
}

fn count_newlines(b: &[u8]) -> u32 {
    b.iter().filter(|&&c| c == b'\n').count() as u32
}

/// Parses the optional timestamp at `i` (just past the field set) and the line end.
fn parse_timestamp(b: &[u8], i: usize) -> Res<(Option<i64>, usize)> {
    let mut i = skip_spaces(b, i);
    let mut ts = None;
    if !at_eol(b, i) {
        let start = i;
        let neg = b[i] == b'-';
        if neg {
            i += 1;
        }
        let digits = i;
        let mut magnitude = 0u64;
        // Eight digits at a time while they last: a nanosecond timestamp has 19.
        while let Some(eight) = b.get(i..i + 8).and_then(eight_digits) {
            if i - digits >= 16 {
                break; // a 17th digit on: leave it to the checked loop below
            }
            magnitude = magnitude * 100_000_000 + eight;
            i += 8;
        }
        let fast = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let magnitude = digit_value(magnitude, &b[fast..i])
            .ok_or(ScanError::at(LineErrorKind::TimestampOutOfRange, start))?;
        // Beyond 2^63 (i64::MIN's magnitude) the number overflows while being read, which is
        // reported before anything that follows it.
        if magnitude > 1 << 63 {
            return Err(ScanError::at(LineErrorKind::TimestampOutOfRange, start));
        }
        if i == digits || !(at_eol(b, i) || b[i] == b' ') {
            return Err(ScanError::at(LineErrorKind::BadTimestamp, start));
        }
        ts = Some(if neg {
            (magnitude as i64).wrapping_neg()
        } else {
            i64::try_from(magnitude)
                .map_err(|_| ScanError::at(LineErrorKind::TimestampOutOfRange, start))?
        });
        i = skip_spaces(b, i);
        if !at_eol(b, i) {
            return Err(ScanError::at(LineErrorKind::TrailingGarbage, i));
        }
    }
    if i < b.len() && b[i] == b'\r' {
        i += 1;
    }
    if i < b.len() && b[i] == b'\n' {
        i += 1;
    }
    Ok((ts, i))
}

/// `v` followed by the digits `d`, `None` beyond `u64`.
fn digit_value(mut v: u64, d: &[u8]) -> Option<u64> {
    for &c in d {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

/// The value of eight ASCII digits (`w` has exactly 8 bytes), or `None` if one is not a
/// digit. Word-at-a-time: a digit byte has high nibble 3 and stays so when 6 is added (no
/// byte carries into the next), and the digits are combined pairwise, 2 → 4 → 8, by
/// multiply-and-shift within the word.
#[inline]
fn eight_digits(w: &[u8]) -> Option<u64> {
    let mut word = [0u8; 8];
    word.copy_from_slice(w);
    let v = u64::from_le_bytes(word);
    let d = v.wrapping_sub(0x3030_3030_3030_3030);
    let not_digit = (v & 0xf0f0_f0f0_f0f0_f0f0) != 0x3030_3030_3030_3030
        || ((v.wrapping_add(0x0606_0606_0606_0606)) & 0xf0f0_f0f0_f0f0_f0f0)
            != 0x3030_3030_3030_3030;
    if not_digit {
        return None;
    }
    // The first digit is the lowest byte: each step puts `high * 10^k + low` in the low lane.
    let d = (d.wrapping_mul(10) + (d >> 8)) & 0x00ff_00ff_00ff_00ff;
    let d = (d.wrapping_mul(100) + (d >> 16)) & 0x0000_ffff_0000_ffff;
    let d = (d.wrapping_mul(10_000) + (d >> 32)) & 0xffff_ffff;
    Some(d)
}

/// Parses an unquoted field value: integer `12i`, unsigned `12u`, float, or boolean.
pub(crate) fn parse_value(tok: &str) -> Result<FieldValue<'_>, LineErrorKind> {
    let b = tok.as_bytes();
    let Some(&first) = b.first() else {
        return Err(LineErrorKind::MissingFieldValue);
    };
    if !(first.is_ascii_digit()
        || first == b'-'
        || first == b'.'
        || first == b'+'
        || first == b'n'
        || first == b'N')
    {
        return parse_bool(tok);
    }
    match b[b.len() - 1] {
        b'i' => parse_int(&tok[..tok.len() - 1]),
        b'u' => parse_uint(&tok[..tok.len() - 1]),
        _ => parse_float(tok),
    }
}

fn parse_int(s: &str) -> Result<FieldValue<'_>, LineErrorKind> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(LineErrorKind::InvalidNumber);
    }
    s.parse::<i64>()
        .map(FieldValue::Int)
        .map_err(|_| LineErrorKind::IntegerOutOfRange)
}

fn parse_uint(s: &str) -> Result<FieldValue<'_>, LineErrorKind> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(LineErrorKind::InvalidNumber);
    }
    s.parse::<u64>()
        .map(FieldValue::UInt)
        .map_err(|_| LineErrorKind::IntegerOutOfRange)
}

/// Validates InfluxDB's float syntax first: Rust's parser also takes `inf`, `nan` and `+1`,
/// which InfluxDB rejects.
fn parse_float(s: &str) -> Result<FieldValue<'_>, LineErrorKind> {
    let b = s.as_bytes();
    let neg = b[0] == b'-';
    let body = if neg { &b[1..] } else { b };
    let mut digits = 0;
    let mut dot = false;
    let mut exp = false;
    // The digits as one integer and how many of them follow the dot, for the fast path.
    let mut mantissa = 0u64;
    let mut fraction_digits = 0usize;
    for (k, &c) in body.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                digits += 1;
                mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                fraction_digits += usize::from(dot);
            }
            b'.' if !dot && !exp => dot = true,
            b'e' | b'E' if !exp && digits > 0 => exp = true,
            b'+' | b'-' if k > 0 && matches!(body[k - 1], b'e' | b'E') => {}
            _ => return Err(LineErrorKind::InvalidNumber),
        }
    }
    if digits == 0 {
        return Err(LineErrorKind::InvalidNumber);
    }
    // Clinger's fast path: an integer up to 2^53 and a power of ten up to 10^22 are both
    // exact doubles, so one (correctly rounded) division is the correctly rounded value.
    // Flink's counters and short decimals all take it.
    if !exp && digits <= 19 && mantissa <= 1 << 53 && fraction_digits < POW10.len() {
        let v = mantissa as f64 / POW10[fraction_digits];
        return Ok(FieldValue::Float(if neg { -v } else { v }));
    }
    let v: f64 = s.parse().map_err(|_| LineErrorKind::InvalidNumber)?;
    if !v.is_finite() {
        return Err(LineErrorKind::InvalidFloat);
    }
    Ok(FieldValue::Float(v))
}

/// The powers of ten that are exact doubles.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

fn parse_bool(s: &str) -> Result<FieldValue<'_>, LineErrorKind> {
    match s {
        "t" | "T" | "true" | "True" | "TRUE" => Ok(FieldValue::Bool(true)),
        "f" | "F" | "false" | "False" | "FALSE" => Ok(FieldValue::Bool(false)),
        _ => Err(LineErrorKind::InvalidBoolean),
    }
}

/// Offset of the first backslash in `s` that escapes a byte of `specials` or `\`.
fn first_escape(s: &str, specials: &[u8]) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = b.iter().position(|&c| c == b'\\')?;
    while i + 1 < b.len() {
        if b[i] == b'\\' && (specials.contains(&b[i + 1]) || b[i + 1] == b'\\') {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Appends `s` to `dst` without the backslash of each `\X` for X in `specials` or `\`.
fn push_unescaped(dst: &mut String, s: &str, specials: &[u8]) {
    let b = s.as_bytes();
    let mut last = 0;
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\\' && (specials.contains(&b[i + 1]) || b[i + 1] == b'\\') {
            dst.push_str(&s[last..i]);
            last = i + 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    dst.push_str(&s[last..]);
}

/// [`unescape`] into the arena: a body slice when nothing changes. `has_backslash` comes from
/// the scan, so a plain token costs nothing here.
fn unescape_in<'a>(s: &'a str, has_backslash: bool, specials: &[u8], arena: &mut Arena) -> Str<'a> {
    if !has_backslash || first_escape(s, specials).is_none() {
        return Str::Borrowed(s);
    }
    Str::Derived(arena.derive(|_, dst| push_unescaped(dst, s, specials)))
}

/// Removes the backslash of `\X` for X in `specials` or `\`; borrows when nothing changes.
pub(crate) fn unescape<'a>(s: &'a str, specials: &[u8]) -> Cow<'a, str> {
    if first_escape(s, specials).is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    push_unescaped(&mut out, s, specials);
    Cow::Owned(out)
}

/// Unescapes a string field value (`\"` and `\\`).
pub(crate) fn unescape_string_field(s: &str) -> Cow<'_, str> {
    unescape(s, b"\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_rules() {
        assert_eq!(unescape(r"a\,b\ c", MEASUREMENT_SPECIALS), "a,b c");
        assert_eq!(unescape(r"a\=b", MEASUREMENT_SPECIALS), r"a\=b");
        assert_eq!(unescape(r"a\=b", KEY_SPECIALS), "a=b");
        assert_eq!(unescape(r"a\\b", KEY_SPECIALS), r"a\b");
        assert_eq!(unescape(r"a\xb", KEY_SPECIALS), r"a\xb");
        assert!(matches!(unescape(r"a\xb", KEY_SPECIALS), Cow::Borrowed(_)));
        assert_eq!(unescape("trailing\\", KEY_SPECIALS), "trailing\\");
        assert_eq!(
            unescape_string_field(r#"say \"hi\" \\o/"#),
            r#"say "hi" \o/"#
        );
    }

    #[test]
    fn word_scan_matches_byte_scan() {
        let body = b"abcdefgh,ijklmnopqrstuvwx yz\\ 0123456789=abcdefghijklmnop\r\nq";
        for equals_stops in [false, true] {
            let class = if equals_stops {
                &KEY_CLASS
            } else {
                &MEASUREMENT_CLASS
            };
            for start in 0..body.len().saturating_sub(8) {
                let w = &body[start..start + 8];
                let want = w.iter().position(|&c| class[c as usize] != PLAIN);
                assert_eq!(
                    first_special(w, equals_stops),
                    want,
                    "{start} {equals_stops}"
                );
            }
        }
        // Bytes above 0x80 and bytes just above a match do not confuse it.
        assert_eq!(
            first_special(&[0xc3, 0xa9, b',', b'x', 1, 1, 1, 1], true),
            Some(2)
        );
        assert_eq!(
            first_special(&[0x81, 0x01, 0x2d, b' ', 0x21, 0, 0, 0], true),
            Some(3)
        );
        assert_eq!(first_special(b"a=b=c=d=", false), None);
        assert_eq!(first_special(b"a=b=c=d=", true), Some(1));
    }

    #[test]
    fn values() {
        let f = |s: &'static str| parse_value(s);
        assert_eq!(f("1"), Ok(FieldValue::Float(1.0)));
        assert_eq!(f("-1.5"), Ok(FieldValue::Float(-1.5)));
        assert_eq!(f("1e3"), Ok(FieldValue::Float(1000.0)));
        assert_eq!(f("1.E+78"), Ok(FieldValue::Float(1e78)));
        assert_eq!(f(".5"), Ok(FieldValue::Float(0.5)));
        assert_eq!(f("1."), Ok(FieldValue::Float(1.0)));
        assert_eq!(f("12i"), Ok(FieldValue::Int(12)));
        assert_eq!(f("-9223372036854775808i"), Ok(FieldValue::Int(i64::MIN)));
        assert_eq!(
            f("9223372036854775808i"),
            Err(LineErrorKind::IntegerOutOfRange)
        );
        assert_eq!(f("18446744073709551615u"), Ok(FieldValue::UInt(u64::MAX)));
        assert_eq!(f("-1u"), Err(LineErrorKind::InvalidNumber));
        assert_eq!(f("1.5i"), Err(LineErrorKind::InvalidNumber));
        assert_eq!(f("NaN"), Err(LineErrorKind::InvalidNumber));
        assert_eq!(f("nan"), Err(LineErrorKind::InvalidNumber));
        assert_eq!(f("inf"), Err(LineErrorKind::InvalidBoolean));
        assert_eq!(f("-inf"), Err(LineErrorKind::InvalidNumber));
        assert_eq!(f("+1"), Err(LineErrorKind::InvalidNumber));
        assert_eq!(f("1e400"), Err(LineErrorKind::InvalidFloat));
        assert_eq!(f("1.2.3"), Err(LineErrorKind::InvalidNumber));
        assert_eq!(f("-"), Err(LineErrorKind::InvalidNumber));
        assert_eq!(f("e5"), Err(LineErrorKind::InvalidBoolean));
        for t in ["t", "T", "true", "True", "TRUE"] {
            assert_eq!(f(t), Ok(FieldValue::Bool(true)), "{t}");
        }
        for t in ["f", "F", "false", "False", "FALSE"] {
            assert_eq!(f(t), Ok(FieldValue::Bool(false)), "{t}");
        }
        assert_eq!(f("tRUE"), Err(LineErrorKind::InvalidBoolean));
        assert_eq!(f("-0.0"), Ok(FieldValue::Float(-0.0)));
        assert!(matches!(f("-0.0"), Ok(FieldValue::Float(v)) if v.is_sign_negative()));
        // At and past the fast path's limits (2^53, 19 digits, 10^22).
        for s in [
            "9007199254740992",
            "9007199254740993",
            "0.024691358024691357",
            "1234567890123456789",
            "12345678901234567890.5",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
        ] {
            assert_eq!(f(s), Ok(FieldValue::Float(s.parse().unwrap())), "{s}");
        }
    }

    proptest::proptest! {
        #[test]
        fn decimals_parse_as_std_does(s in "-?[0-9]{0,21}(\\.[0-9]{0,24})?") {
            let want: Option<f64> = s.parse().ok().filter(|v: &f64| v.is_finite());
            match parse_float_value(&s) {
                Some(v) => proptest::prop_assert_eq!(Some(v.to_bits()), want.map(f64::to_bits)),
                None => proptest::prop_assert!(want.is_none() || !s.bytes().any(|c| c.is_ascii_digit())),
            }
        }
    }

    fn parse_float_value(s: &str) -> Option<f64> {
        if s.is_empty() {
            return None;
        }
        match parse_float(s) {
            Ok(FieldValue::Float(v)) => Some(v),
            _ => None,
        }
    }

    #[test]
    fn eight_digits_word_at_a_time() {
        for s in ["00000000", "12345678", "99999999", "10000001", "31415926"] {
            assert_eq!(eight_digits(s.as_bytes()), s.parse().ok(), "{s}");
        }
        for s in [
            "1234567a",
            "/2345678",
            ":2345678",
            "1234 678",
            "-1234567",
            "\x001234567",
        ] {
            assert_eq!(eight_digits(&s.as_bytes()[..8]), None, "{s}");
        }
        // Every single non-digit byte in every position.
        for pos in 0..8 {
            for c in 0..=255u8 {
                let mut w = *b"12345678";
                w[pos] = c;
                assert_eq!(eight_digits(&w).is_some(), c.is_ascii_digit(), "{pos} {c}");
            }
        }
    }

    #[test]
    fn timestamps_in_and_out_of_range() {
        let ts = |s: &str| {
            parse_timestamp(s.as_bytes(), 0)
                .map(|(t, _)| t)
                .map_err(|e| e.kind)
        };
        assert_eq!(
            ts("1795668285135000000"),
            Ok(Some(1_795_668_285_135_000_000))
        );
        assert_eq!(ts("9223372036854775807"), Ok(Some(i64::MAX)));
        assert_eq!(ts("-9223372036854775808"), Ok(Some(i64::MIN)));
        assert_eq!(ts("000000000000000000000042"), Ok(Some(42)));
        assert_eq!(
            ts("9223372036854775808"),
            Err(LineErrorKind::TimestampOutOfRange)
        );
        assert_eq!(
            ts("-9223372036854775809"),
            Err(LineErrorKind::TimestampOutOfRange)
        );
        assert_eq!(
            ts("99999999999999999999"),
            Err(LineErrorKind::TimestampOutOfRange)
        );
        // An overflow is found while reading, before the garbage after it.
        assert_eq!(
            ts("9999999999999999999x"),
            Err(LineErrorKind::TimestampOutOfRange)
        );
        assert_eq!(ts("9223372036854775808x"), Err(LineErrorKind::BadTimestamp));
        assert_eq!(ts("12x"), Err(LineErrorKind::BadTimestamp));
        assert_eq!(ts("-"), Err(LineErrorKind::BadTimestamp));
        assert_eq!(ts(""), Ok(None));
    }
}
