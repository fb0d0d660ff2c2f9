//! `eddy serve`: opens the database, starts maintenance, and serves HTTP until SIGINT/SIGTERM.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use eddy_storage::db::DbOptions;
use eddy_storage::head::{HeadOptions, SeriesLimitOptions};
use eddy_storage::wal::WalOptions;
use eddy_storage::Db;

use eddy_ingest::scrape;

use crate::config::ServeArgs;
use crate::http::{self, AppState};

/// Database options from the flags.
pub fn db_options(args: &ServeArgs) -> DbOptions {
    DbOptions {
        head: HeadOptions {
            ooo_window_ms: args.ooo_window.as_millis() as i64,
            limits: SeriesLimitOptions {
                max_series: args.max_series,
                max_series_per_metric: args.max_series_per_metric,
                max_new_series_per_hour: args.max_new_series_per_hour,
                max_new_series_per_hour_per_metric: args.max_new_series_per_hour_per_metric,
            },
            ..Default::default()
        },
        wal: WalOptions {
            sync: args.wal_sync,
            ..Default::default()
        },
        block_range_ms: args.block_duration.as_millis() as i64,
        retention_ms: args.retention.as_millis() as i64,
        ..Default::default()
    }
}

/// Builds the shared state around an open database.
pub fn state(db: Arc<Db>, args: &ServeArgs) -> Arc<AppState> {
    Arc::new(AppState {
        db,
        ready: AtomicBool::new(true),
        ingest: http::ingest::IngestConfig {
            max_body_bytes: args.max_body_bytes,
            drop_labels: args.drop_labels.iter().cloned().collect(),
        },
        ingest_scratch: http::ingest::ScratchPool::new(match args.ingest_workers {
            0 => http::ingest::ScratchPool::default_workers(matches!(
                args.wal_sync,
                eddy_storage::wal::SyncPolicy::Always
            )),
            n => n,
        }),
        metrics: Default::default(),
        otlp_deltas: parking_lot::Mutex::new(Default::default()),
        push_groups: Default::default(),
        series_keys: Default::default(),
        metadata: Default::default(),
        query: crate::http::api::QueryConfig::from_args(args),
        scraper: parking_lot::Mutex::new(None),
        config_file: args.config_file.clone(),
    })
}

/// Reads the configuration file (if any) and starts, reconfigures or stops the scraper.
pub fn reload_config(st: &Arc<AppState>) -> Result<(), String> {
    let Some(path) = &st.config_file else {
        return Err("no --config.file given".into());
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let file = scrape::parse_config(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut guard = st.scraper.lock();
    match guard.as_ref() {
        Some(s) => s.reload(file),
        None if file.scrape_configs.is_empty() => {}
        None => {
            let handle = tokio::runtime::Handle::try_current()
                .map_err(|e| format!("no async runtime: {e}"))?;
            *guard = Some(scrape::Scraper::start(file, scrape_sink(st), handle));
        }
    }
    tracing::info!(file = %path.display(), "configuration loaded");
    Ok(())
}

/// Where scraped samples go: the same path as pushed ones (label drops, append, counters). Holds
/// the state weakly, since the state owns the scraper.
fn scrape_sink(st: &Arc<AppState>) -> Arc<dyn scrape::ScrapeSink> {
    let weak = Arc::downgrade(st);
    Arc::new(move |batch: &mut eddy_storage::WriteBatch<'_>| {
        let st = weak
            .upgrade()
            .ok_or_else(|| "server is shutting down".to_string())?;
        crate::http::ingest::store(&st, batch, "scrape").map_err(|e| e.message)
    })
}

/// Runs the server until a shutdown signal.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start async runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Bind first so that a busy port fails fast, before a long WAL replay.
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listen on {}", args.listen))?;
    tracing::info!(listen = %args.listen, data_dir = %args.data_dir.display(), "eddy starting");
    let dir = args.data_dir.clone();
    let opts = db_options(&args);
    let db = tokio::task::spawn_blocking(move || Db::open(&dir, opts))
        .await
        .context("open database task")?
        .with_context(|| format!("open data directory {}", args.data_dir.display()))?;
    let report = db.open_report().clone();
    for q in &report.quarantined {
        tracing::error!(block = %q, "block quarantined; serving without it");
    }
    tracing::info!(
        blocks = report.blocks,
        wal_records = report.wal_records,
        wal_samples = report.wal_samples,
        head_series = db.head_stats().series,
        "data directory open, WAL replayed"
    );
    let db = Arc::new(db);
    let _maintenance = db.start_maintenance(args.maintenance_interval);
    let st = state(db.clone(), &args);
    let idle = Arc::downgrade(&st);
    crate::allocator::spawn_release_after_maintenance(
        db.clone(),
        args.maintenance_interval,
        move || {
            idle.upgrade().is_some_and(|st| {
                let sets = st.ingest_scratch.release_unused();
                let keys = st.series_keys.sweep_if_due(st.db.head().max_t());
                sets || keys
            })
        },
    );
    if st.config_file.is_some() {
        reload_config(&st)
            .map_err(|e| anyhow::anyhow!(e))
            .context("load --config.file")?;
    }
    spawn_sighup_reload(st.clone());
    st.ready.store(true, Ordering::Release);
    let app = http::app(st.clone());
    tracing::info!(listen = %args.listen, "eddy ready");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serve HTTP")?;
    let scraper = st.scraper.lock().take();
    if let Some(s) = scraper {
        tracing::info!("stopping scrapes: writing stale markers");
        s.stop();
    }
    tracing::info!("shutting down: syncing the WAL");
    let closing = db.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .context("close task")??;
    // Give in-flight blocking tasks a moment; the WAL is already synced.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

fn spawn_sighup_reload(st: Arc<AppState>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = reload_config(&st) {
                tracing::error!(error = %e, "reload on SIGHUP failed; keeping the previous configuration");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = st;
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
