use std::collections::BTreeMap;

use super::*;

fn small(restart_every_ms: i64) -> Config {
    Config {
        tms: 5,
        tms_per_job: 2,
        slots: 2,
        hours: 0.1,
        interval_ms: 15_000,
        jitter_ms: 8,
        restart_every_ms,
        seed: 7,
        end_ms: 1_767_225_600_000,
    }
}

/// Every scrape as (tm, ts, labels → value), for whole-workload comparisons.
fn collect(mut w: Workload) -> Vec<(usize, i64, BTreeMap<String, u64>)> {
    let mut out = Vec::new();
    let mut s = Scrape::default();
    while w.next_scrape(&mut s) {
        let mut m = BTreeMap::new();
        for i in 0..s.len() {
            let key: Vec<String> = s.labels(i).map(|(n, v)| format!("{n}={v}")).collect();
            m.insert(key.join(","), s.value(i).to_bits());
        }
        out.push((s.tm, s.ts, m));
    }
    out
}

#[test]
fn sizes_follow_the_topology() {
    let cfg = Config::default();
    // 40 TM + 4 slots × (6 × 60 task + 13 × 11 + 20 source + 14 sink operator series).
    assert_eq!(cfg.series_per_tm(), 40 + 4 * (360 + 143 + 20 + 14));
    assert_eq!(cfg.series_per_tm(), 2188);
    assert_eq!(cfg.rounds(), 240);
    let mut w = Workload::new(cfg.clone());
    let mut s = Scrape::default();
    let mut n = 0u64;
    while w.next_scrape(&mut s) {
        assert_eq!(s.len(), 2188);
        n += s.len() as u64;
    }
    assert_eq!(n, cfg.total_samples());
}

#[test]
fn same_seed_same_data_and_partitions_add_up() {
    let whole = collect(Workload::new(small(0)));
    assert_eq!(whole, collect(Workload::new(small(0))));
    let mut parts: Vec<_> = (0..3)
        .flat_map(|k| collect(Workload::partition(small(0), k, 3)))
        .collect();
    let mut sorted = whole.clone();
    sorted.sort_by_key(|x| (x.0, x.1));
    parts.sort_by_key(|x| (x.0, x.1));
    assert_eq!(sorted, parts);
    let other = Config {
        seed: 8,
        ..small(0)
    };
    assert_ne!(whole, collect(Workload::new(other)));
}

#[test]
fn labels_are_unique_and_flink_shaped() {
    let mut w = Workload::new(small(0));
    let mut s = Scrape::default();
    assert!(w.next_scrape(&mut s));
    let mut seen = std::collections::HashSet::new();
    for i in 0..s.len() {
        let l: Vec<(&str, &str)> = s.labels(i).collect();
        assert_eq!(l[0].0, "__name__");
        assert!(l[0].1.starts_with("flink_taskmanager_"));
        assert!(seen.insert(format!("{l:?}")), "duplicate series {l:?}");
        for (n, v) in &l[1..] {
            assert!(
                v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '_' || c == '.'),
                "{n}={v}"
            );
        }
        if l[0].1.starts_with("flink_taskmanager_job_task_operator_") {
            assert_eq!(l.len(), 12 + usize::from(l.iter().any(|p| p.0 == "split")));
        }
    }
    let op = (0..s.len())
        .find(|&i| s.labels(i).any(|(_, v)| v == "Sink:_kafka_alerts:_Writer"))
        .map(|i| s.labels(i).collect::<BTreeMap<_, _>>());
    let op = op.expect("a sink operator series");
    assert_eq!(op["task_name"], "format_avro____Sink:_kafka_alerts:_Writer");
    assert_eq!(op["task_attempt_num"], "0");
    assert_eq!(op["job_id"].len(), 32);
    assert!(op["task_attempt_id"].ends_with(&format!("_{}_0", op["subtask_index"])));
}

#[test]
fn timestamps_advance_per_tm_with_small_jitter() {
    let cfg = small(0);
    let mut last: BTreeMap<usize, i64> = BTreeMap::new();
    for (tm, ts, _) in collect(Workload::new(cfg.clone())) {
        assert!(ts >= cfg.start_ms() - cfg.jitter_ms && ts < cfg.end_ms + cfg.interval_ms);
        if let Some(prev) = last.insert(tm, ts) {
            let d = ts - prev;
            assert!((d - cfg.interval_ms).abs() <= 2 * cfg.jitter_ms, "step {d}");
        }
    }
    assert_eq!(last.len(), cfg.tms);
}

#[test]
fn restarts_replace_series_and_reset_counters() {
    // Restart every 2 min over 6 min: every job restarts at least twice.
    let cfg = small(120_000);
    let scrapes = collect(Workload::new(cfg.clone()));
    let name = "__name__=flink_taskmanager_job_task_numRecordsIn";
    let mut attempts = std::collections::HashSet::new();
    let mut resets = 0;
    let mut prev: BTreeMap<(usize, String), f64> = BTreeMap::new();
    let mut no_wm = 0;
    for (tm, _, series) in &scrapes {
        let mut cur_attempt = None;
        for (k, &bits) in series {
            if k.starts_with("__name__=flink_taskmanager_job_task_currentInputWatermark,")
                && f64::from_bits(bits) == NO_WATERMARK
            {
                no_wm += 1;
            }
            if !k.starts_with(&format!("{name},")) || !k.contains("subtask_index=0,") {
                continue;
            }
            let attempt = k
                .split(',')
                .find(|p| p.starts_with("task_attempt_id="))
                .map(String::from);
            attempts.insert(attempt.clone());
            cur_attempt = attempt;
            let vertex = k
                .split(',')
                .find(|p| p.starts_with("task_id="))
                .unwrap_or("")
                .to_string();
            let v = f64::from_bits(bits);
            assert_eq!(v.fract(), 0.0, "counters are integers");
            if let Some(p) = prev.insert((*tm, vertex), v) {
                if v < p {
                    resets += 1;
                    // From 0, one scrape of the fastest subtask (4 × 2000/s × 15 s × 1.2) at most.
                    assert!(v <= 576_000.0, "reset restarts near 0, got {v}");
                }
            }
        }
        let _ = cur_attempt;
    }
    // Subtask 0 lives on the first TM of each of the 3 jobs; 6 vertices; ≥ 2 restarts each.
    assert!(resets >= 3 * 6 * 2, "resets {resets}");
    assert!(
        attempts.len() >= 3 * 6 * 3,
        "attempt ids {}",
        attempts.len()
    );
    assert!(no_wm > 0, "watermarks read Long.MIN_VALUE after a restart");
}

#[test]
fn values_have_flink_formats() {
    let mut w = Workload::new(small(0));
    let mut s = Scrape::default();
    assert!(w.next_scrape(&mut s));
    assert!(w.next_scrape(&mut s));
    let find = |s: &Scrape, name: &str| {
        (0..s.len())
            .find(|&i| s.labels(i).next().map(|l| l.1) == Some(name))
            .map(|i| s.value(i))
    };
    let cpu = find(&s, "flink_taskmanager_Status_JVM_CPU_Load").expect("cpu load");
    assert!((0.0..1.0).contains(&cpu));
    let meter = find(&s, "flink_taskmanager_job_task_numRecordsInPerSecond").expect("meter");
    assert_eq!(
        (meter * 60.0).round(),
        (meter * 60.0 * 1e6).round() / 1e6,
        "k/60"
    );
    let max = find(&s, "flink_taskmanager_Status_JVM_Memory_Heap_Max").expect("heap max");
    assert_eq!(max, 1_073_741_824.0);
    let wm = find(&s, "flink_taskmanager_job_task_currentInputWatermark").expect("watermark");
    assert!(wm < s.ts as f64 && wm > (s.ts - 10_000) as f64);
}

#[test]
fn remote_write_encoding_round_trips() {
    let mut w = Workload::new(small(0));
    let mut s = Scrape::default();
    assert!(w.next_scrape(&mut s));
    let mut body = Vec::new();
    s.encode_remote_write(&mut body);
    let mut batch = WriteBatch::new();
    let mut meta = Vec::new();
    let stats = eddy_ingest::remote_write::decode_write_request(&body, &mut batch, &mut meta)
        .expect("decode");
    assert_eq!(stats.series, s.len());
    assert_eq!(stats.samples, s.len());
    let mut direct = WriteBatch::new();
    s.fill_batch(&mut direct);
    assert_eq!(batch.labels, direct.labels);
    assert_eq!(batch.timestamps, direct.timestamps);
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&batch.values), bits(&direct.values));
}

#[test]
fn influx_encoding_reads_back_as_the_same_series() {
    let mut w = Workload::new(small(0));
    let mut s = Scrape::default();
    assert!(w.next_scrape(&mut s));
    let mut body = Vec::new();
    s.encode_influx(&mut body);
    assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), s.len());
    let opts = eddy_ingest::influx::InfluxOptions::default();
    let mut scratch = eddy_ingest::influx::InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats =
        eddy_ingest::influx::parse_body(&body, &opts, &mut scratch, &mut batch).expect("parse");
    assert_eq!(stats.samples, s.len() as u64, "{:?}", stats.error_message());
    assert!(batch.timestamps.iter().all(|&t| t == s.ts));
    let mut direct = WriteBatch::new();
    s.fill_batch(&mut direct);
    // Same label sets (Flink naming turns the measurement back into the reporter's name)
    // and the same values, series by series.
    let set = |b: &WriteBatch<'_>, i: usize| {
        let mut l: Vec<(String, String)> = b
            .series_labels(i)
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        l.sort();
        l
    };
    for i in 0..s.len() {
        assert_eq!(set(&batch, i), set(&direct, i), "series {i}");
        assert_eq!(
            batch.values[i].to_bits(),
            direct.values[i].to_bits(),
            "series {i}"
        );
    }
}
