//! Proof with a real Apache Flink 2.3 (a one-JVM MiniCluster from PyPI running
//! `tests/flink_support/MetricsProbeJob.java`): every way Flink reports metrics ends up in eddy
//! and reads back through the query API with sane values, and a job restart's series churn is
//! visible as it really happens.
//!
//! One Flink runs all four reporters at once, each sending to its own in-process eddy on a free
//! loopback port: InfluxDB (`POST /write`), Pushgateway (`PUT /metrics/job/…`), OpenTelemetry
//! (OTLP/HTTP `/v1/metrics`), and Prometheus (pulled by `eddy_ingest::scrape::Scraper` from the
//! reporter's port in 9249-9260). One start instead of four keeps the test to about a minute;
//! since Flink binds fixed ports, this file has a single test, so Flink never runs twice at once.
//! Missing Java, pip or PyPI access fails the test with a message; it is never skipped.

mod support;

#[path = "flink_support/eddy.rs"]
mod eddy_at;
#[path = "flink_support/flink.rs"]
mod flink;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eddy_at::{wait_until, Eddy, Range};
use eddy_ingest::scrape::{parse_config, ScrapeSink, Scraper};
use eddy_storage::WriteBatch;
use flink::Flink;

/// Records per second the probe source emits (all subtasks together).
const PROBE_RATE: f64 = 1000.0;
/// Seconds between reports (and scrapes).
const INTERVAL_S: u64 = 2;
/// The probe job's operators (source, double-map, window-sum, sink writer) × parallelism 2.
const OPERATOR_INSTANCES: usize = 8;
const RECORDS_IN: &str = "flink_taskmanager_job_task_operator_numRecordsIn";

struct Path {
    name: &'static str,
    /// The `format` label of eddy's ingest counters for this path (`None`: the scraper, which
    /// writes to the database directly).
    format: Option<&'static str>,
    eddy: Eddy,
    /// Whether this path ends vanished series with stale markers (a Pushgateway `PUT` replaces
    /// the group; a scrape notices the series missing), so instant queries drop them at once.
    /// Influx and OTLP pushes carry no such signal: old series stay visible for the 5 m
    /// lookback.
    stale_markers: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn real_flink_every_reporter_and_restart_churn() {
    flink::preflight();
    let paths = [
        Path {
            name: "influx",
            format: Some("influx"),
            eddy: Eddy::start().await,
            stale_markers: false,
        },
        Path {
            name: "pushgateway",
            format: Some("pushgateway"),
            eddy: Eddy::start().await,
            stale_markers: true,
        },
        Path {
            name: "otel",
            format: Some("otlp"),
            eddy: Eddy::start().await,
            stale_markers: false,
        },
        Path {
            name: "prom (scraped)",
            format: None,
            eddy: Eddy::start().await,
            stale_markers: true,
        },
    ];
    let trigger_dir = tempfile::tempdir().expect("temp dir");
    let trigger = trigger_dir.path().join("fail-once");
    let env = [
        ("INFLUX_PORT", paths[0].eddy.addr.port().to_string()),
        ("PUSHGATEWAY_URL", format!("http://{}", paths[1].eddy.addr)),
        (
            "OTLP_URL",
            format!("http://{}/v1/metrics", paths[2].eddy.addr),
        ),
        ("REPORT_INTERVAL", format!("{INTERVAL_S} SECONDS")),
        ("PROBE_RATE", PROBE_RATE.to_string()),
        ("PROBE_FAIL_TRIGGER", trigger.display().to_string()),
    ];
    let flink = Flink::start("prom,influx,otel,pushgateway", &env);

    let port = flink
        .prometheus_port(Duration::from_secs(90))
        .unwrap_or_else(|| {
            panic!(
                "Flink's Prometheus reporter did not start; log tail:\n{}",
                flink.log_tail(40)
            )
        });
    let db = paths[3].eddy.st.db.clone();
    let sink = move |b: &mut WriteBatch<'_>| db.append(b).map_err(|e| e.to_string());
    let yaml = format!(
        "scrape_configs:\n  - job_name: flink\n    scrape_interval: {INTERVAL_S}s\n    \
         scrape_timeout: {INTERVAL_S}s\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let scraper = Scraper::start(
        parse_config(&yaml).expect("scrape config"),
        Arc::new(sink) as Arc<dyn ScrapeSink>,
        tokio::runtime::Handle::current(),
    );

    let mut failures = Vec::new();
    // 1-4: the job runs; every path shows the same metrics with sane values.
    let deadline = flink.started + Duration::from_secs(180);
    for p in &paths {
        let influx = p.format == Some("influx");
        let r = wait_until(&format!("{} data", p.name), deadline, || {
            running(&p.eddy, influx)
        })
        .await;
        match r {
            Ok(seen) => eprintln!("[{}] running: {seen}", p.name),
            Err(e) => failures.push(format!("[{}] {e}", p.name)),
        }
    }
    for p in &paths {
        match p.eddy.scalar(r#"count({__name__=~"flink_.+"})"#).await {
            Ok(n) => eprintln!("[{}] flink series: {n}", p.name),
            Err(e) => failures.push(format!("[{}] {e}", p.name)),
        }
        let one = format!(r#"{RECORDS_IN}{{operator_name=~"double.map",subtask_index="0"}}"#);
        if let Ok(v) = p.eddy.instant(&one).await {
            eprintln!("[{}] labels: {:?}", p.name, v.first().map(|s| &s.labels));
        }
        // How the metric types come out on this path (printed for docs/flink.md).
        let shapes = r#"count by (__name__, quantile) ({__name__=~"flink_taskmanager_job_task_(operator_valueMod1000|operator_numRecordsInPerSecond|isBackPressured).*|flink_jobmanager_job_lastCheckpointExternalPath"})"#;
        if let Ok(v) = p.eddy.instant(shapes).await {
            let mut shown: Vec<String> = v
                .iter()
                .map(|s| {
                    let q = s
                        .labels
                        .get("quantile")
                        .map(|q| format!("{{quantile={q}}}"));
                    format!(
                        "{}{} ×{}",
                        s.labels["__name__"],
                        q.unwrap_or_default(),
                        s.value
                    )
                })
                .collect();
            shown.sort();
            eprintln!("[{}] shapes: {}", p.name, shown.join(", "));
        }
        if let Some(f) = p.format {
            if let Err(e) = accepted_everything(&p.eddy, f).await {
                failures.push(format!("[{}] {e}", p.name));
            }
        }
    }

    // The paths see one counter in one JVM: their samples agree with influx's at equal times.
    let map_q = format!(r#"{RECORDS_IN}{{operator_name=~"double.map"}}[5m]"#);
    match paths[0].eddy.range(&map_q).await {
        Ok(reference) => {
            for p in &paths[1..] {
                match p
                    .eddy
                    .range(&map_q)
                    .await
                    .and_then(|o| agree(&reference, &o))
                {
                    Ok(seen) => eprintln!("[{}] agrees with influx: {seen}", p.name),
                    Err(e) => failures.push(format!("[{}] against influx: {e}", p.name)),
                }
            }
        }
        Err(e) => failures.push(format!("[influx] {e}")),
    }

    // 5: one injected failure; the job restarts and every task/operator series is replaced.
    std::fs::write(&trigger, b"1").expect("create fail trigger");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut churned = Vec::new();
    for p in &paths {
        let r = wait_until(&format!("{} restart", p.name), deadline, || {
            restarted(&p.eddy)
        })
        .await;
        match r {
            Ok(c) => churned.push((p, c)),
            Err(e) => failures.push(format!("[{}] {e}", p.name)),
        }
    }
    // The old attempt's series get no more samples while the new ones keep coming.
    tokio::time::sleep(Duration::from_secs(2 * INTERVAL_S + 1)).await;
    for (p, before) in &churned {
        match restarted(&p.eddy)
            .await
            .and_then(|after| ended(before, &after))
        {
            Ok(()) => eprintln!("[{}] restart: {}", p.name, before.summary),
            Err(e) => failures.push(format!("[{}] after the restart: {e}", p.name)),
        }
        let visible = p.eddy.instant(RECORDS_IN).await.map(|v| v.len());
        let want = if p.stale_markers {
            OPERATOR_INSTANCES
        } else {
            2 * OPERATOR_INSTANCES
        };
        match visible {
            Ok(n) if n == want => {
                eprintln!("[{}] instant query after the restart: {n} series", p.name)
            }
            Ok(n) => failures.push(format!(
                "[{}] instant {RECORDS_IN} after the restart: {n} series, want {want}",
                p.name
            )),
            Err(e) => failures.push(format!("[{}] {e}", p.name)),
        }
    }

    scraper.shutdown().await;
    let log_tail = flink.log_tail(30);
    drop(flink);
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}\nFlink log tail:\n{log_tail}",
        failures.len(),
        failures.join("\n")
    );
}

/// What a running probe job must look like through one path; `Err` says what is still missing
/// or wrong (the caller retries until its deadline). `influx`: the path's histograms carry the
/// InfluxdbReporter's window size instead of the total count.
async fn running(e: &Eddy, influx: bool) -> Result<String, String> {
    let all = e.range(&format!("{RECORDS_IN}[5m]")).await?;
    if all.len() != OPERATOR_INSTANCES {
        return Err(format!(
            "{RECORDS_IN}: {} series, want {OPERATOR_INSTANCES}: {:?}",
            all.len(),
            all.iter()
                .map(|r| r.label("operator_name"))
                .collect::<Vec<_>>()
        ));
    }
    // The map operator's input counter, per subtask: several reports, never decreasing, and
    // growing no faster than the source's rate limit.
    let map: Vec<&Range> = all
        .iter()
        .filter(|r| r.label("operator_name").starts_with("double"))
        .collect();
    if map.len() != 2 {
        return Err(format!("double-map: {} series, want 2", map.len()));
    }
    let mut rate = 0.0;
    for r in &map {
        if r.points.len() < 3 {
            return Err(format!("double-map: {} reports so far", r.points.len()));
        }
        if r.points.windows(2).any(|w| w[1].1 < w[0].1) {
            return Err(format!("double-map numRecordsIn decreased: {:?}", r.points));
        }
        let ((t0, v0), (t1, v1)) = (r.first(), r.last());
        if v1 <= v0 {
            return Err(format!(
                "double-map numRecordsIn not increasing: {:?}",
                r.points
            ));
        }
        rate += (v1 - v0) / (t1 - t0);
    }
    if rate > 1.5 * PROBE_RATE {
        return Err(format!(
            "double-map input {rate:.0}/s exceeds the source limit"
        ));
    }
    let heap = one(e, "flink_taskmanager_Status_JVM_Memory_Heap_Used").await?;
    let heap_max = one(e, "flink_taskmanager_Status_JVM_Memory_Heap_Max").await?;
    if !(heap > 1e6 && heap <= heap_max) {
        return Err(format!("heap used {heap} not in (1 MB, max {heap_max}]"));
    }
    let restarts = one(e, "flink_jobmanager_job_numRestarts").await?;
    if restarts != 0.0 {
        return Err(format!("numRestarts {restarts} before any failure"));
    }
    // The user histogram of `value % 1000`: a median near 500.
    let p50 = e
        .instant(r#"flink_taskmanager_job_task_operator_valueMod1000{quantile="0.5"}"#)
        .await?;
    if p50.len() != 2 || p50.iter().any(|s| !(100.0..=900.0).contains(&s.value)) {
        return Err(format!("valueMod1000 p50 per subtask: {p50:?}"));
    }
    // The histogram sees every record of the map once: its total `_count` is the map's input,
    // per subtask. Influx has no total, only the window's size (≤ 500 values).
    let hist = "flink_taskmanager_job_task_operator_valueMod1000";
    let counts = if influx {
        let sizes = e.instant(&format!("{hist}_window_size")).await?;
        let stray = e.instant(&format!("{hist}_count")).await?;
        if sizes.len() != 2 || sizes.iter().any(|s| !(1.0..=500.0).contains(&s.value)) {
            return Err(format!("{hist}_window_size per subtask: {sizes:?}"));
        }
        if !stray.is_empty() {
            return Err(format!("{hist}_count on the influx path: {stray:?}"));
        }
        format!("window size {}", sizes[0].value)
    } else {
        let by_subtask = |v: Vec<eddy_at::Sample>| -> BTreeMap<String, f64> {
            v.into_iter()
                .map(|s| {
                    (
                        s.labels.get("subtask_index").cloned().unwrap_or_default(),
                        s.value,
                    )
                })
                .collect()
        };
        let totals = by_subtask(e.instant(&format!("{hist}_count")).await?);
        let inputs = by_subtask(
            e.instant(&format!(r#"{RECORDS_IN}{{operator_name=~"double.map"}}"#))
                .await?,
        );
        if totals.len() != 2
            || totals.keys().ne(inputs.keys())
            || totals
                .iter()
                .any(|(k, c)| (c - inputs[k]).abs() > 0.02 * inputs[k] + 100.0)
        {
            return Err(format!(
                "{hist}_count {totals:?} is not the map's numRecordsIn {inputs:?}"
            ));
        }
        format!("_count {totals:?} = numRecordsIn {inputs:?}")
    };
    // The user counter counts the even values: half of the map's input.
    let evens = e
        .scalar("sum(flink_taskmanager_job_task_operator_probe_evenValues)")
        .await?;
    let map_in = e
        .scalar(&format!(
            r#"sum({RECORDS_IN}{{operator_name=~"double.map"}})"#
        ))
        .await?;
    let ratio = evens / map_in;
    if !(0.45..=0.55).contains(&ratio) {
        return Err(format!(
            "evenValues {evens} / numRecordsIn {map_in} = {ratio:.3}"
        ));
    }
    Ok(format!(
        "{} numRecordsIn series; double-map input {rate:.0}/s over {} reports; heap used {:.0} MB \
         of {:.0} MB; numRestarts 0; valueMod1000 p50 {}, {counts}; evenValues/numRecordsIn \
         {ratio:.3}",
        all.len(),
        map[0].points.len(),
        heap / 1e6,
        heap_max / 1e6,
        p50.iter()
            .map(|s| format!(
                "{:.0} (subtask {})",
                s.value,
                s.labels.get("subtask_index").map_or("?", String::as_str)
            ))
            .collect::<Vec<_>>()
            .join(", "),
    ))
}

/// Every request Flink sent on this path was stored whole: eddy's own ingest counters show
/// samples and requests and no rejected sample.
async fn accepted_everything(e: &Eddy, format: &str) -> Result<(), String> {
    let m = e.own_metrics().await;
    let get = |k: &str| m.get(k).copied().unwrap_or(0.0);
    let samples = get(&format!("eddy_ingest_samples_total{{format=\"{format}\"}}"));
    let requests = get(&format!(
        "eddy_ingest_requests_total{{format=\"{format}\"}}"
    ));
    let rejected: Vec<(&String, &f64)> = m
        .iter()
        .filter(|(k, v)| {
            k.starts_with("eddy_ingest_rejected_samples_total")
                && k.contains(&format!("format=\"{format}\""))
                && **v > 0.0
        })
        .collect();
    eprintln!(
        "  eddy /metrics: {requests} requests, {samples} samples; influx string fields skipped {}, \
         otlp points dropped {}",
        get("eddy_ingest_influx_string_fields_skipped_total"),
        get("eddy_ingest_otlp_points_dropped_total")
    );
    if samples <= 0.0 || requests < 2.0 || !rejected.is_empty() {
        return Err(format!(
            "ingest counters: {requests} requests, {samples} samples, rejected {rejected:?}"
        ));
    }
    Ok(())
}

/// Every sample of `other` that falls inside the time span of the matching `reference` series
/// (same `operator_id` and `subtask_index`) is within 10% + 500 of the reference interpolated at
/// its time. Doubled or lost OTLP deltas, or a counter read at the wrong time, would miss.
fn agree(reference: &[Range], other: &[Range]) -> Result<String, String> {
    let key = |r: &Range| {
        (
            r.label("operator_id").to_string(),
            r.label("subtask_index").to_string(),
        )
    };
    let (mut compared, mut worst) = (0, 0.0_f64);
    for o in other {
        let r = reference
            .iter()
            .find(|r| key(r) == key(o))
            .ok_or_else(|| format!("no influx series for {:?}", key(o)))?;
        for &(t, v) in &o.points {
            let Some(w) = r.points.windows(2).find(|w| w[0].0 <= t && t <= w[1].0) else {
                continue;
            };
            let ((t0, v0), (t1, v1)) = (w[0], w[1]);
            let at = if t1 > t0 {
                v0 + (v1 - v0) * (t - t0) / (t1 - t0)
            } else {
                v0
            };
            let diff = (v - at).abs();
            if diff > 0.1 * at + 500.0 {
                return Err(format!("{:?} at {t}: {v}, influx {at:.0}", key(o)));
            }
            compared += 1;
            worst = worst.max(diff);
        }
    }
    if compared < 2 {
        return Err(format!("only {compared} samples overlap influx's"));
    }
    Ok(format!(
        "{compared} samples, largest difference {worst:.0} records"
    ))
}

/// The value of the only series `q` selects.
async fn one(e: &Eddy, q: &str) -> Result<f64, String> {
    let v = e.instant(q).await?;
    match v.as_slice() {
        [s] => Ok(s.value),
        _ => Err(format!("{q}: {} series, want 1", v.len())),
    }
}

/// The operator series of both attempts after the restart.
#[derive(Debug)]
struct Churn {
    /// Last sample time per old (attempt 0) series, keyed by task_attempt_id + operator_id.
    old_last: BTreeMap<String, f64>,
    /// Latest sample time over the new (attempt 1) series.
    new_last: f64,
    summary: String,
}

/// Succeeds once the restart shows: numRestarts ≥ 1, all operator series of attempt 1 present
/// with fresh `task_attempt_id`s, and every old series' last sample older than the new ones'.
async fn restarted(e: &Eddy) -> Result<Churn, String> {
    let restarts = one(e, "flink_jobmanager_job_numRestarts").await?;
    if restarts < 1.0 {
        return Err(format!("numRestarts {restarts}"));
    }
    let all = e.range(&format!("{RECORDS_IN}[5m]")).await?;
    let attempt = |n: &str| -> Vec<&Range> {
        all.iter()
            .filter(|r| r.label("task_attempt_num") == n)
            .collect()
    };
    let (old, new) = (attempt("0"), attempt("1"));
    if old.len() != OPERATOR_INSTANCES || new.len() != OPERATOR_INSTANCES {
        return Err(format!(
            "{} attempt-0 and {} attempt-1 series, want {OPERATOR_INSTANCES} each (all: {})",
            old.len(),
            new.len(),
            all.len()
        ));
    }
    if new.iter().any(|r| r.points.len() < 2) {
        return Err("attempt-1 series have fewer than 2 samples".into());
    }
    let ids = |rs: &[&Range]| -> BTreeSet<String> {
        rs.iter()
            .map(|r| r.label("task_attempt_id").to_string())
            .collect()
    };
    let (old_ids, new_ids) = (ids(&old), ids(&new));
    if old_ids.len() != 4 || new_ids.len() != 4 || !old_ids.is_disjoint(&new_ids) {
        return Err(format!("task_attempt_id old {old_ids:?} new {new_ids:?}"));
    }
    let key = |r: &Range| format!("{}/{}", r.label("task_attempt_id"), r.label("operator_id"));
    let old_last: BTreeMap<String, f64> = old.iter().map(|r| (key(r), r.last().0)).collect();
    let old_max = old_last.values().copied().fold(f64::MIN, f64::max);
    let new_min_last = new.iter().map(|r| r.last().0).fold(f64::MAX, f64::min);
    let new_last = new.iter().map(|r| r.last().0).fold(f64::MIN, f64::max);
    if old_max >= new_min_last {
        return Err(format!(
            "an old series' last sample ({old_max}) is not older than every new series' last \
             sample ({new_min_last})"
        ));
    }
    // Counters start again from zero in the new attempt.
    let map_in = |rs: &[&Range], f: fn(&Range) -> (f64, f64)| -> f64 {
        rs.iter()
            .filter(|r| r.label("operator_name").starts_with("double"))
            .map(|r| f(r).1)
            .sum()
    };
    let (old_final, new_first) = (map_in(&old, Range::last), map_in(&new, Range::first));
    Ok(Churn {
        summary: format!(
            "numRestarts {restarts}; {} old series (task_attempt_num 0) last sampled {:.1} s \
             before the newest of {} new ones (task_attempt_num 1); double-map numRecordsIn \
             {old_final} before, {new_first} in the first new report",
            old.len(),
            new_last - old_max,
            new.len()
        ),
        old_last,
        new_last,
    })
}

/// Later state `after` shows that the old series stopped: no new samples, while the new ones
/// advanced.
fn ended(before: &Churn, after: &Churn) -> Result<(), String> {
    if after.old_last != before.old_last {
        return Err(format!(
            "old series still get samples: {:?} then {:?}",
            before.old_last, after.old_last
        ));
    }
    if after.new_last <= before.new_last {
        return Err(format!(
            "new series got no samples in {} s: last at {} then {}",
            2 * INTERVAL_S + 1,
            before.new_last,
            after.new_last
        ));
    }
    Ok(())
}
