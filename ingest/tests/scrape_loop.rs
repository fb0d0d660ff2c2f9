//! The scrape loop against a scripted HTTP server on 127.0.0.1: target labels, report series,
//! stale markers (vanished series, failed scrapes, stop), gzip, timeouts, relabeling and
//! honor_labels.

#[path = "scrape_support/server.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use eddy_ingest::scrape::{parse_config, Health, Scraper};
use eddy_ingest::text::{parse_text, TextOptions};
use eddy_storage::WriteBatch;
use support::{report, scraped, up, Collect, Reply, Row, Server};
use tokio::runtime::Handle;

const FLINK: &str = include_str!("data/flink-sample-scrape.prom");

fn config(job: &str, addr: &str, extra: &str) -> String {
    format!(
        "scrape_configs:\n  - job_name: {job}\n    scrape_interval: 250ms\n    scrape_timeout: 200ms\n\
         {extra}    static_configs:\n      - targets: ['{addr}']\n        labels: {{env: test}}\n"
    )
}

fn start(yaml: &str) -> (Scraper, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let file = parse_config(yaml).expect("config");
    let s = Scraper::start(file, Arc::clone(&sink) as _, Handle::current());
    (s, sink)
}

/// Label sets of the sample lines of `body`, as the parser reads them.
fn series_of(body: &str) -> Vec<BTreeMap<String, String>> {
    let mut b = WriteBatch::new();
    parse_text(body, &TextOptions::default(), &mut b, &mut Vec::new()).expect("parse");
    (0..b.series.len())
        .map(|i| {
            b.series_labels(i)
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn with_target(mut l: BTreeMap<String, String>, job: &str, addr: &str) -> BTreeMap<String, String> {
    l.insert("job".into(), job.into());
    l.insert("instance".into(), addr.into());
    l.insert("env".into(), "test".into());
    l
}

fn label_set(rows: &[&Row]) -> BTreeSet<BTreeMap<String, String>> {
    rows.iter().map(|r| r.labels.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_reports_and_stale_markers() {
    // Scrape 1: the full Flink body. Scrape 2: the job was cancelled, task series vanish.
    // Scrape 3 on: HTTP 500.
    let after_cancel: String = FLINK
        .lines()
        .filter(|l| !l.starts_with("flink_taskmanager_job_task"))
        .map(|l| format!("{l}\n"))
        .collect();
    let all = series_of(FLINK);
    let kept = series_of(&after_cancel);
    let vanished = all.len() - kept.len();
    assert!(
        vanished > 50 && !kept.is_empty(),
        "fixture: {vanished} of {}",
        all.len()
    );
    let srv = Server::start(vec![
        Reply::text(FLINK),
        Reply::text(&after_cancel),
        Reply::Status(500),
    ])
    .await;
    let before = now_ms();
    let (scraper, sink) = start(&config("flink", &srv.addr, ""));
    sink.wait_for("three scrapes", |b| b.len() >= 3).await;
    let b = sink.batches();
    let addr = srv.addr.as_str();

    // Scrape 1: every series with job/instance/group labels, one timestamp, reports.
    let first = scraped(&b[0]);
    let want: BTreeSet<_> = all
        .iter()
        .map(|l| with_target(l.clone(), "flink", addr))
        .collect();
    assert_eq!(label_set(&first), want);
    assert_eq!(first.len(), all.len());
    let ts1 = first[0].ts;
    assert!(ts1 >= before && ts1 <= now_ms());
    assert!(b[0].iter().all(|r| r.ts == ts1 && !r.stale()));
    assert_eq!(up(&b[0]), Some(1.0));
    assert_eq!(
        report(&b[0], "scrape_samples_scraped"),
        Some(all.len() as f64)
    );
    assert_eq!(
        report(&b[0], "scrape_samples_post_metric_relabeling"),
        Some(all.len() as f64)
    );
    assert_eq!(report(&b[0], "scrape_series_added"), Some(all.len() as f64));
    let dur = report(&b[0], "scrape_duration_seconds").expect("duration");
    assert!(dur > 0.0 && dur < 0.2, "{dur}");
    let up_row = b[0].iter().find(|r| r.name() == "up").expect("up");
    let want_up: BTreeMap<String, String> = [
        ("__name__", "up"),
        ("job", "flink"),
        ("instance", addr),
        ("env", "test"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(up_row.labels, want_up);
    // A value read back exactly (Java Double.toString form).
    let heap = first
        .iter()
        .find(|r| r.name() == "flink_jobmanager_Status_JVM_Memory_Heap_Used")
        .expect("heap");
    assert_eq!(heap.value, 7.4267856E7);

    // Scrape 2: the kept series, plus stale markers for exactly the vanished ones.
    let second = scraped(&b[1]);
    let ts2 = b[1][0].ts;
    assert!(ts2 > ts1);
    let (stale, live): (Vec<&Row>, Vec<&Row>) = second.into_iter().partition(|r| r.stale());
    let want_live: BTreeSet<_> = kept
        .iter()
        .map(|l| with_target(l.clone(), "flink", addr))
        .collect();
    assert_eq!(label_set(&live), want_live);
    let want_stale: BTreeSet<_> = want.difference(&want_live).cloned().collect();
    assert_eq!(stale.len(), vanished);
    assert_eq!(label_set(&stale), want_stale);
    assert!(stale
        .iter()
        .all(|r| r.ts == ts2 && r.value.to_bits() == 0x7ff0_0000_0000_0002));
    assert_eq!(report(&b[1], "scrape_series_added"), Some(0.0));
    assert_eq!(
        report(&b[1], "scrape_samples_scraped"),
        Some(kept.len() as f64)
    );

    // Scrape 3 (HTTP 500): up 0, stale markers for every series of scrape 2, nothing else.
    let third = scraped(&b[2]);
    assert_eq!(up(&b[2]), Some(0.0));
    assert!(third.iter().all(|r| r.stale()));
    assert_eq!(label_set(&third), want_live);
    assert_eq!(report(&b[2], "scrape_samples_scraped"), Some(0.0));
    // Later failures have nothing left to mark.
    sink.wait_for("a fourth scrape", |b| b.len() >= 4).await;
    assert_eq!(scraped(&sink.batches()[3]).len(), 0);
    let t = scraper.targets();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].health, Health::Down);
    assert_eq!(t[0].instance, srv.addr);
    let err = t[0].last_error.clone().unwrap_or_default();
    assert!(err.contains("500"), "{err}");
    scraper.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_marks_everything_stale_including_reports() {
    let body = "a{x=\"1\"} 1\nb 2\n";
    let srv = Server::start(vec![Reply::text(body)]).await;
    let (scraper, sink) = start(&config("j", &srv.addr, ""));
    sink.wait_for("a scrape", |b| !b.is_empty()).await;
    scraper.stop();
    let b = sink.batches();
    let last = b.last().expect("last");
    assert!(last.iter().all(|r| r.stale()), "{last:?}");
    let names: BTreeSet<&str> = last.iter().map(|r| r.name()).collect();
    let want: BTreeSet<&str> = ["a", "b"].into_iter().chain(support::REPORT).collect();
    assert_eq!(names, want);
    let n = b.len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sink.batches().len(), n, "scraping continued after stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_target_is_down() {
    // Bind, learn the port, close: connections are refused.
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    drop(l);
    let (scraper, sink) = start(&config("j", &addr, ""));
    sink.wait_for("a scrape", |b| !b.is_empty()).await;
    let b = sink.batches();
    assert_eq!(up(&b[0]), Some(0.0));
    assert_eq!(scraped(&b[0]).len(), 0);
    // The status is recorded just after the scrape's samples are handed over.
    sink.wait_for("the target's status", |_| {
        scraper.targets()[0].health != Health::Unknown
    })
    .await;
    let t = scraper.targets();
    assert_eq!(t[0].health, Health::Down);
    assert!(
        t[0].last_error
            .as_deref()
            .unwrap_or("")
            .starts_with("connect"),
        "{:?}",
        t[0].last_error
    );
    scraper.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_body_and_request_headers() {
    let gz = |body: &str| Reply::Body {
        body: body.to_string(),
        gzip: true,
    };
    let srv = Server::start(vec![gz(FLINK), gz("a 1\n")]).await;
    let (scraper, sink) = start(&config("j", &srv.addr, "    params: {'name[]': [up]}\n"));
    sink.wait_for("two scrapes", |b| b.len() >= 2).await;
    scraper.stop();
    let b = sink.batches();
    let n = series_of(FLINK).len();
    assert_eq!(up(&b[0]), Some(1.0));
    assert_eq!(scraped(&b[0]).len(), n);
    // The vanished series are rebuilt from the kept gzip body of scrape 1.
    let stale = scraped(&b[1]).into_iter().filter(|r| r.stale()).count();
    assert_eq!(stale, n);
    // stop: stale markers for `a` and the five report series.
    let last = b.last().expect("last");
    assert_eq!(last.len(), 6);
    assert!(last.iter().all(|r| r.stale()));
    let head = srv.requests.lock().expect("lock")[0].to_ascii_lowercase();
    assert!(
        head.starts_with("get /metrics?name%5b%5d=up http/1.1\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\naccept-encoding: gzip\r\n"), "{head}");
    assert!(
        head.contains("\r\naccept: text/plain;version=0.0.4"),
        "{head}"
    );
    assert!(
        head.contains("\r\nx-prometheus-scrape-timeout-seconds: 0.2\r\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nhost: {}\r\n", srv.addr)),
        "{head}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_target_times_out() {
    let srv = Server::start(vec![
        Reply::text("a 1\n"),
        Reply::Delay(Duration::from_millis(500), Box::new(Reply::text("a 1\n"))),
    ])
    .await;
    let (scraper, sink) = start(&config("j", &srv.addr, ""));
    sink.wait_for("two scrapes", |b| b.len() >= 2).await;
    let t = scraper.targets();
    scraper.stop();
    let b = sink.batches();
    assert_eq!(up(&b[0]), Some(1.0));
    assert_eq!(up(&b[1]), Some(0.0));
    let dur = report(&b[1], "scrape_duration_seconds").expect("duration");
    assert!((0.2..0.45).contains(&dur), "{dur}");
    let stale = scraped(&b[1]);
    assert_eq!(stale.len(), 1);
    assert!(stale[0].stale() && stale[0].name() == "a");
    assert!(
        t[0].last_error
            .as_deref()
            .unwrap_or("")
            .contains("timed out"),
        "{:?}",
        t[0].last_error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_size_limit_fails_the_scrape() {
    let srv = Server::start(vec![Reply::text(FLINK)]).await;
    let (scraper, sink) = start(&config("j", &srv.addr, "    body_size_limit: 1KB\n"));
    sink.wait_for("a scrape", |b| !b.is_empty()).await;
    let t = scraper.targets();
    scraper.stop();
    assert_eq!(up(&sink.batches()[0]), Some(0.0));
    assert!(
        t[0].last_error
            .as_deref()
            .unwrap_or("")
            .contains("1024 bytes"),
        "{:?}",
        t[0].last_error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_relabeling() {
    let relabel = "    metric_relabel_configs:
      - {source_labels: [__name__], regex: 'flink_taskmanager_.*', action: keep}
      - {source_labels: [__name__], regex: '.*_count', action: drop}
      - {regex: 'task_attempt_(id|num)', action: labeldrop}
      - {source_labels: [tm_id], regex: '(.*):(.*)', target_label: tm_host, replacement: '$1'}
";
    let srv = Server::start(vec![Reply::text(FLINK)]).await;
    let (scraper, sink) = start(&config("j", &srv.addr, relabel));
    sink.wait_for("a scrape", |b| !b.is_empty()).await;
    scraper.stop();
    let b = &sink.batches()[0];
    let rows = scraped(b);
    // Expected: computed independently from the parsed fixture.
    let want: BTreeSet<BTreeMap<String, String>> = series_of(FLINK)
        .into_iter()
        .filter(|l| {
            l["__name__"].starts_with("flink_taskmanager_") && !l["__name__"].ends_with("_count")
        })
        .map(|mut l| {
            l.remove("task_attempt_id");
            l.remove("task_attempt_num");
            if let Some(tm) = l.get("tm_id").cloned() {
                if let Some((h, _)) = tm.split_once(':') {
                    l.insert("tm_host".into(), h.to_string());
                }
            }
            with_target(l, "j", &srv.addr)
        })
        .collect();
    assert!(want.len() > 100);
    assert_eq!(label_set(&rows), want);
    assert!(rows.iter().all(|r| r.get("tm_host") == Some("localhost")));
    assert_eq!(
        report(b, "scrape_samples_scraped"),
        Some(series_of(FLINK).len() as f64)
    );
    assert_eq!(
        report(b, "scrape_samples_post_metric_relabeling"),
        Some(want.len() as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honor_labels() {
    let body = "m{job=\"scraped\",instance=\"x:1\",exported_job=\"e\"} 1\n";
    let srv = Server::start(vec![Reply::text(body)]).await;
    let (s1, sink1) = start(&config("j", &srv.addr, ""));
    let (s2, sink2) = start(&config("j", &srv.addr, "    honor_labels: true\n"));
    sink1.wait_for("a scrape", |b| !b.is_empty()).await;
    sink2.wait_for("a scrape", |b| !b.is_empty()).await;
    s1.stop();
    s2.stop();
    let row = |sink: &Collect| scraped(&sink.batches()[0])[0].labels.clone();
    let m = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    // Target labels win; the scraped ones become exported_* (doubly, if taken).
    assert_eq!(
        row(&sink1),
        m(&[
            ("__name__", "m"),
            ("job", "j"),
            ("instance", &srv.addr),
            ("env", "test"),
            ("exported_exported_job", "scraped"),
            ("exported_job", "e"),
            ("exported_instance", "x:1"),
        ])
    );
    // honor_labels: scraped ones win, target labels fill in the rest.
    assert_eq!(
        row(&sink2),
        m(&[
            ("__name__", "m"),
            ("job", "scraped"),
            ("instance", "x:1"),
            ("env", "test"),
            ("exported_job", "e"),
        ])
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

/// Cost of one scrape of the Flink fixture (fetch over loopback, gzip, parse, labels, staleness
/// bookkeeping), from `scrape_duration_seconds`. Run with:
/// `cargo test --release -p eddy-ingest --test scrape_loop -- --ignored --nocapture scrape_cost`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn scrape_cost() {
    for gzip in [false, true] {
        let srv = Server::start(vec![Reply::Body {
            body: FLINK.to_string(),
            gzip,
        }])
        .await;
        let yaml = config("j", &srv.addr, "")
            .replace("250ms", "20ms")
            .replace("200ms", "20ms");
        let (scraper, sink) = start(&yaml);
        sink.wait_for("100 scrapes", |b| b.len() >= 101).await;
        scraper.stop();
        let mut d: Vec<f64> = sink.batches()[1..101]
            .iter()
            .filter_map(|b| report(b, "scrape_duration_seconds"))
            .collect();
        d.sort_by(f64::total_cmp);
        println!(
            "gzip={gzip}: {} series, scrape_duration_seconds median {:.3} ms, p90 {:.3} ms",
            series_of(FLINK).len(),
            d[d.len() / 2] * 1e3,
            d[d.len() * 9 / 10] * 1e3
        );
    }
}
