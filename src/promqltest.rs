//! `eddy promqltest`: runs Prometheus `.test` files against eddy's real storage engine (a
//! database in a temporary directory) and the PromQL engine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use eddy_query::promqltest::{run_paths_with, RunOptions, Summary, TestStorage};
use eddy_storage::db::DbOptions;
use eddy_storage::head::HeadOptions;
use eddy_storage::{Db, Labels, Querier, WriteBatch};

/// Test data lives in a real [`Db`]; `clear` starts a fresh one.
///
/// A `load` block may list the same series twice with different values at one timestamp, and
/// the `.test` format wants the later line to win, while the database (like Prometheus's)
/// rejects a conflicting duplicate. So loads are collected per series, later values replacing
/// earlier ones, and written into a fresh database when the next query needs them.
#[derive(Debug)]
pub struct DbTestStorage {
    dir: tempfile::TempDir,
    generation: u64,
    db: Arc<Db>,
    loaded: BTreeMap<Labels, BTreeMap<i64, f64>>,
    dirty: bool,
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
            generation: 0,
            db,
            loaded: BTreeMap::new(),
            dirty: false,
        })
    }
}

impl DbTestStorage {
    /// Writes everything loaded since the last `clear` into a fresh database.
    fn rebuild(&mut self) -> anyhow::Result<Arc<Db>> {
        self.generation += 1;
        let n = self.generation;
        let loaded = &self.loaded;
        let db = Db::open(&self.dir.path().join(n.to_string()), test_options())?;
        let mut batch = WriteBatch::new();
        let mut samples: Vec<(i64, f64)> = Vec::new();
        for (labels, points) in loaded {
            samples.clear();
            samples.extend(points.iter().map(|(t, v)| (*t, *v)));
            batch.add_series(labels.pairs(), &samples);
        }
        let o = db.append(&mut batch)?;
        if o.rejected_total() > 0 {
            eprintln!("promqltest: load rejected samples: {:?}", o.messages);
        }
        Ok(Arc::new(db))
    }
}

impl TestStorage for DbTestStorage {
    fn clear(&mut self) {
        self.loaded.clear();
        self.dirty = true;
    }

    fn append(&mut self, labels: Labels, samples: &[(i64, f64)]) {
        self.loaded
            .entry(labels)
            .or_default()
            .extend(samples.iter().copied());
        self.dirty = true;
    }

    fn querier(&mut self) -> &dyn Querier {
        if self.dirty {
            match self.rebuild() {
                Ok(db) => {
                    self.dirty = false;
                    self.db = db;
                }
                Err(e) => eprintln!("promqltest: cannot load test data: {e:#}"),
            }
        }
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
