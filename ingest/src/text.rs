//! Prometheus text exposition 0.0.4 and OpenMetrics 1.0 → [`WriteBatch`], as scraped from or
//! pushed by Flink's PrometheusReporter (FLINK.md §2.1).
//!
//! Accepted beyond the strict grammar, because Flink (simpleclient) or Prometheus 3 emits it:
//! a trailing comma inside `{}`, unsorted labels, Java `Double.toString` values
//! (`1.795617769014E12`), whitespace runs, blank lines, CRLF line ends, and quoted UTF-8 names
//! (`{"metric.name", "label.name"="v"}`). `# HELP`, `# TYPE` and `# UNIT` become
//! [`MetricMetadata`]; other comments are ignored.
//!
//! OpenMetrics differences: timestamps are seconds (with a fraction) instead of milliseconds,
//! `# EOF` must end the body, exemplars (`… # {trace_id="x"} 1 1.5`) are skipped, and
//! `<family>_created` series of counters, histograms and summaries are skipped (as Prometheus 3
//! does: they carry a creation time, not a sample).
//!
//! Failure semantics follow Prometheus' scrape: the first malformed line fails the body, with
//! its line and column. The batch then still holds the complete series of the lines before it;
//! the caller decides whether to keep them (Prometheus does not).

mod lex;
mod sample;

use std::borrow::Cow;

use eddy_storage::WriteBatch;

use crate::error::{Error, Result};
use crate::remote_write::{MetricMetadata, MetricType};
use lex::{Cursor, LexError};

/// How to read a text body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextOptions {
    /// Timestamp (ms) for samples that carry none: the scrape or push time.
    pub default_timestamp_ms: i64,
    /// OpenMetrics 1.0 instead of text 0.0.4.
    pub openmetrics: bool,
}

impl TextOptions {
    /// Options for a body of the given `Content-Type`: OpenMetrics for
    /// `application/openmetrics-text`, text 0.0.4 for anything else (including none).
    pub fn for_content_type(content_type: Option<&str>, default_timestamp_ms: i64) -> Self {
        let openmetrics = content_type.is_some_and(|ct| {
            ct.trim_start()
                .get(..28)
                .is_some_and(|p| p.eq_ignore_ascii_case("application/openmetrics-text"))
        });
        TextOptions {
            default_timestamp_ms,
            openmetrics,
        }
    }
}

/// What a parsed body contained.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextStats {
    /// Sample lines read (including skipped `_created` lines).
    pub sample_lines: usize,
    /// Series (= samples: one per line) appended to the batch.
    pub series: usize,
    /// OpenMetrics `_created` lines skipped.
    pub created_skipped: usize,
    /// OpenMetrics exemplars skipped.
    pub exemplars: usize,
    /// Metric families with metadata (`# HELP` / `# TYPE` / `# UNIT`) appended to `meta`.
    pub metadata: usize,
}

/// Parses a text exposition body, appending one series per sample line to `batch` (labels
/// borrowed from `body`; only values with escapes are copied) and one [`MetricMetadata`] per
/// family with `# HELP`/`# TYPE`/`# UNIT` lines to `meta` (consecutive lines of one family
/// update one entry, as expositions write them). Fails on the first malformed line, naming its
/// 1-based line and column.
pub fn parse_text<'a>(
    body: &'a str,
    opts: &TextOptions,
    batch: &mut WriteBatch<'a>,
    meta: &mut Vec<MetricMetadata<'a>>,
) -> Result<TextStats> {
    let mut p = Parser {
        opts,
        meta_start: meta.len(),
        stats: TextStats::default(),
        family: None,
        eof: false,
    };
    let mut lineno = 0;
    for raw in body.split('\n') {
        lineno += 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if p.eof {
            if !line.is_empty() {
                return Err(parse_error(lineno, 0, "unexpected content after \"# EOF\""));
            }
            continue;
        }
        let mut c = Cursor::new(line);
        let lead = c.skip_ws();
        let res = match c.peek() {
            None => Ok(()),
            Some(b'#') => p.comment(c, meta),
            Some(_) => p.sample(&line[lead..], batch).map_err(|e| LexError {
                at: e.at + lead,
                msg: e.msg,
            }),
        };
        res.map_err(|e| parse_error(lineno, e.at, e.msg))?;
    }
    if opts.openmetrics && !p.eof {
        return Err(parse_error(
            lineno,
            0,
            "missing \"# EOF\" at the end of an OpenMetrics exposition",
        ));
    }
    Ok(p.stats)
}

fn parse_error(line: usize, at: usize, msg: impl Into<String>) -> Error {
    Error::Parse {
        line,
        col: at + 1,
        msg: msg.into(),
    }
}

/// Per-body parser state.
#[derive(Debug)]
struct Parser<'o, 'a> {
    opts: &'o TextOptions,
    /// Metadata entries before this body; only later ones are updated in place.
    meta_start: usize,
    stats: TextStats,
    /// The family of the last `# TYPE` line, to recognise its `_created` series.
    family: Option<(Cow<'a, str>, MetricType)>,
    eof: bool,
}

impl<'a> Parser<'_, 'a> {
    fn sample(&mut self, line: &'a str, batch: &mut WriteBatch<'a>) -> Result<(), LexError> {
        self.stats.sample_lines += 1;
        let mark = (batch.labels.len(), batch.series.len());
        let rollback = |batch: &mut WriteBatch<'a>| {
            batch.labels.truncate(mark.0);
            batch.series.truncate(mark.1);
        };
        let s = match sample::parse_sample_line(line, self.opts.openmetrics, batch) {
            Ok(s) => s,
            Err(e) => {
                rollback(batch);
                return Err(e);
            }
        };
        self.stats.exemplars += usize::from(s.exemplar);
        if self.opts.openmetrics && self.is_created_series(&s.name) {
            rollback(batch);
            self.stats.created_skipped += 1;
            return Ok(());
        }
        batch.push_sample(s.ts.unwrap_or(self.opts.default_timestamp_ms), s.value);
        self.stats.series += 1;
        Ok(())
    }

    /// `<family>_created` of the current counter/histogram/summary family.
    fn is_created_series(&self, name: &str) -> bool {
        let Some((family, ty)) = &self.family else {
            return false;
        };
        matches!(
            ty,
            MetricType::Counter
                | MetricType::Histogram
                | MetricType::Summary
                | MetricType::GaugeHistogram
        ) && name.strip_suffix("_created") == Some(family.as_ref())
    }

    /// `# HELP name text`, `# TYPE name type`, `# UNIT name unit`, `# EOF`, or a plain comment.
    fn comment(
        &mut self,
        mut c: Cursor<'a>,
        meta: &mut Vec<MetricMetadata<'a>>,
    ) -> Result<(), LexError> {
        c.pos += 1;
        c.skip_ws();
        let kw = c.token();
        match kw {
            "HELP" | "TYPE" => {}
            "UNIT" if self.opts.openmetrics => {}
            "EOF" if self.opts.openmetrics => {
                c.skip_ws();
                if !c.at_end() {
                    return lex::fail(c.pos, "unexpected text after \"# EOF\"");
                }
                self.eof = true;
                return Ok(());
            }
            _ => return Ok(()), // a plain comment
        }
        if c.skip_ws() == 0 {
            return lex::fail(
                c.pos,
                format!(
                    "expected a metric name after \"# {kw}\", found {}",
                    c.found()
                ),
            );
        }
        let name = if c.peek() == Some(b'"') {
            c.quoted()?
        } else {
            Cow::Borrowed(c.metric_name()?)
        };
        let sep = c.skip_ws();
        if !c.at_end() && sep == 0 {
            return lex::fail(
                c.pos,
                format!(
                    "expected whitespace after the metric name, found {}",
                    c.found()
                ),
            );
        }
        let text_at = c.pos;
        let text = c.rest();
        let entry = self.entry(meta, name.clone());
        match kw {
            "HELP" => entry.help = lex::unescape_help(text),
            "UNIT" => entry.unit = Cow::Borrowed(text.trim_end()),
            _ => {
                let word = text.trim_end();
                let Some(ty) = MetricType::from_text(word) else {
                    return lex::fail(text_at, format!("unknown metric type {word:?}"));
                };
                entry.metric_type = ty;
                self.family = Some((name, ty));
            }
        }
        Ok(())
    }

    /// The metadata entry of `family`: the last one if it is that family's, else a new one.
    fn entry<'m>(
        &mut self,
        meta: &'m mut Vec<MetricMetadata<'a>>,
        family: Cow<'a, str>,
    ) -> &'m mut MetricMetadata<'a> {
        let reuse = meta.len() > self.meta_start && meta.last().is_some_and(|m| m.family == family);
        if !reuse {
            meta.push(MetricMetadata {
                family,
                ..Default::default()
            });
            self.stats.metadata += 1;
        }
        let last = meta.len() - 1;
        &mut meta[last]
    }
}
