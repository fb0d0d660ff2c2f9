//! Prometheus's spelling of a float, as its HTTP API and `count_values` write it (Go's
//! `strconv.FormatFloat(v, 'f', -1, 64)`): `NaN`, `+Inf`, `-Inf`, else the shortest decimal
//! that reads back as the same float, in plain digits (`1000000000000000000000`,
//! `0.0000001`), never with an exponent.
//!
//! The digits come from Ryū (the `ryu` crate), as in Go: when two shortest spellings are
//! equally close, both pick the even last digit (`1658206780088562.25` is written
//! `1658206780088562.2`, which is what Prometheus answers), where Rust's `Display` picks the
//! other one. It is also several times cheaper than `Display`, which matters for results of
//! thousands of points.

/// Appends `v` spelled as Prometheus spells it.
pub fn write_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let mut buf = ryu::Buffer::new();
        let s = buf.format_finite(v);
        match s.split_once('e') {
            None => out.push_str(s.strip_suffix(".0").unwrap_or(s)),
            Some((mantissa, exp)) => push_plain(out, mantissa, exp),
        }
    }
}

/// `v` spelled as Prometheus spells it, as a new string.
pub fn float_string(v: f64) -> String {
    let mut s = String::new();
    write_float(&mut s, v);
    s
}

/// Writes ryu's `[-]d[.ddd]` × 10^`exp` in plain digits.
fn push_plain(out: &mut String, mantissa: &str, exp: &str) {
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    // ryu writes exponents of at most three digits, so this cannot fail on its output.
    let exp: i32 = exp.parse().unwrap_or(0);
    let (int_digit, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if negative {
        out.push('-');
    }
    // The digits are `int_digit frac`; the decimal point goes after `point` of them.
    let n = (int_digit.len() + frac.len()) as i32;
    let point = 1 + exp;
    let digits = || int_digit.chars().chain(frac.chars());
    if point >= n {
        out.extend(digits());
        out.extend(std::iter::repeat_n('0', (point - n) as usize));
    } else if point > 0 {
        out.extend(digits().take(point as usize));
        out.push('.');
        out.extend(digits().skip(point as usize));
    } else {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-point) as usize));
        out.extend(digits());
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
            assert_eq!(s.parse::<f64>().map(f64::to_bits), Ok(v.to_bits()), "{s}");
            let display = format!("{v}");
            assert_eq!(s.len(), display.len(), "{s} vs {display}");
        }
    }
}
