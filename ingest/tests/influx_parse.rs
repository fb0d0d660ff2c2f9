//! Line protocol grammar, naming, timestamps and errors, with exact expected series.

use std::borrow::Cow;

use eddy_ingest::influx::{
    gunzip, parse_body, parse_lines, parse_precision, FlinkNames, InfluxError, InfluxOptions,
    InfluxScratch, LineErrorKind, Precision,
};
use eddy_storage::WriteBatch;

const NOW: i64 = 1_700_000_000_123;

fn opts() -> InfluxOptions {
    InfluxOptions {
        now_ms: NOW,
        ..Default::default()
    }
}

/// Each series as `name{labels in emitted order}` plus its samples.
fn dump(batch: &WriteBatch<'_>) -> Vec<(String, i64, f64)> {
    let mut out = Vec::new();
    for i in 0..batch.series.len() {
        let labels = batch.series_labels(i);
        let mut s = String::new();
        for (n, v) in labels {
            if n == "__name__" {
                s.insert_str(0, v);
            } else {
                s.push_str(&format!("{n}={v:?},"));
            }
        }
        let (ts, vs) = batch.series_samples(i);
        assert_eq!(ts.len(), 1, "influx series carry one sample");
        out.push((s, ts[0], vs[0]));
    }
    out
}

#[track_caller]
fn check(body: &str, o: &InfluxOptions, want: &[(&str, i64, f64)]) {
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_lines(body, o, &mut scratch, &mut batch).expect("parse");
    assert!(
        stats.errors.is_empty(),
        "unexpected errors: {:?}",
        stats.errors
    );
    let got = dump(&batch);
    let want: Vec<(String, i64, f64)> = want
        .iter()
        .map(|&(s, t, v)| (s.to_string(), t, v))
        .collect();
    assert_eq!(got, want);
    assert_eq!(stats.samples, want.len() as u64);
}

#[track_caller]
fn errors(body: &str) -> (Vec<(u32, u32, LineErrorKind)>, usize) {
    let o = opts();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_lines(body, &o, &mut scratch, &mut batch).expect("parse");
    let errs = stats
        .errors
        .iter()
        .map(|e| match e {
            InfluxError::Line {
                line, column, kind, ..
            } => (*line, *column, *kind),
            other => panic!("unexpected {other}"),
        })
        .collect();
    (errs, batch.series.len())
}

#[test]
fn every_field_type() {
    check(
        "cpu,host=a,region=eu f=1.5,i=-2i,u=3u,t=t,T=TRUE,f2=False,s=\"str\" 1700000000000000000",
        &opts(),
        &[
            ("cpu_fhost=\"a\",region=\"eu\",", 1_700_000_000_000, 1.5),
            ("cpu_ihost=\"a\",region=\"eu\",", 1_700_000_000_000, -2.0),
            ("cpu_uhost=\"a\",region=\"eu\",", 1_700_000_000_000, 3.0),
            ("cpu_thost=\"a\",region=\"eu\",", 1_700_000_000_000, 1.0),
            ("cpu_Thost=\"a\",region=\"eu\",", 1_700_000_000_000, 1.0),
            ("cpu_f2host=\"a\",region=\"eu\",", 1_700_000_000_000, 0.0),
        ],
    );
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let o = opts();
    let stats = parse_lines("m s=\"a\",v=1", &o, &mut scratch, &mut batch).unwrap();
    assert_eq!(
        (stats.lines, stats.samples, stats.string_fields_skipped),
        (1, 1, 1)
    );
}

#[test]
fn float_syntax() {
    let o = opts();
    check(
        "m a=1,b=1.0,c=1.e+78,d=1.E+78,e=-1.5,f=1e3,g=-0.0,h=.5 0",
        &o,
        &[
            ("m_a", 0, 1.0),
            ("m_b", 0, 1.0),
            ("m_c", 0, 1e78),
            ("m_d", 0, 1e78),
            ("m_e", 0, -1.5),
            ("m_f", 0, 1000.0),
            ("m_g", 0, -0.0),
            ("m_h", 0, 0.5),
        ],
    );
}

#[test]
fn escapes() {
    check(
        r#"my\,meas\ x,t\=k\ 1=v\,2\ 3\=,plain=p f\ k\,\=1=1,x="q\"uo\\te, =" 5000000"#,
        &opts(),
        &[("my,meas x_f k,=1t=k 1=\"v,2 3=\",plain=\"p\",", 5, 1.0)],
    );
    // A backslash before an ordinary character is kept; `\\` is one backslash.
    check(
        r"m\=x,k=a\b\\c v=1 0",
        &opts(),
        &[(r#"m\=x_vk="a\\b\\c","#, 0, 1.0)],
    );
    // Measurement: `=` needs no escape.
    check("a=b v=2 0", &opts(), &[("a=b_v", 0, 2.0)]);
}

#[test]
fn borrowed_when_unescaped() {
    let body = "cpu,host=server\\ 1,dc=west v=1 0\ncpu,host=server\\ 1,dc=east v=2 0";
    let o = opts();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    parse_lines(body, &o, &mut scratch, &mut batch).unwrap();
    // Every label borrows: from the body when it is there as is, else from the scratch.
    let in_body = |s: &Cow<'_, str>| {
        let r = body.as_bytes().as_ptr_range();
        matches!(s, Cow::Borrowed(_)) && r.contains(&s.as_ptr())
    };
    let labels = batch.series_labels(0);
    assert!(labels
        .iter()
        .all(|(n, v)| matches!((n, v), (Cow::Borrowed(_), Cow::Borrowed(_)))));
    assert_eq!(labels[0].1, "cpu_v");
    assert!(!in_body(&labels[0].1), "metric name is built");
    assert!(in_body(&labels[1].0));
    assert_eq!(labels[1].1, "server 1");
    assert!(
        !in_body(&labels[1].1),
        "escaped value is unescaped into the scratch"
    );
    assert!(in_body(&labels[2].1));
    // Equal derived strings are stored once per request.
    let second = batch.series_labels(1);
    assert_eq!(second[0].1.as_ptr(), labels[0].1.as_ptr());
    assert_eq!(second[1].1.as_ptr(), labels[1].1.as_ptr());
    assert_eq!(second[2].1, "east");
}

#[test]
fn precisions() {
    let f = |p: &str, ts: &str, want: i64| {
        let o = InfluxOptions {
            precision: parse_precision(p).unwrap(),
            now_ms: NOW,
            ..Default::default()
        };
        check(&format!("m v=1 {ts}"), &o, &[("m_v", want, 1.0)]);
    };
    f("n", "1700000000123456789", 1_700_000_000_123);
    f("ns", "1700000000123999999", 1_700_000_000_123);
    f("u", "1700000000123456", 1_700_000_000_123);
    f("us", "-1500", -2);
    f("ms", "1700000000123", 1_700_000_000_123);
    f("s", "1700000000", 1_700_000_000_000);
    f("m", "2", 120_000);
    f("h", "-1", -3_600_000);
    f("n", "-1", -1);
    f("n", "-9223372036854775808", i64::MIN.div_euclid(1_000_000));
    assert!(matches!(
        parse_precision("x"),
        Err(InfluxError::UnknownPrecision { .. })
    ));
    assert_eq!(parse_precision("µ").unwrap(), Precision::Us);
}

#[test]
fn timestamp_overflow_is_a_line_error() {
    let o = InfluxOptions {
        precision: Precision::H,
        now_ms: NOW,
        ..Default::default()
    };
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_lines(
        "m v=1 9223372036854775807\nm v=2 1\n",
        &o,
        &mut scratch,
        &mut batch,
    )
    .unwrap();
    assert_eq!(stats.bad_lines, 1);
    assert_eq!(
        stats.errors[0].kind(),
        Some(LineErrorKind::TimestampOutOfRange)
    );
    assert_eq!(stats.errors[0].line(), Some(1));
    assert_eq!(dump(&batch), vec![("m_v".to_string(), 3_600_000, 2.0)]);
    let (e, _) = errors("m v=1 9223372036854775808\n");
    assert_eq!(e, vec![(1, 7, LineErrorKind::TimestampOutOfRange)]);
}

#[test]
fn missing_timestamp_uses_now() {
    check(
        "m v=1\nm v=2   \n",
        &opts(),
        &[("m_v", NOW, 1.0), ("m_v", NOW, 2.0)],
    );
}

#[test]
fn comments_blank_lines_crlf() {
    let body = "# a comment\r\n\r\n   \n\t m v=1 1000000\r\nm v=2 2000000\r\n# trailing comment";
    check(body, &opts(), &[("m_v", 1, 1.0), ("m_v", 2, 2.0)]);
    check("m,t=a v=3\r\n", &opts(), &[("m_vt=\"a\",", NOW, 3.0)]);
    // A lone CR inside a tag value is data, not a line end.
    check("m,t=a\rb v=3 0", &opts(), &[("m_vt=\"a\\rb\",", 0, 3.0)]);
}

#[test]
fn multi_line_string_field_keeps_line_numbers() {
    let body = "m s=\"one\ntwo\",v=1 0\nbad\nm v=2 0";
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let o = opts();
    let stats = parse_lines(body, &o, &mut scratch, &mut batch).expect("parse");
    assert_eq!(stats.lines, 2);
    assert_eq!(stats.string_fields_skipped, 1);
    assert_eq!(stats.errors[0].line(), Some(3));
}

#[test]
fn extra_labels_unless_tag_present() {
    let o = InfluxOptions {
        extra_labels: vec![("db".into(), "flink".into())],
        ..opts()
    };
    check(
        "m,a=1 v=1 0\nm,db=other v=2 0",
        &o,
        &[
            ("m_va=\"1\",db=\"flink\",", 0, 1.0),
            ("m_vdb=\"other\",", 0, 2.0),
        ],
    );
}

#[test]
fn prom_names_option() {
    let o = InfluxOptions {
        prom_names: true,
        ..opts()
    };
    check(
        "disk.io,node-name=a read-bytes=1 0",
        &o,
        &[("disk_io_read_bytesnode_name=\"a\",", 0, 1.0)],
    );
    check(
        "disk.io,node-name=a read-bytes=1 0",
        &opts(),
        &[("disk.io_read-bytesnode-name=\"a\",", 0, 1.0)],
    );
}

#[test]
fn errors_name_line_and_column() {
    let body = "\
m v=1 0
,t=a v=1
cpu
cpu,host
cpu,=a v=1
cpu,a= v=1
cpu,a=b=c v=1
cpu,a=b
cpu v
cpu v=
cpu v=1,=2
cpu v=\"open
cpu v=1a
cpu v=tru
cpu v=1 12x
cpu v=1 1 extra
cpu v=1i2
cpu v=NaN
cpu v=99999999999999999999i
cpu,a=1,a=2 v=1
cpu,__name__=x v=1
cpu v=1e999
m v=2 0
";
    let o = opts();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_lines(body, &o, &mut scratch, &mut batch).expect("parse");
    assert_eq!(stats.lines, 2);
    assert_eq!(stats.bad_lines, 21);
    assert_eq!(stats.errors.len(), 16, "bounded");
    let got: Vec<_> = stats
        .errors
        .iter()
        .map(|e| match e {
            InfluxError::Line {
                line, column, kind, ..
            } => (*line, *column, *kind),
            other => panic!("{other}"),
        })
        .collect();
    use LineErrorKind::*;
    assert_eq!(
        got,
        vec![
            (2, 1, MissingMeasurement),
            (3, 4, MissingFields),
            (4, 9, MissingTagValue),
            (5, 5, MissingTagKey),
            (6, 7, MissingTagValue),
            (7, 8, InvalidTagFormat),
            (8, 8, MissingFields),
            (9, 6, InvalidFieldFormat),
            (10, 7, MissingFieldValue),
            (11, 9, MissingFieldKey),
            (12, 7, UnbalancedQuotes),
            (13, 7, InvalidNumber),
            (14, 7, InvalidBoolean),
            (15, 9, BadTimestamp),
            (16, 11, TrailingGarbage),
            (17, 7, InvalidNumber),
        ]
    );
    assert_eq!(
        dump(&batch),
        vec![("m_v".to_string(), 0, 1.0), ("m_v".to_string(), 0, 2.0)]
    );
    assert_eq!(
        stats.errors[1].to_string(),
        "unable to parse 'cpu': missing fields (line 3, column 4)"
    );
    let msg = stats.error_message().unwrap();
    assert!(msg.starts_with("unable to parse ',t=a v=1': missing measurement (line 2, column 1)\n"));
    assert!(msg.ends_with("… and 5 more bad lines"));

    // The tail of the list, past the bound.
    let tail = body.lines().skip(17).collect::<Vec<_>>().join("\n");
    let (e, n) = errors(&tail);
    assert_eq!(
        e,
        vec![
            (1, 7, InvalidNumber),
            (2, 7, IntegerOutOfRange),
            (3, 9, DuplicateTags),
            (4, 5, ReservedKey),
            (5, 7, InvalidFloat),
        ]
    );
    assert_eq!(n, 1);
}

#[test]
fn error_text_is_bounded() {
    let long = format!("m,t={} v=x 0", "é".repeat(1000));
    let o = opts();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_lines(&long, &o, &mut scratch, &mut batch).unwrap();
    match &stats.errors[0] {
        InfluxError::Line { text, column, .. } => {
            assert!(text.len() <= 256 && text.starts_with("m,t=é"));
            assert_eq!(*column, 2008);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn ten_thousand_tags() {
    let mut line = String::from("wide");
    for i in 0..10_000 {
        line.push_str(&format!(",k{i:05}=v{i}"));
    }
    line.push_str(" a=1,b=2i 1000000");
    let o = opts();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_lines(&line, &o, &mut scratch, &mut batch).unwrap();
    assert_eq!((stats.lines, stats.samples, stats.bad_lines), (1, 2, 0));
    let labels = batch.series_labels(1);
    assert_eq!(labels.len(), 10_001);
    assert_eq!(labels[0].1, "wide_b");
    assert_eq!(
        (labels[10_000].0.as_ref(), labels[10_000].1.as_ref()),
        ("k09999", "v9999")
    );
    // The same with one duplicate far apart is rejected.
    let dup = line.replace(",k09999=", ",k00000=");
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_lines(&dup, &o, &mut scratch, &mut batch).unwrap();
    assert_eq!(stats.errors[0].kind(), Some(LineErrorKind::DuplicateTags));
}

#[test]
fn giant_values() {
    let big_tag = "x".repeat(1 << 20);
    let body = format!(
        "m,big={big_tag} max=1.7976931348623157e308,min=-1.7976931348623157e308,tiny=5e-324,\
         imax=9223372036854775807i,imin=-9223372036854775808i,umax=18446744073709551615u,long={digits} 0",
        digits = "9".repeat(300)
    );
    let o = opts();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_lines(&body, &o, &mut scratch, &mut batch).unwrap();
    assert_eq!(stats.bad_lines, 0, "{:?}", stats.errors);
    let vals: Vec<f64> = batch.values.clone();
    assert_eq!(
        vals,
        vec![
            f64::MAX,
            f64::MIN,
            5e-324,
            i64::MAX as f64,
            i64::MIN as f64,
            u64::MAX as f64,
            1e300
        ]
    );
    assert_eq!(batch.series_labels(0)[1].1.len(), 1 << 20);
    let (e, _) = errors(&format!("m v={} 0", "9".repeat(400)));
    assert_eq!(e, vec![(1, 5, LineErrorKind::InvalidFloat)]);
}

#[test]
fn invalid_utf8_body() {
    let mut body = b"m v=1 0\nm,t=ok v=2 0\nm,t=".to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(b" v=3 0\n");
    let o = opts();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let err = parse_body(&body, &o, &mut scratch, &mut batch).unwrap_err();
    assert!(
        matches!(err, InfluxError::InvalidUtf8 { line: 3, column: 5 }),
        "{err}"
    );
    assert!(batch.is_empty());
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_body(b"m v=1 0", &o, &mut scratch, &mut batch).unwrap();
    assert_eq!(stats.samples, 1);
}

#[test]
fn flink_names_auto_on_off() {
    let line = "taskmanager_job_task_x,host=h count=3i,rate=0.5 0\ncpu value=1 0";
    check(
        line,
        &opts(),
        &[
            ("flink_taskmanager_job_task_x_counthost=\"h\",", 0, 3.0),
            ("flink_taskmanager_job_task_xhost=\"h\",", 0, 0.5),
            ("cpu_value", 0, 1.0),
        ],
    );
    let off = InfluxOptions {
        flink_names: FlinkNames::Off,
        ..opts()
    };
    check(
        line,
        &off,
        &[
            ("taskmanager_job_task_x_counthost=\"h\",", 0, 3.0),
            ("taskmanager_job_task_x_ratehost=\"h\",", 0, 0.5),
            ("cpu_value", 0, 1.0),
        ],
    );
    let on = InfluxOptions {
        flink_names: FlinkNames::On,
        ..opts()
    };
    check("cpu value=1 0", &on, &[("flink_cpu", 0, 1.0)]);
}

#[test]
fn flink_histogram_becomes_summary() {
    let body = "taskmanager_job_task_mailboxLatencyMs,task_name=a\\ ->\\ b count=60i,max=1i,mean=0.0666,min=0i,\
                p50=0.0,p75=0.0,p95=1.0,p98=1.0,p99=1.0,p999=2.0,stddev=0.25 1795617818784000000";
    let n = "flink_taskmanager_job_task_mailboxLatencyMs";
    let t = 1_795_617_818_784;
    let lbl = "task_name=\"a -> b\",";
    let q = |q: &str| format!("{n}quantile=\"{q}\",{lbl}");
    let want: Vec<(String, i64, f64)> = vec![
        // `count` is the sliding window's size, not the summary's total `_count`.
        (format!("{n}_window_size{lbl}"), t, 60.0),
        (format!("{n}_max{lbl}"), t, 1.0),
        (format!("{n}_mean{lbl}"), t, 0.0666),
        (format!("{n}_min{lbl}"), t, 0.0),
        (q("0.5"), t, 0.0),
        (q("0.75"), t, 0.0),
        (q("0.95"), t, 1.0),
        (q("0.98"), t, 1.0),
        (q("0.99"), t, 1.0),
        (q("0.999"), t, 2.0),
        (format!("{n}_stddev{lbl}"), t, 0.25),
    ];
    let o = opts();
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    parse_lines(body, &o, &mut scratch, &mut batch).unwrap();
    assert_eq!(dump(&batch), want);

    let s = InfluxOptions {
        flink_sanitize_tag_values: true,
        ..opts()
    };
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    parse_lines(body, &s, &mut scratch, &mut batch).unwrap();
    assert_eq!(batch.series_labels(0)[1].1, "a____b");
}

#[test]
fn flink_boolean_strings() {
    check(
        "taskmanager_job_task_isBackPressured,h=x value=\"true\" 0\n\
         taskmanager_job_task_isBackPressured,h=y value=\"false\" 0\n\
         jobmanager_job_lastCheckpointExternalPath value=\"n/a\" 0",
        &opts(),
        &[
            ("flink_taskmanager_job_task_isBackPressuredh=\"x\",", 0, 1.0),
            ("flink_taskmanager_job_task_isBackPressuredh=\"y\",", 0, 0.0),
        ],
    );
}

#[test]
fn flink_sample_file() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/flink/sample-influx.lp"
    );
    let body = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!("read {path} (the shared test data checked out beside the repository): {e}")
    });
    let o = InfluxOptions {
        extra_labels: vec![("db".into(), "flink".into())],
        ..opts()
    };
    let mut scratch = InfluxScratch::new();
    let mut batch = WriteBatch::new();
    let stats = parse_lines(&body, &o, &mut scratch, &mut batch).unwrap();
    // The capture file separates request bodies with their request line, which is not line
    // protocol: exactly those two lines fail.
    let lines: Vec<_> = stats.errors.iter().map(|e| (e.line(), e.kind())).collect();
    assert_eq!(
        lines,
        vec![
            (Some(73), Some(LineErrorKind::MissingFields)),
            (Some(385), Some(LineErrorKind::MissingFields))
        ]
    );
    assert_eq!(
        (stats.lines, stats.samples, stats.string_fields_skipped),
        (392, 471, 1)
    );
    let d = dump(&batch);
    assert_eq!(
        d[0],
        (
            "flink_taskmanager_Status_JVM_Memory_Direct_MemoryUsedtm_id=\"4bd9cddb-70b7-4e51-9f3a-2f7177443bb7\",db=\"flink\","
                .to_string(),
            1_795_619_830_454,
            67_117_056.0
        )
    );
    let find = |name: &str| d.iter().filter(|(s, _, _)| s.starts_with(name)).count();
    // Meters: the rate carries the meter's name (as on the Prometheus path), the count gets _count.
    assert_eq!(
        find("flink_taskmanager_Status_JVM_GarbageCollector_All_TimeMsPerSecondtm_id"),
        2
    );
    assert_eq!(
        find("flink_taskmanager_Status_JVM_GarbageCollector_All_TimeMsPerSecond_counttm_id"),
        2
    );
    assert_eq!(find("flink_taskmanager_job_task_mailboxLatencyMs_max"), 4);
    assert!(d.iter().all(|(s, _, _)| s.starts_with("flink_")));
    let task_names: Vec<_> = (0..batch.series.len())
        .flat_map(|i| batch.series_labels(i).iter())
        .filter(|l| l.0 == "task_name")
        .collect();
    assert!(task_names
        .iter()
        .any(|l| l.1 == "window-sum -> blackhole-sink: Writer"));
}

#[test]
fn gunzip_round_trip_and_limit() {
    use std::io::Write;
    let body = "m v=1 0\n".repeat(1000);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(body.as_bytes()).unwrap();
    let gz = enc.finish().unwrap();
    let mut dst = b"keep".to_vec();
    gunzip(&gz, &mut dst, body.len()).unwrap();
    assert_eq!(&dst[..4], b"keep");
    assert_eq!(&dst[4..], body.as_bytes());
    let mut dst = Vec::new();
    assert!(matches!(
        gunzip(&gz, &mut dst, body.len() - 1),
        Err(InfluxError::GzipTooLarge { .. })
    ));
    assert!(dst.is_empty());
    assert!(matches!(
        gunzip(b"not gzip", &mut dst, 100),
        Err(InfluxError::Gzip { .. })
    ));
}

#[test]
fn backslash_before_multibyte_characters() {
    check(
        "m\\é,t\\ü=a\\€ v\\é=1 0",
        &opts(),
        &[("m\\é_v\\ét\\ü=\"a\\\\€\",", 0, 1.0)],
    );
    let (e, _) = errors("m,t=a\\€");
    assert_eq!(
        e,
        vec![(1, 10, LineErrorKind::MissingFields)],
        "byte column of the line end"
    );
}

#[test]
fn reused_scratch_keeps_no_strings_of_earlier_requests() {
    let o = InfluxOptions {
        prom_names: true,
        ..opts()
    };
    let mut scratch = InfluxScratch::new();
    let bodies = [
        "cpu.load,host=a\\ b,x-y=1 v=1 0\ncpu.load,host=a\\ b,x-y=1 v=2 0",
        "mem,host=c\\ d,x-y=2 used=3 0",
    ];
    let want: [&[(&str, i64, f64)]; 2] = [
        &[
            ("cpu_load_vhost=\"a b\",x_y=\"1\",", 0, 1.0),
            ("cpu_load_vhost=\"a b\",x_y=\"1\",", 0, 2.0),
        ],
        &[("mem_usedhost=\"c d\",x_y=\"2\",", 0, 3.0)],
    ];
    for (body, want) in bodies.iter().zip(want) {
        let mut batch = WriteBatch::new();
        parse_lines(body, &o, &mut scratch, &mut batch).unwrap();
        let got = dump(&batch);
        let want: Vec<(String, i64, f64)> = want
            .iter()
            .map(|(s, t, v)| (s.to_string(), *t, *v))
            .collect();
        assert_eq!(got, want);
    }
}
