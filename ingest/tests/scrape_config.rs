//! Scrape config parsing: Prometheus defaults, inheritance from `global`, and errors that name
//! the job and the field.

use std::time::Duration;

use eddy_ingest::scrape::{parse_config, ConfigError};

#[track_caller]
fn err(yaml: &str) -> String {
    match parse_config(yaml) {
        Ok(f) => panic!("accepted: {f:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn defaults_and_global_inheritance() {
    let f = parse_config(
        "scrape_configs:
  - job_name: flink
    static_configs: [{targets: ['127.0.0.1:9249']}]
storage: {retention: 15d}   # another section of eddy's config: ignored here
",
    )
    .expect("config");
    assert!(f.global.is_none());
    let j = &f.scrape_configs[0];
    assert_eq!(j.job_name, "flink");
    assert_eq!(j.scrape_interval, Duration::from_secs(60));
    assert_eq!(j.scrape_timeout, Duration::from_secs(10));
    assert_eq!(j.metrics_path, "/metrics");
    assert_eq!(j.scheme, "http");
    assert!(!j.honor_labels);
    assert_eq!(j.sample_limit, 0);
    assert_eq!(j.body_size_limit, 64 << 20);
    assert_eq!(j.static_configs[0].targets, ["127.0.0.1:9249"]);

    let f = parse_config(
        "global: {scrape_interval: 15s}
scrape_configs:
  - job_name: a
  - job_name: b
    scrape_interval: 5s
    scrape_timeout: 2s
    body_size_limit: 10MB
    file_sd_configs: [{files: [/etc/eddy/tm_*.json]}]
",
    )
    .expect("config");
    let g = f.global.expect("global");
    assert_eq!(
        (g.scrape_interval, g.scrape_timeout),
        (Duration::from_secs(15), Duration::from_secs(10))
    );
    assert_eq!(f.scrape_configs[0].scrape_interval, Duration::from_secs(15));
    // An unset timeout is the smaller of the global timeout and the job's interval.
    let b = &f.scrape_configs[1];
    assert_eq!(
        (b.scrape_interval, b.scrape_timeout),
        (Duration::from_secs(5), Duration::from_secs(2))
    );
    assert_eq!(b.body_size_limit, 10 << 20);
    assert_eq!(
        b.file_sd_configs[0].refresh_interval,
        Duration::from_secs(300)
    );
    let f = parse_config("scrape_configs: [{job_name: c, scrape_interval: 5s}]").expect("config");
    assert_eq!(f.scrape_configs[0].scrape_timeout, Duration::from_secs(5));
}

#[test]
fn unknown_field_names_job_and_field() {
    let e = err("scrape_configs:\n  - job_name: flink\n    scrape_intervall: 15s\n");
    assert!(
        e.starts_with("parse scrape config of job \"flink\": "),
        "{e}"
    );
    assert!(e.contains("unknown field `scrape_intervall`"), "{e}");
    let e = err(
        "scrape_configs:\n  - job_name: flink\n    static_configs: [{targets: [], lables: {}}]\n",
    );
    assert!(
        e.contains("of job \"flink\"") && e.contains("unknown field `lables`"),
        "{e}"
    );
    let e = err("global: {scrape_intrval: 1m}\n");
    assert!(e.contains("unknown field `scrape_intrval`"), "{e}");
    let e = err("scrape_configs:\n  - scrape_interval: 1m\n");
    assert!(
        e.contains("scrape_configs[0]") && e.contains("missing field `job_name`"),
        "{e}"
    );
}

#[test]
fn bad_values_name_job_and_field() {
    assert_eq!(
        err("scrape_configs: [{job_name: flink, scrape_interval: 15 sec}]"),
        "scrape config of job \"flink\": scrape_interval: invalid duration \"15 sec\"; \
         expected e.g. \"15s\", \"1m30s\" or \"500ms\""
    );
    assert_eq!(
        err("scrape_configs: [{job_name: flink, scrape_interval: 15s, scrape_timeout: 20s}]"),
        "scrape config of job \"flink\": scrape_timeout: 20s is greater than scrape_interval 15s"
    );
    assert_eq!(
        err("global: {scrape_interval: 5s, scrape_timeout: 6s}"),
        "scrape config: global.scrape_timeout: 6s is greater than scrape_interval 5s"
    );
    let e = err("scrape_configs: [{job_name: flink, scheme: https}]");
    assert!(
        e.starts_with("scrape config of job \"flink\": scheme: https is not supported"),
        "{e}"
    );
    let e = err("scrape_configs: [{job_name: f, static_configs: [{targets: ['http://h:9249']}]}]");
    assert_eq!(
        e,
        "scrape config of job \"f\": static_configs[0].targets: target \"http://h:9249\" must be \
         host:port, without scheme or path"
    );
    let e = err("scrape_configs: [{job_name: f, metric_relabel_configs: [{action: keep}, {regex: '(', action: drop}]}]");
    assert!(
        e.starts_with(
            "scrape config of job \"f\": metric_relabel_configs[1].regex: invalid regex \"(\""
        ),
        "{e}"
    );
    let e = err("scrape_configs: [{job_name: f, metric_relabel_configs: [{action: hashmod}]}]");
    assert!(
        e.contains("metric_relabel_configs[0].action: unknown relabel action \"hashmod\""),
        "{e}"
    );
    let e = err("scrape_configs: [{job_name: f}, {job_name: f}]");
    assert_eq!(
        e,
        "scrape config of job \"f\": job_name: duplicate job name"
    );
    let e = err("scrape_configs: [{job_name: f, body_size_limit: 10 parsecs}]");
    assert!(e.contains("body_size_limit: invalid size"), "{e}");
    let e = err("scrape_configs: [{job_name: f, file_sd_configs: [{files: ['/a/*/x.json']}]}]");
    assert!(e.contains("file_sd_configs[0].files"), "{e}");
    assert!(matches!(
        parse_config("scrape_configs: [{job_name: f, scrape_interval: 0s}]"),
        Err(ConfigError::Invalid { field, .. }) if field == "scrape_interval"
    ));
    let e = err("scrape_configs: {job_name: f}");
    assert!(e.starts_with("parse scrape config: "), "{e}");
}
