//! WAL replay logs a torn tail as one warning. Alone in its test binary: tracing caches each
//! log site's interest process-wide, and a test on another thread that reaches the same
//! site first, while no subscriber listens, can leave it silenced for this test's scoped
//! subscriber (it failed now and then beside the other replay tests).

#![allow(clippy::unwrap_used)] // Test helpers outside #[test] fns may unwrap too.

use std::fs;
use std::path::{Path, PathBuf};

use eddy_storage::wal::{self, SyncPolicy, Wal, WalOptions};

fn opts() -> WalOptions {
    WalOptions {
        segment_size: 1 << 20,
        sync: SyncPolicy::Always,
    }
}

fn replay_all(dir: &Path) -> wal::ReplayReport {
    wal::replay(dir, &mut |_| Ok(())).unwrap()
}

/// The segment file with the highest number.
fn last_segment(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .max_by_key(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap()
}

/// Collects events as `LEVEL field=value …` lines; enough to check what replay logs.
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut f = Fields(event.metadata().level().to_string());
        event.record(&mut f);
        self.0.lock().unwrap().push(f.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn truncation_is_logged_as_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), opts()).unwrap();
    for i in 0..3u8 {
        w.append(&[i; 10]).unwrap();
    }
    w.close().unwrap();
    let seg = last_segment(dir.path());
    let full = fs::read(&seg).unwrap();
    fs::write(&seg, &full[..full.len() - 1]).unwrap();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let capture = Capture(std::sync::Arc::clone(&events));
    let report = tracing::subscriber::with_default(capture, || replay_all(dir.path()));
    let (_, offset) = report.truncated.unwrap();
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let line = &events[0];
    assert!(line.starts_with("WARN"), "{line}");
    assert!(
        line.contains("WAL: torn or corrupt tail in the last segment"),
        "{line}"
    );
    assert!(line.contains(&format!("path={}", seg.display())), "{line}");
    assert!(line.contains(&format!("offset={offset}")), "{line}");
    assert!(line.contains("dropped_bytes="), "{line}");
    assert!(line.contains("reason=record length"), "{line}");
}
