//! Target discovery: file_sd files (JSON and YAML) added, changed and removed, config reloads,
//! and target relabeling; removed targets get stale markers.

#[path = "scrape_support/server.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use eddy_ingest::scrape::{parse_config, Scraper};
use support::{scraped, up, Collect, Reply, Server};
use tokio::runtime::Handle;

fn sd_config(pattern: &str) -> String {
    format!(
        "scrape_configs:
  - job_name: tms
    scrape_interval: 100ms
    scrape_timeout: 50ms
    file_sd_configs:
      - files: ['{pattern}']
        refresh_interval: 50ms
"
    )
}

/// Writes a file atomically (rename), so the poller never reads half a file.
fn write(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sd_add_and_remove_targets() {
    let a = Server::start(vec![Reply::text("flink_a 1\n")]).await;
    let b = Server::start(vec![Reply::text("flink_b 2\n")]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("tm_1.json");
    let yaml = dir.path().join("tm_2.yml");
    write(
        &json,
        &format!(
            r#"[{{"targets": ["{}"], "labels": {{"cluster": "c1"}}}}]"#,
            a.addr
        ),
    );
    let sink = Arc::new(Collect::default());
    let pattern = format!("{}/tm_*", dir.path().display());
    // Patterns must name the format.
    assert!(parse_config(&sd_config(&pattern)).is_err());
    let file = parse_config(&sd_config(&format!("{pattern}.json"))).expect("config");
    let scraper = Scraper::start(file, Arc::clone(&sink) as _, Handle::current());
    sink.wait_for("a scraped", |_| !none_from(&sink, &a.addr))
        .await;
    let t = scraper.targets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].instance, a.addr);
    assert!(t[0].labels.contains(&("cluster".into(), "c1".into())));
    assert!(!t[0].labels.iter().any(|(n, _)| n.starts_with("__")));
    let row = scraped(&sink.batches_of(&a.addr)[0])[0].labels.clone();
    assert_eq!(row.get("cluster").map(String::as_str), Some("c1"));
    assert_eq!(row.get("job").map(String::as_str), Some("tms"));

    // Reload with a pattern that also matches YAML files; add one with target b.
    let file = parse_config(&sd_config(&pattern).replace(
        &format!("'{pattern}'"),
        &format!("'{pattern}.json', '{pattern}.yml'"),
    ))
    .expect("config");
    write(
        &yaml,
        &format!("- targets: ['{}']\n  labels: {{cluster: c2}}\n", b.addr),
    );
    scraper.reload(file);
    sink.wait_for("b scraped", |_| !none_from(&sink, &b.addr))
        .await;
    assert_eq!(scraper.targets().len(), 2);
    // a kept running across the reload: its file_sd config changed, but not its target, so
    // no stale markers were written for it.
    assert!(sink
        .batches_of(&a.addr)
        .iter()
        .flatten()
        .all(|r| !r.stale()));

    // Remove a from its file: a gets stale markers for its series and report series.
    write(&json, "[]");
    sink.wait_for("a marked stale", |_| {
        sink.batches_of(&a.addr)
            .last()
            .is_some_and(|l| l.iter().all(|r| r.stale()))
    })
    .await;
    let last = sink.batches_of(&a.addr).pop().expect("batch");
    let mut names: Vec<&str> = last.iter().map(|r| r.name()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "flink_a",
            "scrape_duration_seconds",
            "scrape_samples_post_metric_relabeling",
            "scrape_samples_scraped",
            "scrape_series_added",
            "up"
        ]
    );
    let t = scraper.targets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].instance, b.addr);
    // No more scrapes of a.
    let n = a.request_count();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.request_count(), n);

    // A broken file keeps its previous targets.
    write(&yaml, "- targets: [\n");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(scraper.targets().len(), 1);
    // Deleting the file removes them.
    std::fs::remove_file(&yaml).expect("rm");
    sink.wait_for("b gone", |_| scraper.targets().is_empty())
        .await;
    scraper.stop();
}

/// True while no batch of `instance` has arrived.
fn none_from(sink: &Collect, instance: &str) -> bool {
    sink.batches_of(instance).is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_removes_jobs_and_relabels_targets() {
    let a = Server::start(vec![Reply::text("m 1\n")]).await;
    let two_jobs = format!(
        "global: {{scrape_interval: 100ms, scrape_timeout: 50ms}}
scrape_configs:
  - job_name: one
    static_configs: [{{targets: ['{0}']}}]
  - job_name: two
    relabel_configs:
      - {{source_labels: [__address__], regex: '(.*):(.*)', target_label: instance, replacement: 'tm-$2'}}
      - {{source_labels: [__address__], regex: '.*:1', action: drop}}
    static_configs: [{{targets: ['{0}', '127.0.0.1:1']}}]
",
        a.addr
    );
    let sink = Arc::new(Collect::default());
    let scraper = Scraper::start(
        parse_config(&two_jobs).expect("config"),
        Arc::clone(&sink) as _,
        Handle::current(),
    );
    let port = a.addr.rsplit_once(':').expect("port").1;
    let tm = format!("tm-{port}");
    sink.wait_for("both jobs", |_| {
        !sink.batches_of(&a.addr).is_empty() && !sink.batches_of(&tm).is_empty()
    })
    .await;
    let t = scraper.targets();
    // 127.0.0.1:1 was dropped by relabeling.
    assert_eq!(t.len(), 2, "{t:?}");
    assert_eq!(
        (t[1].job.as_str(), t[1].instance.as_str()),
        ("two", tm.as_str())
    );
    assert_eq!(t[1].scrape_url, format!("http://{}/metrics", a.addr));
    assert_eq!(up(&sink.batches_of(&tm)[0]), Some(1.0));

    // Drop job two: its target's series end with stale markers.
    let one_job = two_jobs[..two_jobs.find("  - job_name: two").expect("two")].to_string();
    scraper.reload(parse_config(&one_job).expect("config"));
    sink.wait_for("two marked stale", |_| {
        sink.batches_of(&tm)
            .last()
            .is_some_and(|l| l.iter().all(|r| r.stale()))
    })
    .await;
    let t = scraper.targets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].job, "one");
    scraper.stop();
}
