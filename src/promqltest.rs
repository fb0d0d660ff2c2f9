//! `eddy promqltest`: runs Prometheus `.test` files against eddy's real storage engine (a
//! database in a temporary directory) and the PromQL engine.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use eddy_query::promqltest::{run_paths_with, RunOptions, Summary, TestStorage};
use eddy_storage::db::DbOptions;
use eddy_storage::head::HeadOptions;
use eddy_storage::{Db, Labels, Querier, WriteBatch};

/// Test data lives in a real [`Db`]; `clear` starts a fresh one.
#[derive(Debug)]
pub struct DbTestStorage {
    dir: tempfile::TempDir,
    db: Arc<Db>,
    generation: u64,
}

fn test_options() -> DbOptions {
    DbOptions {
        // Test files load series in any order and far in the past; accept all of it.
        head: HeadOptions {
            ooo_window_ms: i64::MAX / 4,
            ..Default::default()
        },
        ..Default::default()
    }
}

impl DbTestStorage {
    /// A fresh database under a new temporary directory.
    pub fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("create temp dir for promqltest")?;
        let db = Arc::new(
            Db::open(&dir.path().join("0"), test_options()).context("open test database")?,
        );
        Ok(DbTestStorage {
            dir,
            db,
            generation: 0,
        })
    }
}

impl TestStorage for DbTestStorage {
    fn clear(&mut self) {
        self.generation += 1;
        let path = self.dir.path().join(self.generation.to_string());
        match Db::open(&path, test_options()) {
            Ok(db) => {
                let _ = self.db.close();
                self.db = Arc::new(db);
            }
            Err(e) => eprintln!("promqltest: cannot open a fresh database: {e}"),
        }
    }

    fn append(&mut self, labels: Labels, samples: &[(i64, f64)]) {
        let mut batch = WriteBatch::new();
        batch.add_series(
            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
            samples,
        );
        match self.db.append(&mut batch) {
            Ok(o) if o.rejected_total() > 0 => {
                eprintln!("promqltest: load rejected samples: {:?}", o.messages)
            }
            Ok(_) => {}
            Err(e) => eprintln!("promqltest: load failed: {e}"),
        }
    }

    fn querier(&self) -> &dyn Querier {
        &*self.db
    }
}

fn parse(q: &str) -> Result<eddy_query::ast::Expr, String> {
    eddy_query::parser::parse(q).map_err(|e| e.to_string())
}

/// Runs the files or directories; prints failures and the summary line.
pub fn run(paths: &[PathBuf], verbose: bool) -> anyhow::Result<Summary> {
    let mut storage = DbTestStorage::new()?;
    let opts = RunOptions {
        verbose: verbose || RunOptions::default().verbose,
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    Ok(run_paths_with(paths, &mut storage, &mut out, &opts, parse)?)
}
