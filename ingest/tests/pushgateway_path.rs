//! Pushgateway grouping paths: plain, base64url and percent-encoded segments, and every error.

use eddy_ingest::pushgateway::parse_grouping_path;
use eddy_ingest::Error;

#[track_caller]
fn ok(path: &str, want: &[(&str, &str)]) {
    let got = parse_grouping_path(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want, "{path:?}");
}

#[track_caller]
fn bad(path: &str, want_reason: &str) {
    match parse_grouping_path(path) {
        Err(Error::GroupingPath { path: p, reason }) => {
            assert_eq!(p, path);
            assert_eq!(reason, want_reason, "{path:?}");
        }
        other => panic!("{path:?}: want an error, got {other:?}"),
    }
}

#[test]
fn flink_reporter_path() {
    ok(
        "job/flinkprobebecff6e67098257245baa6a75f6df9f0/cluster/probe/env/dev",
        &[
            ("job", "flinkprobebecff6e67098257245baa6a75f6df9f0"),
            ("cluster", "probe"),
            ("env", "dev"),
        ],
    );
    ok("/job/a", &[("job", "a")]);
    ok("job/a/", &[("job", "a")]);
    ok(
        "job/a/instance/host:9249",
        &[("job", "a"), ("instance", "host:9249")],
    );
}

#[test]
fn base64url_values_with_and_without_padding() {
    ok("job@base64/Zm9vL2Jhcg", &[("job", "foo/bar")]);
    ok("job@base64/Zm9vL2Jhcg==", &[("job", "foo/bar")]);
    ok(
        "job/x/path@base64/L3Zhci90bXA",
        &[("job", "x"), ("path", "/var/tmp")],
    );
    ok(
        "job/x/a@base64/Pz8-/b@base64/Pz8_",
        &[("job", "x"), ("a", "??>"), ("b", "???")],
    );
    ok("job/x/empty@base64/=", &[("job", "x"), ("empty", "")]);
    ok("job/x/u@base64/4pyT", &[("job", "x"), ("u", "✓")]);
}

#[test]
fn percent_decoding_after_splitting() {
    ok("job/a%20b/path/x%2Fy", &[("job", "a b"), ("path", "x/y")]);
    ok("job/%E2%9C%93", &[("job", "✓")]);
    ok("job/x/plain/", &[("job", "x"), ("plain", "")]);
}

#[test]
fn errors_name_the_problem() {
    bad("", "missing job: the path must start with job/<name>");
    bad("/", "missing job: the path must start with job/<name>");
    bad(
        "instance/x",
        "missing job: the path must start with job/<name>, not \"instance\"",
    );
    bad(
        "job",
        "odd number of path segments (1): labels come as <name>/<value> pairs",
    );
    bad("job/", "empty job name");
    bad(
        "job/a/b",
        "odd number of path segments (3): labels come as <name>/<value> pairs",
    );
    bad("job@base64/=", "empty job name");
    bad("job//x/y", "empty job name");
    bad(
        "job/a/x@base64/!!",
        "invalid base64 value for label \"x\": illegal character '!' at position 0",
    );
    bad(
        "job/a/x@base64/A",
        "invalid base64 value for label \"x\": 1 characters cannot be base64",
    );
    bad(
        "job/a/x@base64/Zm9v+w",
        "invalid base64 value for label \"x\": illegal character '+' at position 4",
    );
    bad(
        "job/a/x@base64/_w",
        "invalid base64 value for label \"x\": decoded value is not valid UTF-8",
    );
    bad(
        "job/a/1abc/v",
        "invalid label name \"1abc\": must match [a-zA-Z_][a-zA-Z0-9_]*",
    );
    bad(
        "job/a/my.label/v",
        "invalid label name \"my.label\": must match [a-zA-Z_][a-zA-Z0-9_]*",
    );
    bad(
        "job/a/__name__/v",
        "label name \"__name__\" is reserved (starts with \"__\")",
    );
    bad(
        "job/a/__x/v",
        "label name \"__x\" is reserved (starts with \"__\")",
    );
    bad(
        "job/a/@base64/v",
        "invalid label name \"\": must match [a-zA-Z_][a-zA-Z0-9_]*",
    );
    bad("job/a/job/b", "label \"job\" given twice");
    bad(
        "job/a/b%zz/c",
        "invalid percent-encoding in segment \"b%zz\"",
    );
    bad(
        "job/%ff",
        "segment \"%ff\" is not valid UTF-8 once percent-decoded",
    );
}

#[test]
fn display_includes_the_path() {
    let e = parse_grouping_path("job").unwrap_err();
    assert_eq!(
        e.to_string(),
        "parse pushgateway grouping path \"job\": odd number of path segments (1): labels come as <name>/<value> pairs"
    );
}
