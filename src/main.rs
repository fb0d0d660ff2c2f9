//! The eddy server binary: `eddy serve` (the default), `eddy query`, `eddy promqltest`,
//! `eddy import`.

use clap::{Parser, Subcommand};
use eddy::{config, server};

/// eddy: a time-series database for the metrics of Apache Flink fleets.
#[derive(Debug, Parser)]
#[command(name = "eddy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Flags of `serve`, which runs when no subcommand is given.
    #[command(flatten)]
    serve: config::ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve(config::ServeArgs),
    /// Run Prometheus `.test` files (files or directories) against eddy's storage and engine;
    /// prints each failing eval and ends with `N passed, M failed, K skipped`.
    Promqltest {
        /// `.test` files or directories holding them.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// Also print skipped evals with the reason.
        #[arg(long)]
        verbose: bool,
    },
    /// Backfill a data directory from files (Prometheus text, line protocol, remote_write bodies).
    Import(eddy::import::ImportArgs),
    /// Run a PromQL query against a running eddy (or any Prometheus API) and print the result.
    Query(eddy::cli_query::QueryArgs),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EDDY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    ignore_file_size_signal();
    eddy::allocator::configure_malloc();
    let cli = Cli::parse();
    let result = match cli.command {
        None => server::run(cli.serve),
        Some(Command::Serve(args)) => server::run(args),
        Some(Command::Promqltest { paths, verbose }) => {
            match eddy::promqltest::run(&paths, verbose) {
                Ok(s) if s.failed == 0 => Ok(()),
                Ok(s) => Err(anyhow::anyhow!("{} promqltest evals failed", s.failed)),
                Err(e) => Err(e),
            }
        }
        Some(Command::Query(args)) => eddy::cli_query::run(args),
        Some(Command::Import(args)) => eddy::import::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eddy: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// A write past the process's file-size limit (`RLIMIT_FSIZE`) would kill the server with
/// `SIGXFSZ`; ignored, the write fails with `EFBIG` instead, and the WAL treats that like a
/// full disk (the request gets a 503, accepted data stays intact).
fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
