//! Prometheus's spelling of a float, as its HTTP API and `count_values` write it (Go's
//! `strconv.FormatFloat(v, 'f', -1, 64)`): `NaN`, `+Inf`, `-Inf`, else the shortest decimal
//! that reads back as the same float, in plain digits (`1000000000000000000000`,
//! `0.0000001`), never with an exponent.
//!
//! The digits come from zmij (Schubfach), which writes the same shortest digits as Ryū and
//! as Go: when two shortest spellings are equally close, all pick the even last digit
//! (`1658206780088562.25` is written `1658206780088562.2`, which is what Prometheus
//! answers), where Rust's `Display` picks the other one. Spelling the floats was a quarter of
//! a small range query's server instructions with Ryū (`docs/benchmarks.md`, "Small queries,
//! tenth session"); a test checks zmij's spelling against Ryū's on a million values.

/// Where spelled numbers go: a `String`, or the byte buffer of a response body (which needs
/// no UTF-8 check when digits are copied in).
pub trait AsciiOut {
    /// Appends `s`.
    fn push_ascii(&mut self, s: &str);
    /// Appends ASCII bytes (digits, signs, points).
    fn push_ascii_bytes(&mut self, b: &[u8]);
}

impl AsciiOut for String {
    fn push_ascii(&mut self, s: &str) {
        self.push_str(s);
    }

    fn push_ascii_bytes(&mut self, b: &[u8]) {
        self.extend(b.iter().map(|&c| char::from(c)));
    }
}

impl AsciiOut for Vec<u8> {
    fn push_ascii(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }

    fn push_ascii_bytes(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

/// Appends `v` spelled as Prometheus spells it.
pub fn write_float<O: AsciiOut + ?Sized>(out: &mut O, v: f64) {
    if v.is_nan() {
        out.push_ascii("NaN");
    } else if v == f64::INFINITY {
        out.push_ascii("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_ascii("-Inf");
    } else if v == v.trunc() && v.abs() < MAX_EXACT_INT && v != 0.0 {
        write_int(out, v as i64);
    } else {
        write_finite_shortest(out, v);
    }
}

/// 2^53: below it every integer is a float, so the float nearest to an integer-valued `v`
/// other than `v` is at least 1 away, and the shortest decimal that reads back as `v` is
/// `v`'s integer digits (what the shortest-digits path plus [`push_plain`] spell too, only
/// slower).
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// `v` spelled as Prometheus spells it, as a new string.
pub fn float_string(v: f64) -> String {
    let mut s = String::new();
    write_float(&mut s, v);
    s
}

/// Two-digit groups `00`..`99`, for writing integers two digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Appends the decimal digits of `n`.
pub fn write_u64<O: AsciiOut + ?Sized>(out: &mut O, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while n >= 100 {
        let d = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    }
    if n >= 10 {
        let d = n as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    out.push_ascii_bytes(&buf[i..]);
}

/// Appends the decimal digits of `n`, with a minus sign when negative.
fn write_int<O: AsciiOut + ?Sized>(out: &mut O, n: i64) {
    if n < 0 {
        out.push_ascii("-");
    }
    write_u64(out, n.unsigned_abs());
}

/// Appends finite `v` from its shortest digits.
fn write_finite_shortest<O: AsciiOut + ?Sized>(out: &mut O, v: f64) {
    let mut buf = zmij::Buffer::new();
    let s = buf.format_finite(v);
    push_shortest(out, s);
}

/// Appends a shortest spelling as zmij or Ryū write it (`[-]d[.ddd]`, possibly `.0`-ended,
/// or `[-]d[.ddd]e[±]x`) in plain digits.
fn push_shortest<O: AsciiOut + ?Sized>(out: &mut O, s: &str) {
    // The exponent comes last and has at most three digits and a sign (`e-324`, `e+308`), so
    // only the last five bytes can hold the `e`.
    let tail = s.len().saturating_sub(5);
    match s.as_bytes()[tail..].iter().rposition(|&b| b == b'e') {
        None => out.push_ascii(s.strip_suffix(".0").unwrap_or(s)),
        Some(e) => push_plain(out, &s[..tail + e], &s[tail + e + 1..]),
    }
}

/// Writes `[-]d[.ddd]` × 10^`exp` in plain digits (`exp` as written after the `e`: `-7`,
/// `+33` or `33`).
fn push_plain<O: AsciiOut + ?Sized>(out: &mut O, mantissa: &str, exp: &str) {
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    // Exponents have at most three digits, so this cannot fail on zmij's or Ryū's output.
    let exp: i32 = exp.parse().unwrap_or(0);
    let (int_digit, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if negative {
        out.push_ascii("-");
    }
    // The digits are `int_digit frac`; the decimal point goes after `point` of them.
    let (a, b) = (int_digit.as_bytes(), frac.as_bytes());
    let n = (a.len() + b.len()) as i32;
    let point = 1 + exp;
    if point >= n {
        out.push_ascii_bytes(a);
        out.push_ascii_bytes(b);
        push_zeros(out, (point - n) as usize);
    } else if point > 0 {
        // `int_digit` is one digit, so the point falls inside `frac`.
        let p = (point as usize).saturating_sub(a.len()).min(b.len());
        out.push_ascii_bytes(a);
        out.push_ascii_bytes(&b[..p]);
        out.push_ascii(".");
        out.push_ascii_bytes(&b[p..]);
    } else {
        out.push_ascii("0.");
        push_zeros(out, (-point) as usize);
        out.push_ascii_bytes(a);
        out.push_ascii_bytes(b);
    }
}

fn push_zeros<O: AsciiOut + ?Sized>(out: &mut O, n: usize) {
    const ZEROS: &[u8; 64] = &[b'0'; 64];
    let mut left = n;
    while left > 0 {
        let k = left.min(ZEROS.len());
        out.push_ascii_bytes(&ZEROS[..k]);
        left -= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Prometheus 2.42 answers for these scalars (`/api/v1/query?query=<v>`).
    #[test]
    fn spelled_as_prometheus_spells_them() {
        let cases: [(f64, &str); 16] = [
            (1_658_206_780_088_562.2, "1658206780088562.2"),
            (0.3, "0.3"),
            (1e21, "1000000000000000000000"),
            (1e-7, "0.0000001"),
            (123_456_789_012_345_680_000.0, "123456789012345680000"),
            (2.0, "2"),
            (1.0, "1"),
            (0.25, "0.25"),
            (-0.0, "-0"),
            (0.0, "0"),
            (-9.223_372_036_854_776e18, "-9223372036854776000"),
            (840.116_666_666_666_7, "840.1166666666667"),
            (-1.5e-9, "-0.0000000015"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            assert_eq!(float_string(v), want, "{v:e}");
        }
        let tiny = float_string(5e-324);
        assert_eq!(tiny.len(), 2 + 323 + 1);
        assert!(tiny.starts_with("0.000") && tiny.ends_with("0005"));
    }

    /// The integer shortcut spells every integer-valued float as the shortest-digits path
    /// does.
    #[test]
    fn integers_take_the_shortcut_with_the_same_spelling() {
        let mut cases: Vec<f64> = vec![
            1.0,
            -1.0,
            9.0,
            10.0,
            1e15,
            1e16,
            -1e15,
            123_456_789.0,
            MAX_EXACT_INT - 1.0,
            -(MAX_EXACT_INT - 1.0),
            MAX_EXACT_INT,
            MAX_EXACT_INT + 2.0,
            4_503_599_627_370_495.0,
            4_503_599_627_370_496.0,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bits = 1 + (i % 53);
            let n = (x >> (64 - bits)) as i64;
            cases.push(if i % 2 == 0 { n as f64 } else { -(n as f64) });
            cases.push(((x % 100_000) * 10u64.pow(i % 12)) as f64);
        }
        for v in cases {
            let (mut fast, mut slow) = (String::new(), String::new());
            write_float(&mut fast, v);
            write_finite_shortest(&mut slow, v);
            assert_eq!(fast, slow, "{v:e}");
            let mut bytes = b"x".to_vec();
            write_float(&mut bytes, v);
            assert_eq!(&bytes[1..], fast.as_bytes(), "{v:e}");
        }
    }

    /// Every finite value reads back bit for bit, has no exponent, and differs from
    /// `Display` (also shortest) at most in the tie-broken last digit.
    #[test]
    fn every_value_round_trips_in_plain_digits() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for i in 0..300_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = if i % 3 == 0 {
                f64::from(i) / 7.0
            } else {
                f64::from_bits(x)
            };
            if !v.is_finite() {
                continue;
            }
            let s = float_string(v);
            assert!(!s.contains('e'), "{s}");
            let mut bytes = Vec::new();
            write_float(&mut bytes, v);
            assert_eq!(bytes, s.as_bytes(), "{s}");
            assert_eq!(s.parse::<f64>().map(f64::to_bits), Ok(v.to_bits()), "{s}");
            let display = format!("{v}");
            assert_eq!(s.len(), display.len(), "{s} vs {display}");
        }
    }

    /// zmij's digits, made plain, equal Ryū's made plain (Ryū's tie-breaking is the one
    /// checked against Prometheus above), on random bit patterns and on the kinds of values
    /// queries return (ratios, rates, small and huge magnitudes).
    #[test]
    fn zmij_spells_as_ryu_does() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut ryu_buf = ryu::Buffer::new();
        for i in 0..1_000_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match i % 4 {
                0 => f64::from_bits(x),
                1 => (x % 1_000_000_007) as f64 / f64::from(1 + i % 997),
                2 => (x >> 11) as f64 * 1e-300 * f64::from(i % 613),
                _ => f64::from_bits(x) * 1e10,
            };
            if !v.is_finite() {
                continue;
            }
            let (mut ours, mut reference) = (String::new(), String::new());
            write_finite_shortest(&mut ours, v);
            push_shortest(&mut reference, ryu_buf.format_finite(v));
            assert_eq!(ours, reference, "{v:e}");
        }
    }
}
