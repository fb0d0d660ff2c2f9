//! Number and duration scanning with the exact acceptance rules of Prometheus's lexer, so
//! that the same texts are numbers, durations, or errors (with the same text in the message).

use super::is_alnum;

/// Scans a number the way Prometheus's `scanNumber` does. Returns the bytes consumed and whether
/// they form a number token (false when a letter follows, e.g. a duration unit, or when the
/// digits are malformed).
pub(super) fn scan_number(s: &str) -> (usize, bool) {
    let b = s.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let mut i = 0;
    let mut hex = false;
    if at(0) == Some(b'0') {
        i = 1;
        if matches!(at(1), Some(b'x' | b'X')) {
            i = 2;
            hex = true;
            if at(i) == Some(b'_') {
                i += 1;
            }
        }
    }
    let is_digit = |c: u8| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    };
    if at(i) == Some(b'.') {
        i += 1;
    }
    if at(i).is_some_and(is_digit) {
        i += 1;
    }
    let (mut dot, mut exp) = (false, false);
    while let Some(c) = at(i).filter(|&c| is_digit(c) || matches!(c, b'.' | b'_' | b'e' | b'E')) {
        // The order of these checks matters: like Prometheus, `e` is an exponent before it is a
        // hex digit.
        if c == b'.' {
            i += 1;
            if dot || matches!(at(i), Some(b'_' | b'.')) {
                return (i + usize::from(!dot), false);
            }
            if hex {
                return (i, false);
            }
            dot = true;
        } else if matches!(c, b'e' | b'E') {
            i += 1;
            if exp {
                return (i, false);
            }
            exp = true;
            if matches!(at(i), Some(b'+' | b'-')) {
                i += 1;
            }
            match at(i) {
                None => return (i, false),
                Some(b'.' | b'_' | b'e' | b'E') => return (i + 1, false),
                _ => {}
            }
        } else if c == b'_' {
            i += 1;
            match at(i) {
                None => return (i, false),
                Some(b'.' | b'_' | b'e' | b'E') => return (i + 1, false),
                _ => {}
            }
        } else {
            while at(i).is_some_and(is_digit) {
                i += 1;
            }
        }
    }
    if i == 0 {
        return (0, false);
    }
    (i, !s[i..].chars().next().is_some_and(is_alnum))
}

/// Runs Prometheus's `acceptRemainingDuration` on the text after a number: units and further
/// number-unit pairs. Returns `Ok(len)` for a duration, or `Err(len)` with how much Prometheus
/// had consumed when it gave up (that text appears in its error message).
pub(super) fn accept_remaining_duration(s: &str) -> Result<usize, usize> {
    let b = s.as_bytes();
    if !matches!(b.first(), Some(b's' | b'm' | b'h' | b'd' | b'w' | b'y')) {
        return Err(0);
    }
    let mut i = 1;
    if b.get(i) == Some(&b's') {
        i += 1;
    }
    while b.get(i).is_some_and(u8::is_ascii_digit) {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if !matches!(b.get(i), Some(b's' | b'm' | b'h' | b'd' | b'w')) {
            return Err(i);
        }
        i += 1;
        if b.get(i) == Some(&b's') {
            i += 1;
        }
    }
    match s[i..].chars().next() {
        Some(c) if is_alnum(c) => Err(i + c.len_utf8()),
        _ => Ok(i),
    }
}
