//! Real client: Prometheus's `promtool query …` against eddy served on a loopback socket.
//! Needs `promtool` (Debian: `apt-get install prometheus`); fails, never skips, without it.
#![allow(clippy::unwrap_used)] // Tests fail loudly on any unexpected error.

mod support;

use std::process::Command;

use axum::http::StatusCode;
use support::*;

fn promtool_path() -> String {
    let path = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string());
    match Command::new(&path).arg("--version").output() {
        Ok(o) if o.status.success() => path,
        other => panic!(
            "promtool is required for this test but `{path} --version` failed ({other:?}); \
             install it with `apt-get install -y prometheus` (or set PROMTOOL=/path/to/promtool)"
        ),
    }
}

/// Runs `promtool query <args>` off the async threads; returns stdout, failing on a non-zero exit.
async fn promtool(bin: &str, args: Vec<String>) -> String {
    let bin = bin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&bin)
            .arg("query")
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "promtool query failed: {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    stdout
}

const T0: i64 = 1_700_000_000_000;

/// A series as `remote_write` takes it: labels and samples.
type Written<'a> = (Vec<(&'a str, &'a str)>, Vec<(i64, f64)>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_queries_eddy() {
    let bin = promtool_path();
    let (st, _dir) = state(&[]);
    // numRecordsIn counts up by 150 every 15s on subtask 0 and by 300 on subtask 1.
    let series: Vec<Written> = ["0", "1"]
        .iter()
        .enumerate()
        .map(|(k, sub)| {
            (
                vec![
                    ("__name__", "flink_taskmanager_job_task_numRecordsIn"),
                    ("job_name", "etl"),
                    ("subtask_index", *sub),
                ],
                (0..41)
                    .map(|i| (T0 + i * 15_000, (i * 150 * (k as i64 + 1)) as f64))
                    .collect(),
            )
        })
        .collect();
    let (s, b) = remote_write(&st, &series).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let url = format!("http://{}", serve(st).await);
    let t = |ms: i64| format!("{}", ms / 1000);

    let out = promtool(
        &bin,
        vec![
            "instant".into(),
            url.clone(),
            "sum by (job_name) (flink_taskmanager_job_task_numRecordsIn)".into(),
            format!("--time={}", t(T0 + 300_000)),
        ],
    )
    .await;
    // 20 steps in: 3000 + 6000.
    assert_eq!(out, "{job_name=\"etl\"} => 9000 @[1700000300]\n");

    let out = promtool(
        &bin,
        vec![
            "range".into(),
            url.clone(),
            "flink_taskmanager_job_task_numRecordsIn{subtask_index=\"1\"}".into(),
            format!("--start={}", t(T0 + 60_000)),
            format!("--end={}", t(T0 + 90_000)),
            "--step=15s".into(),
        ],
    )
    .await;
    assert_eq!(
        out,
        "flink_taskmanager_job_task_numRecordsIn{job_name=\"etl\", subtask_index=\"1\"} =>\n\
         1200 @[1700000060]\n\
         1500 @[1700000075]\n\
         1800 @[1700000090]\n"
    );

    let out = promtool(
        &bin,
        vec![
            "series".into(),
            url.clone(),
            "--match=flink_taskmanager_job_task_numRecordsIn".into(),
            format!("--start={}", t(T0)),
            format!("--end={}", t(T0 + 600_000)),
        ],
    )
    .await;
    assert_eq!(
        out,
        "{__name__=\"flink_taskmanager_job_task_numRecordsIn\", job_name=\"etl\", subtask_index=\"0\"}\n\
         {__name__=\"flink_taskmanager_job_task_numRecordsIn\", job_name=\"etl\", subtask_index=\"1\"}\n"
    );

    // Without --start/--end promtool asks for the last 5 minutes only.
    let range = [
        format!("--start={}", t(T0)),
        format!("--end={}", t(T0 + 600_000)),
    ];
    let labels = |name: &str| {
        let mut v = vec!["labels".to_string(), url.clone(), name.to_string()];
        v.extend(range.iter().cloned());
        v
    };
    let out = promtool(&bin, labels("subtask_index")).await;
    assert_eq!(out, "0\n1\n");
    let out = promtool(&bin, labels("__name__")).await;
    assert_eq!(out, "flink_taskmanager_job_task_numRecordsIn\n");
    let out = promtool(&bin, labels("absent_label")).await;
    assert_eq!(out, "");
}

/// Prometheus's own XOR encoder is the reference: `promtool tsdb create-blocks-from openmetrics`
/// writes blocks whose chunks our decoder must read back exactly, and whose bytes our encoder
/// must reproduce exactly from the same samples.
#[test]
fn xor_chunks_match_prometheus_own_encoder() {
    let bin = promtool_path();
    // Timestamps with every delta-of-delta bucket (0, 14, 17, 20 and 64 bits); values that
    // repeat, count up, wobble, jump, and a NaN.
    let mut samples: Vec<(i64, f64)> = Vec::new();
    let mut t = T0;
    for i in 0..700i64 {
        let gap = match i % 50 {
            10 => 15_000 + 9_000,     // 14-bit dod
            20 => 15_000 + 70_000,    // 17-bit dod
            30 => 15_000 + 400_000,   // 20-bit dod
            40 => 15_000 + 1_200_000, // 64-bit dod
            _ => 15_000 + (i % 3),
        };
        t += gap;
        let v = match i % 5 {
            0 => 42.0,
            1 => i as f64 * 150.0,
            2 => (i as f64 * 0.1).sin() * 1e3 + 0.1,
            3 => -1e300 / (i as f64 + 1.0),
            _ => 0.5,
        };
        samples.push((t, if i == 77 { f64::NAN } else { v }));
    }
    let mut om = String::from("# TYPE m gauge\n");
    for &(t, v) in &samples {
        let v = if v.is_nan() {
            "NaN".to_string()
        } else {
            format!("{v:?}")
        };
        om.push_str(&format!(
            "m{{job=\"a\"}} {v} {}.{:03}\n",
            t / 1000,
            t % 1000
        ));
    }
    om.push_str("# EOF\n");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.om");
    std::fs::write(&input, om).unwrap();
    let outdir = dir.path().join("blocks");
    let out = Command::new(&bin)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&outdir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool create-blocks-from failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut chunks_seen = 0;
    let mut decoded_total = 0;
    for block in std::fs::read_dir(&outdir).unwrap() {
        let file = block.unwrap().path().join("chunks").join("000001");
        let raw = std::fs::read(&file).unwrap();
        // Segment header: magic 0x85BD40DD, version, 3 bytes padding.
        assert_eq!(raw[..4], [0x85, 0xbd, 0x40, 0xdd], "{}", file.display());
        let mut pos = 8;
        while pos < raw.len() {
            // Chunk: uvarint len │ encoding │ data │ crc32c(encoding, data).
            let (mut len, mut shift) = (0usize, 0);
            loop {
                let b = raw[pos];
                pos += 1;
                len |= usize::from(b & 0x7f) << shift;
                shift += 7;
                if b < 0x80 {
                    break;
                }
            }
            assert_eq!(raw[pos], 1, "chunk encoding must be XOR");
            let data = &raw[pos + 1..pos + 1 + len];
            let crc = u32::from_be_bytes(raw[pos + 1 + len..pos + 5 + len].try_into().unwrap());
            assert_eq!(crc, crc32c::crc32c(&raw[pos..pos + 1 + len]));
            pos += len + 5;

            let got = eddy::http::remote_read::xor::decode_chunk(data).unwrap();
            let first = samples.iter().position(|s| s.0 == got[0].0).unwrap();
            let want: Vec<(i64, u64)> = samples[first..first + got.len()]
                .iter()
                .map(|&(t, v)| (t, v.to_bits()))
                .collect();
            // Go's NaN is 0x7ff8000000000001; compare NaNs as NaNs, everything else by bits.
            for (g, w) in got.iter().zip(&want) {
                let nan = f64::from_bits(g.1).is_nan() && f64::from_bits(w.1).is_nan();
                assert!(
                    g.0 == w.0 && (nan || g.1 == w.1),
                    "decoded {g:?}, stored {w:?}"
                );
            }
            let mut enc = eddy::http::remote_read::xor::XorEncoder::new();
            for &(t, bits) in &got {
                enc.append(t, f64::from_bits(bits));
            }
            let mine = enc.finish();
            assert_eq!(
                mine, data,
                "our encoding of chunk {chunks_seen} differs from Prometheus's"
            );
            chunks_seen += 1;
            decoded_total += got.len();
        }
    }
    assert_eq!(decoded_total, samples.len());
    assert!(chunks_seen >= 6, "only {chunks_seen} chunks");
}
