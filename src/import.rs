//! `eddy import`: backfills a data directory from files — Prometheus text exposition (with
//! timestamps), InfluxDB line protocol, or remote_write request bodies — then writes the
//! imported data into blocks. Run it while the server is stopped.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use eddy_ingest::influx::{self, InfluxOptions, InfluxScratch};
use eddy_ingest::remote_write;
use eddy_ingest::text::{self, TextOptions};
use eddy_storage::db::DbOptions;
use eddy_storage::head::HeadOptions;
use eddy_storage::{Db, WriteBatch};

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// Prometheus text exposition / OpenMetrics; samples without a timestamp get the import time.
    Prom,
    /// InfluxDB line protocol (nanosecond timestamps unless --precision says otherwise).
    Influx,
    /// Files each holding one remote_write request body (snappy-compressed protobuf), as POSTed.
    RemoteWrite,
}

/// Flags of `eddy import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Format of the input files.
    #[arg(long, value_enum)]
    pub format: ImportFormat,
    /// Data directory to import into (the server must not be running on it).
    #[arg(
        long = "data-dir",
        visible_alias = "storage.tsdb.path",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,
    /// Timestamp precision of line protocol input (n, u, ms, s, m, h).
    #[arg(long, default_value = "n")]
    pub precision: String,
    /// Files to import.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

/// Piece size for text inputs: parsed and appended one piece at a time, cut at line ends.
const PIECE_BYTES: usize = 16 << 20;

#[derive(Debug, Default)]
struct Totals {
    bytes: u64,
    /// The appends' outcomes added up.
    outcome: eddy_storage::AppendOutcome,
}

impl Totals {
    fn add(&mut self, o: eddy_storage::AppendOutcome) {
        self.outcome.absorb(o);
    }
}

/// Imports the files and flushes them into blocks; prints progress and a summary to stderr.
pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    // Backfill arrives in file order, not time order: accept any order.
    let opts = DbOptions {
        head: HeadOptions {
            ooo_window_ms: i64::MAX / 4,
            ..Default::default()
        },
        backfill: true,
        ..Default::default()
    };
    let db = Db::open(&args.data_dir, opts)
        .with_context(|| format!("open data directory {}", args.data_dir.display()))?;
    let total_bytes: u64 = args
        .files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    let began = Instant::now();
    let mut totals = Totals::default();
    let precision = influx::parse_precision(&args.precision).map_err(|e| anyhow::anyhow!("{e}"))?;
    let now = crate::http::now_ms();
    for file in &args.files {
        let data = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
        match args.format {
            ImportFormat::RemoteWrite => {
                let mut raw = Vec::new();
                remote_write::decompress_snappy(&data, &mut raw, 1 << 30)
                    .with_context(|| format!("{}", file.display()))?;
                let mut batch = WriteBatch::new();
                let stats = remote_write::decode_write_request(&raw, &mut batch, &mut Vec::new())
                    .with_context(|| format!("decode {}", file.display()))?;
                if stats.invalid_series > 0 {
                    eprintln!(
                        "{}: {} invalid series skipped: {:?}",
                        file.display(),
                        stats.invalid_series,
                        stats.invalid
                    );
                }
                totals.add(db.append(&mut batch)?);
                totals.bytes += data.len() as u64;
            }
            ImportFormat::Prom | ImportFormat::Influx => {
                let text = std::str::from_utf8(&data)
                    .with_context(|| format!("{} is not UTF-8", file.display()))?;
                let influx_opts = InfluxOptions {
                    precision,
                    now_ms: now,
                    ..Default::default()
                };
                let mut rest = text;
                let mut line_base = 0usize;
                let mut scratch = InfluxScratch::new();
                while !rest.is_empty() {
                    let cut = if rest.len() <= PIECE_BYTES {
                        rest.len()
                    } else {
                        rest[..PIECE_BYTES]
                            .rfind('\n')
                            .map_or(rest.len(), |i| i + 1)
                    };
                    let (piece, tail) = rest.split_at(cut);
                    let mut batch = WriteBatch::new();
                    if args.format == ImportFormat::Prom {
                        let opts = TextOptions {
                            default_timestamp_ms: now,
                            openmetrics: false,
                        };
                        text::parse_text(piece, &opts, &mut batch, &mut Vec::new()).map_err(
                            |e| {
                                anyhow::anyhow!("{} (lines after {line_base}): {e}", file.display())
                            },
                        )?;
                    } else {
                        let stats =
                            influx::parse_lines(piece, &influx_opts, &mut scratch, &mut batch)
                                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
                        if let Some(m) = stats.error_message() {
                            eprintln!("{} (lines after {line_base}): {m}", file.display());
                        }
                    }
                    totals.add(db.append(&mut batch)?);
                    totals.bytes += piece.len() as u64;
                    line_base += piece.matches('\n').count();
                    rest = tail;
                    progress(&totals, total_bytes, began);
                }
            }
        }
        progress(&totals, total_bytes, began);
    }
    eprintln!();
    let blocks = db.flush().context("write imported data into blocks")?;
    db.close()?;
    eprintln!(
        "imported {} samples into {} new series from {} files in {:.1} s; {} blocks written",
        totals.outcome.accepted,
        totals.outcome.new_series,
        args.files.len(),
        began.elapsed().as_secs_f64(),
        blocks.len()
    );
    for (r, n) in &totals.outcome.rejected {
        eprintln!("  rejected {n} samples: {}", r.as_str());
    }
    for m in &totals.outcome.messages {
        eprintln!("  e.g. {m}");
    }
    if totals.outcome.accepted == 0 {
        bail!("nothing was imported");
    }
    Ok(())
}

fn progress(t: &Totals, total: u64, began: Instant) {
    let pct = if total == 0 {
        100.0
    } else {
        t.bytes as f64 * 100.0 / total as f64
    };
    let width = 30;
    let filled = ((pct / 100.0) * width as f64) as usize;
    eprint!(
        "\r[{}{}] {pct:5.1}%  {} samples  {:.1} s",
        "#".repeat(filled.min(width)),
        " ".repeat(width - filled.min(width)),
        t.outcome.accepted,
        began.elapsed().as_secs_f64()
    );
    let _ = std::io::stderr().flush();
}
