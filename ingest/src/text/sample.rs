//! One sample line of the text exposition:
//! `name{label="value",…} value [timestamp] [# {exemplar labels} value [timestamp]]`,
//! including the Prometheus 3 quoted-name form `{"metric.name", "label.name"="value"}`.

use std::borrow::Cow;

use eddy_storage::labels::METRIC_NAME;
use eddy_storage::WriteBatch;

use super::lex::{fail, parse_value, Cursor, LexResult};

/// Series with more labels than this are checked for duplicate names once, by sorting, instead
/// of against every earlier label as each is read.
const EAGER_DUP_CHECK_MAX: usize = 64;

/// What a sample line held besides the labels it pushed into the batch.
#[derive(Debug)]
pub(crate) struct ParsedSample<'a> {
    /// The metric name (also pushed as `__name__`).
    pub(crate) name: Cow<'a, str>,
    pub(crate) value: f64,
    /// Timestamp in ms, if the line had one.
    pub(crate) ts: Option<i64>,
    /// True if an OpenMetrics exemplar followed (and was skipped).
    pub(crate) exemplar: bool,
}

/// Parses `line`, starting a series in `batch` and pushing its labels (borrowed from `line`
/// unless unescaped). The caller pushes the sample, or rolls the series back on error.
pub(crate) fn parse_sample_line<'a>(
    line: &'a str,
    openmetrics: bool,
    batch: &mut WriteBatch<'a>,
) -> LexResult<ParsedSample<'a>> {
    let mut c = Cursor::new(line);
    batch.start_series();
    let first_label = batch.labels.len();
    let mut name: Option<Cow<'a, str>> = None;
    if c.peek() != Some(b'{') {
        let n = c.metric_name()?;
        batch.push_label(METRIC_NAME, n);
        name = Some(Cow::Borrowed(n));
    }
    let mut ws = c.skip_ws();
    if c.peek() == Some(b'{') {
        let open = c.pos;
        c.pos += 1;
        parse_labels(&mut c, &mut name, batch, first_label)?;
        if batch.labels.len() - first_label > EAGER_DUP_CHECK_MAX {
            check_duplicates_sorted(&batch.labels[first_label..], open)?;
        }
        ws = c.skip_ws();
    }
    let Some(name) = name else {
        return fail(0, "missing metric name");
    };
    if ws == 0 {
        return fail(
            c.pos,
            format!("expected whitespace before the value, found {}", c.found()),
        );
    }
    let vpos = c.pos;
    let tok = c.token();
    let Some(value) = parse_value(tok) else {
        return fail(vpos, format!("invalid value {tok:?}"));
    };
    c.skip_ws();
    let mut ts = None;
    if !c.at_end() && c.peek() != Some(b'#') {
        let tpos = c.pos;
        let tok = c.token();
        ts = Some(parse_timestamp(tok, openmetrics).ok_or_else(|| invalid_ts(tpos, tok))?);
        c.skip_ws();
    }
    let mut exemplar = false;
    if !c.at_end() {
        if !(openmetrics && c.peek() == Some(b'#')) {
            return fail(c.pos, format!("unexpected {} after the sample", c.found()));
        }
        check_exemplar(&mut c)?;
        exemplar = true;
    }
    Ok(ParsedSample {
        name,
        value,
        ts,
        exemplar,
    })
}

fn invalid_ts(at: usize, tok: &str) -> super::lex::LexError {
    super::lex::LexError {
        at,
        msg: format!("invalid timestamp {tok:?}"),
    }
}

/// 0.0.4 timestamps are integer milliseconds; OpenMetrics ones are seconds with a fraction.
fn parse_timestamp(tok: &str, openmetrics: bool) -> Option<i64> {
    if !openmetrics {
        return tok.parse::<i64>().ok();
    }
    let s = tok.parse::<f64>().ok().filter(|s| s.is_finite())?;
    let ms = (s * 1000.0).round();
    // i64::MAX as f64 rounds up to 2^63, so compare strictly below it.
    (ms >= i64::MIN as f64 && ms < i64::MAX as f64).then_some(ms as i64)
}

/// Reads labels after `{` through the closing `}`. A trailing comma is allowed (Flink writes
/// one). A bare quoted string is the metric name (Prometheus 3 syntax).
fn parse_labels<'a>(
    c: &mut Cursor<'a>,
    name: &mut Option<Cow<'a, str>>,
    batch: &mut WriteBatch<'a>,
    first_label: usize,
) -> LexResult<()> {
    loop {
        c.skip_ws();
        let at = c.pos;
        match c.peek() {
            Some(b'}') => {
                c.pos += 1;
                return Ok(());
            }
            None => return fail(c.pos, "unterminated label set: expected '}'"),
            Some(b'"') => {
                let q = c.quoted()?;
                c.skip_ws();
                if c.peek() == Some(b'=') {
                    c.pos += 1;
                    if q.is_empty() {
                        return fail(at, "empty label name");
                    }
                    label_value(c, q, at, name, batch, first_label)?;
                } else {
                    if name.is_some() {
                        return fail(at, format!("metric name given twice (second: {q:?})"));
                    }
                    if q.is_empty() {
                        return fail(at, "empty metric name");
                    }
                    push_checked(
                        batch,
                        first_label,
                        Cow::Borrowed(METRIC_NAME),
                        q.clone(),
                        at,
                    )?;
                    *name = Some(q);
                }
            }
            Some(_) => {
                let n = c.label_name()?;
                c.skip_ws();
                c.expect(b'=', "'=' after label name")?;
                label_value(c, Cow::Borrowed(n), at, name, batch, first_label)?;
            }
        }
        c.skip_ws();
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {
                c.pos += 1;
                return Ok(());
            }
            _ => {
                return fail(
                    c.pos,
                    format!("expected ',' or '}}' after a label, found {}", c.found()),
                )
            }
        }
    }
}

/// Reads `"value"` after `name=` and pushes the pair.
fn label_value<'a>(
    c: &mut Cursor<'a>,
    n: Cow<'a, str>,
    at: usize,
    name: &mut Option<Cow<'a, str>>,
    batch: &mut WriteBatch<'a>,
    first_label: usize,
) -> LexResult<()> {
    c.skip_ws();
    if c.peek() != Some(b'"') {
        return fail(
            c.pos,
            format!(
                "expected '\"' to open the value of label {n:?}, found {}",
                c.found()
            ),
        );
    }
    let v = c.quoted()?;
    if n == METRIC_NAME && name.is_none() && !v.is_empty() {
        *name = Some(v.clone());
    }
    push_checked(batch, first_label, n, v, at)
}

/// Pushes a label after checking its name against the series' earlier labels (while few).
fn push_checked<'a>(
    batch: &mut WriteBatch<'a>,
    first_label: usize,
    n: Cow<'a, str>,
    v: Cow<'a, str>,
    at: usize,
) -> LexResult<()> {
    let earlier = &batch.labels[first_label..];
    if earlier.len() < EAGER_DUP_CHECK_MAX && earlier.iter().any(|l| l.0 == n) {
        return fail(at, format!("duplicate label name {n:?}"));
    }
    batch.push_label(n, v);
    Ok(())
}

/// Duplicate check for wide series (rare): sorts the names once.
fn check_duplicates_sorted(labels: &[(Cow<'_, str>, Cow<'_, str>)], at: usize) -> LexResult<()> {
    let mut names: Vec<&str> = labels.iter().map(|l| l.0.as_ref()).collect();
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => fail(at, format!("duplicate label name {:?}", w[0])),
        None => Ok(()),
    }
}

/// Checks the shape of an OpenMetrics exemplar, `# {labels} value [timestamp]`, and skips it.
fn check_exemplar(c: &mut Cursor<'_>) -> LexResult<()> {
    c.pos += 1; // '#'
    c.skip_ws();
    if c.peek() != Some(b'{') {
        return fail(
            c.pos,
            format!("expected '{{' to open an exemplar, found {}", c.found()),
        );
    }
    // Skip the exemplar's label set without storing it: quoted strings may hold '}'.
    c.pos += 1;
    loop {
        match c.peek() {
            None => return fail(c.pos, "unterminated exemplar label set: expected '}'"),
            Some(b'"') => drop(c.quoted()?),
            Some(b'}') => {
                c.pos += 1;
                break;
            }
            Some(_) => c.pos += 1,
        }
    }
    c.skip_ws();
    let vpos = c.pos;
    let tok = c.token();
    if parse_value(tok).is_none() {
        return fail(vpos, format!("invalid exemplar value {tok:?}"));
    }
    c.skip_ws();
    if !c.at_end() {
        let tpos = c.pos;
        let tok = c.token();
        parse_timestamp(tok, true).ok_or_else(|| invalid_ts(tpos, tok))?;
        c.skip_ws();
    }
    if !c.at_end() {
        return fail(
            c.pos,
            format!("unexpected {} after the exemplar", c.found()),
        );
    }
    Ok(())
}
