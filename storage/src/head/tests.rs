use super::*;
use crate::api::{is_stale_nan, stale_nan};
use crate::labels::MatchOp;

fn head() -> Head {
    Head::new(HeadOptions {
        ooo_window_ms: 60_000,
        shards: 4,
        ..Default::default()
    })
}

fn append(h: &Head, name: &str, extra: (&str, &str), samples: &[(i64, f64)]) -> AppendOutcome {
    let mut b = WriteBatch::new();
    b.add_series([("job", "flink"), extra, ("__name__", name)], samples);
    let mut log = AppendLog::default();
    h.append(&mut b, &mut log).unwrap()
}

#[test]
fn append_then_select_round_trips_many_samples() {
    let h = head();
    let samples: Vec<(i64, f64)> = (0..1000).map(|i| (i * 10_000, i as f64 * 1.5)).collect();
    for chunk in samples.chunks(7) {
        let o = append(&h, "up", ("instance", "a"), chunk);
        assert_eq!(o.accepted, chunk.len() as u64);
    }
    let got = h
        .select(&[Matcher::equal("__name__", "up")], 0, i64::MAX)
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].labels.to_string(),
        r#"up{instance="a", job="flink"}"#
    );
    assert_eq!(
        got[0].timestamps,
        samples.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    assert_eq!(
        got[0].values,
        samples.iter().map(|s| s.1).collect::<Vec<_>>()
    );
    let part = h
        .select(&[Matcher::equal("__name__", "up")], 50_000, 100_000)
        .unwrap();
    assert_eq!(
        part[0].timestamps,
        vec![50_000, 60_000, 70_000, 80_000, 90_000, 100_000]
    );
}

#[test]
fn duplicates_same_value_accepted_different_rejected() {
    let h = head();
    append(&h, "m", ("a", "1"), &[(1000, 1.0), (2000, 2.0)]);
    let o = append(&h, "m", ("a", "1"), &[(2000, 2.0)]);
    assert_eq!((o.accepted, o.rejected_total()), (1, 0));
    let o = append(&h, "m", ("a", "1"), &[(2000, 3.0)]);
    assert_eq!(o.rejected, vec![(RejectReason::DuplicateTimestamp, 1)]);
    assert!(
        o.messages[0].contains("duplicate sample for timestamp 2000"),
        "{:?}",
        o.messages
    );
    // Duplicate of an older, sealed sample.
    let many: Vec<(i64, f64)> = (3..100).map(|i| (i * 1000, i as f64)).collect();
    append(&h, "m", ("a", "1"), &many);
    let o = append(&h, "m", ("a", "1"), &[(50_000, 50.0), (60_000, 61.0)]);
    assert_eq!(o.accepted, 1);
    assert_eq!(o.rejected, vec![(RejectReason::DuplicateTimestamp, 1)]);
}

#[test]
fn out_of_order_inside_window_accepted_outside_rejected() {
    let h = head();
    let many: Vec<(i64, f64)> = (0..200).map(|i| (1_000_000 + i * 1000, i as f64)).collect();
    append(&h, "m", ("a", "1"), &many);
    // newest = 1_199_000; window 60 s
    let o = append(
        &h,
        "m",
        ("a", "1"),
        &[(1_150_500, -1.0), (1_198_500, -2.0), (1_000_500, -3.0)],
    );
    assert_eq!(o.accepted, 2);
    assert_eq!(o.rejected, vec![(RejectReason::OutOfOrder, 1)]);
    let got = h
        .select(&[Matcher::equal("a", "1")], 1_150_000, 1_151_000)
        .unwrap();
    assert_eq!(got[0].timestamps, vec![1_150_000, 1_150_500, 1_151_000]);
    assert_eq!(got[0].values, vec![150.0, -1.0, 151.0]);
    let got = h
        .select(&[Matcher::equal("a", "1")], 1_198_000, 1_199_000)
        .unwrap();
    assert_eq!(got[0].values, vec![198.0, -2.0, 199.0]);
}

#[test]
fn stale_markers_and_special_values_round_trip_bit_exact() {
    let h = head();
    let vals = [
        stale_nan(),
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        5e-324,
        1.7976931348623157e308,
        -9.223372036854776e18,
    ];
    let samples: Vec<(i64, f64)> = vals
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64 * 1000, v))
        .collect();
    append(&h, "m", ("a", "1"), &samples);
    let got = h.select(&[], 0, i64::MAX).unwrap();
    let bits: Vec<u64> = got[0].values.iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits, vals.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert!(is_stale_nan(got[0].values[0]));
}

#[test]
fn invalid_labels_rejected_with_message() {
    let h = head();
    let mut b = WriteBatch::new();
    b.add_series([("__name__", "m"), ("a", "1"), ("a", "2")], &[(1, 1.0)]);
    b.add_series([("", "x"), ("__name__", "m")], &[(1, 1.0)]);
    b.add_series([("__name__", "ok")], &[(1, 1.0)]);
    let o = h.append(&mut b, &mut AppendLog::default()).unwrap();
    assert_eq!(o.accepted, 1);
    assert_eq!(o.rejected, vec![(RejectReason::InvalidLabels, 2)]);
    assert!(
        o.messages[0].contains("duplicate label name \"a\""),
        "{:?}",
        o.messages
    );
    assert!(
        o.messages[1].contains("empty label name"),
        "{:?}",
        o.messages
    );
}

#[test]
fn matchers_label_names_and_values() {
    let h = head();
    append(&h, "m", ("pod", "a"), &[(1000, 1.0)]);
    append(&h, "m", ("pod", "b"), &[(5000, 1.0)]);
    append(&h, "n", ("zone", "z"), &[(1000, 1.0)]);
    let re = Matcher::new(MatchOp::RegexMatch, "pod", "a|b").unwrap();
    assert_eq!(h.select(&[re], 0, 10_000).unwrap().len(), 2);
    let not = Matcher::new(MatchOp::NotEqual, "pod", "a").unwrap();
    // != also selects series without the label.
    let names: Vec<String> = h
        .select(&[not], 0, 10_000)
        .unwrap()
        .iter()
        .map(|s| s.labels.to_string())
        .collect();
    assert_eq!(
        names,
        vec![r#"m{job="flink", pod="b"}"#, r#"n{job="flink", zone="z"}"#]
    );
    assert_eq!(
        h.label_names(&[], 0, 10_000).unwrap(),
        vec!["__name__", "job", "pod", "zone"]
    );
    assert_eq!(h.label_values("pod", &[], 0, 2000).unwrap(), vec!["a"]);
    assert_eq!(
        h.label_values("pod", &[], 0, 10_000).unwrap(),
        vec!["a", "b"]
    );
}

#[test]
fn truncate_removes_old_samples_and_empty_series() {
    let h = head();
    append(&h, "old", ("a", "1"), &[(1000, 1.0), (2000, 2.0)]);
    let many: Vec<(i64, f64)> = (0..300).map(|i| (i * 100, i as f64)).collect();
    append(&h, "keep", ("a", "1"), &many);
    let removed = h.truncate_before(10_000).unwrap();
    assert_eq!(removed.cardinality(), 1);
    assert_eq!(h.stats().series, 1);
    let got = h.select(&[], 0, i64::MAX).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamps.first(), Some(&10_000));
    assert_eq!(got[0].timestamps.len(), 200);
    let o = append(&h, "keep", ("a", "1"), &[(9_000, 1.0)]);
    assert_eq!(o.rejected, vec![(RejectReason::TooOld, 1)]);
}

#[test]
fn series_limit_rejects_new_series_only() {
    let limits = SeriesLimitOptions {
        max_series: 2,
        ..Default::default()
    };
    let h = Head::new(HeadOptions {
        limits,
        ..HeadOptions::default()
    });
    append(&h, "a", ("x", "1"), &[(1, 1.0)]);
    append(&h, "b", ("x", "1"), &[(1, 1.0)]);
    let o = append(&h, "c", ("x", "1"), &[(1, 1.0)]);
    assert_eq!(o.rejected, vec![(RejectReason::SeriesLimit, 1)]);
    assert!(
        o.messages[0].contains(
            "limit of 2 active series reached; new series c{job=\"flink\", x=\"1\"} rejected"
        ),
        "{:?}",
        o.messages
    );
    assert_eq!(append(&h, "a", ("x", "1"), &[(2, 1.0)]).accepted, 1);
}

#[test]
fn restore_and_replay_by_ref() {
    let h = head();
    let labels = Labels::from_pairs([("__name__", "m"), ("a", "1"), ("job", "flink")]);
    let id = h.restore_series(4097, &labels);
    assert_eq!(h.restore_series(id, &labels), id);
    let c = h
        .append_by_ref(
            &[id, id, id, 999],
            &[3000, 1000, 2000, 1],
            &[3.0, 1.0, 2.0, 0.0],
        )
        .unwrap();
    assert_eq!((c.stored, c.unknown_series), (3, 1));
    let got = h.select(&[], 0, i64::MAX).unwrap();
    assert_eq!(got[0].timestamps, vec![1000, 2000, 3000]);
    // A batch append finds the restored series rather than creating a new one.
    let o = append(&h, "m", ("a", "1"), &[(4000, 4.0)]);
    assert_eq!(o.new_series, 0);
}

#[test]
fn any_label_order_finds_the_same_series() {
    let h = head();
    let mut log = AppendLog::default();
    // Names sharing their first eight bytes, in three arrival orders, across consecutive
    // series (the previous series' order is tried first).
    let orders: [[(&str, &str); 4]; 3] = [
        [
            ("__name__", "m"),
            ("task_attempt_id", "x"),
            ("task_attempt_num", "1"),
            ("operator_id", "o"),
        ],
        [
            ("task_attempt_num", "1"),
            ("operator_id", "o"),
            ("__name__", "m"),
            ("task_attempt_id", "x"),
        ],
        [
            ("operator_id", "o"),
            ("task_attempt_id", "x"),
            ("task_attempt_num", "1"),
            ("__name__", "m"),
        ],
    ];
    for (t, labels) in orders.iter().enumerate() {
        let mut b = WriteBatch::new();
        b.add_series(labels.iter().copied(), &[(t as i64 * 1000, 1.0)]);
        // A second series with the same order, then a duplicate name in that order.
        b.add_series(
            labels
                .iter()
                .map(|&(n, v)| (n, if n == "operator_id" { "p" } else { v })),
            &[(t as i64 * 1000, 2.0)],
        );
        b.add_series(
            labels.iter().map(|&(n, v)| {
                (
                    if n == "operator_id" {
                        "task_attempt_id"
                    } else {
                        n
                    },
                    v,
                )
            }),
            &[(t as i64 * 1000, 3.0)],
        );
        log.clear();
        let o = h.append(&mut b, &mut log).unwrap();
        assert_eq!(o.accepted, 2, "{:?}", o.messages);
        assert_eq!(o.rejected, vec![(RejectReason::InvalidLabels, 1)]);
        assert!(o.messages[0].contains("duplicate label name \"task_attempt_id\""));
        assert_eq!(o.new_series, if t == 0 { 2 } else { 0 });
    }
    let got = h.select(&[], 0, i64::MAX).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].timestamps, vec![0, 1000, 2000]);
    assert_eq!(
        got[0].labels.to_string(),
        r#"m{operator_id="o", task_attempt_id="x", task_attempt_num="1"}"#
    );
}

/// Options for comparing a head with chunk files against one without: a day-long
/// out-of-order window reaches back into chunks that are in files.
fn day_window() -> HeadOptions {
    HeadOptions {
        ooo_window_ms: 24 * 3_600_000,
        shards: 4,
        ..Default::default()
    }
}

#[test]
fn full_chunks_move_to_files_and_read_back_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("chunks_head");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("00000000"), b"left by an earlier process").unwrap();
    let on_disk = Head::with_chunk_dir(day_window(), &dir).unwrap();
    assert!(!dir.exists(), "files of an earlier process are deleted");
    let in_memory = Head::new(day_window());
    let specials = [
        f64::NAN,
        stale_nan(),
        -0.0,
        f64::INFINITY,
        1e-300,
        -7.25e300,
    ];
    let samples: Vec<(i64, f64)> = (0..2000)
        .map(|i| {
            (
                i * 15_000 + i % 7,
                if i % 97 == 0 {
                    specials[(i / 97) as usize % 6]
                } else {
                    (i * i) as f64 / 8.0
                },
            )
        })
        .collect();
    for h in [&on_disk, &in_memory] {
        for s in 0..20 {
            for batch in samples.chunks(50) {
                append(h, "m", ("s", &s.to_string()), batch);
            }
        }
    }
    let stats = on_disk.mapped_chunk_stats();
    assert_eq!(stats.files, 1);
    assert!(stats.bytes > 20 * 1000, "{stats:?}");
    assert_eq!(stats.write_failures, 0);
    assert_eq!(in_memory.mapped_chunk_stats(), MappedChunkStats::default());
    // What went to files left the heap.
    let saved = in_memory.memory_bytes() - on_disk.memory_bytes();
    assert!(saved as u64 >= stats.bytes * 9 / 10, "{saved} vs {stats:?}");
    let all = [Matcher::equal("__name__", "m")];
    for (mint, maxt) in [
        (0, i64::MAX),
        (123_456, 7_000_000),
        (29_000_000, 29_990_000),
    ] {
        let a = on_disk.select(&all, mint, maxt).unwrap();
        let b = in_memory.select(&all, mint, maxt).unwrap();
        assert_eq!(a.len(), 20);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.labels, y.labels);
            assert_eq!(x.timestamps, y.timestamps);
            let bits = |v: &[f64]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&x.values), bits(&y.values), "range {mint}..{maxt}");
        }
    }
    // Duplicates and conflicts are still found inside chunks that live in files.
    let o = append(&on_disk, "m", ("s", "3"), &[samples[5]]);
    assert_eq!((o.accepted, o.rejected_total()), (1, 0));
    let o = append(&on_disk, "m", ("s", "3"), &[(samples[5].0, 0.5)]);
    assert_eq!(o.rejected_total(), 1);
    on_disk.truncate_before(15_000_000).unwrap();
    let got = on_disk.select(&all, 0, i64::MAX).unwrap();
    assert_eq!(got[0].timestamps.first(), Some(&samples[1000].0));
    assert_eq!(got[0].timestamps.len(), 1000);
}

#[test]
fn idle_series_give_back_their_buffers_and_keep_their_samples() {
    let h = head();
    let samples: Vec<(i64, f64)> = (0..45).map(|i| (i * 10_000, i as f64)).collect();
    append(&h, "m", ("s", "idle"), &samples);
    append(&h, "m", ("s", "live"), &samples);
    append(&h, "m", ("s", "live"), &[(600_000, 1.0)]);
    let before = h.memory_bytes();
    assert_eq!(h.release_idle_buffers(500_000).unwrap(), 1);
    assert!(
        h.memory_bytes() < before,
        "{} vs {before}",
        h.memory_bytes()
    );
    assert_eq!(
        h.release_idle_buffers(500_000).unwrap(),
        0,
        "nothing left to free"
    );
    let got = h
        .select(&[Matcher::equal("s", "idle")], 0, i64::MAX)
        .unwrap();
    assert_eq!(
        got[0].timestamps,
        samples.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    // The series still knows its newest sample with its buffer gone: the same sample again
    // is a duplicate, another value at that time a conflict, and the out-of-order window
    // still counts back from it (60 s here).
    let o = append(&h, "m", ("s", "idle"), &[(440_000, 44.0)]);
    assert_eq!((o.accepted, o.rejected_total()), (1, 0));
    let o = append(&h, "m", ("s", "idle"), &[(440_000, 1.0)]);
    assert_eq!(o.rejected, vec![(RejectReason::DuplicateTimestamp, 1)]);
    let o = append(&h, "m", ("s", "idle"), &[(370_000, 1.0)]);
    assert_eq!(o.rejected, vec![(RejectReason::OutOfOrder, 1)]);
    // The series takes samples again, in order and out of order.
    append(&h, "m", ("s", "idle"), &[(700_000, 7.0), (650_000, 6.5)]);
    let got = h
        .select(&[Matcher::equal("s", "idle")], 430_000, i64::MAX)
        .unwrap();
    assert_eq!(got[0].timestamps, vec![430_000, 440_000, 650_000, 700_000]);
}

#[test]
fn idle_series_move_their_last_chunk_to_the_chunk_files() {
    let tmp = tempfile::tempdir().unwrap();
    let h = Head::with_chunk_dir(day_window(), &tmp.path().join("chunks_head")).unwrap();
    // 100 samples: one sealed chunk of 64 on the heap (not full) and 36 in the open buffer.
    let samples: Vec<(i64, f64)> = (0..100).map(|i| (i * 10_000, (i * 7) as f64)).collect();
    append(&h, "m", ("s", "idle"), &samples);
    assert_eq!(h.mapped_chunk_stats().bytes, 0, "nothing full yet");
    let before = h.memory_bytes();
    assert_eq!(h.release_idle_buffers(2_000_000).unwrap(), 1);
    let stats = h.mapped_chunk_stats();
    assert!(stats.bytes > 0, "the idle series' chunk went to a file");
    assert!(
        h.memory_bytes() + 64 < before,
        "{} vs {before}",
        h.memory_bytes()
    );
    assert_eq!(h.release_idle_buffers(2_000_000).unwrap(), 0);
    let all = [Matcher::equal("s", "idle")];
    let read = |h: &Head| {
        let got = h.select(&all, 0, i64::MAX).unwrap();
        got[0]
            .timestamps
            .iter()
            .zip(&got[0].values)
            .map(|(&t, &v)| (t, v))
            .collect::<Vec<_>>()
    };
    assert_eq!(read(&h), samples);
    // The series wakes up: its chunk in the file keeps growing (read back and merged) and
    // duplicates of filed samples are still found.
    let more: Vec<(i64, f64)> = (100..200).map(|i| (i * 10_000, (i * 7) as f64)).collect();
    append(&h, "m", ("s", "idle"), &more);
    let o = append(&h, "m", ("s", "idle"), &[(50 * 10_000, 1.5)]);
    assert_eq!(o.rejected_total(), 1);
    let all_samples: Vec<(i64, f64)> = samples.iter().chain(&more).copied().collect();
    assert_eq!(read(&h), all_samples);
    h.truncate_before(150 * 10_000).unwrap();
    assert_eq!(read(&h), all_samples[150..].to_vec());
}

#[test]
fn group_by_shard_orders_shards_and_keeps_arrival_order_inside_each() {
    let shards = 8;
    let mut scratch = AppendScratch::default();
    let fill = |scratch: &mut AppendScratch, n: u32| {
        scratch.pending = (0..n)
            .map(|i| Pending {
                key: u128::from(i) << 64 | u128::from((i * 7 + i / 3) % 5 * 2 % shards),
                index: i,
                pos: i + 1,
                samples: (i, i + 1),
            })
            .collect();
    };
    let order = |v: &[Pending]| {
        v.iter()
            .map(|p| (p.shard(shards as usize), p.index))
            .collect::<Vec<_>>()
    };
    // Twice with the same scratch: what the first batch left behind must not leak into the
    // second.
    for n in [200, 70] {
        fill(&mut scratch, n);
        scratch.group_by_shard(shards as usize);
        let mut want = scratch.pending.clone();
        want.sort_by_key(|p| (p.shard(shards as usize), p.index));
        assert_eq!(order(&scratch.grouped), order(&want));
        assert!(scratch
            .grouped
            .iter()
            .all(|p| p.key >> 64 == u128::from(p.index) && p.samples.0 == p.index));
    }
    scratch.pending.clear();
    scratch.group_by_shard(shards as usize);
    assert!(scratch.grouped.is_empty());
    // Two to a cache line.
    assert_eq!(std::mem::size_of::<Pending>(), 32);
}

#[test]
fn name_prefixes_order_names_like_their_bytes() {
    let names = [
        "",
        "a",
        "ab",
        "abc",
        "abcdefg",
        "abcdefgh",
        "abcdefghi",
        "abcdefgz",
        "b",
        "__name__",
        "host",
        "tm_id",
        "task_name",
        "subtask_index",
        "job",
        "job_id",
        "jo",
        "z\u{e9}",
        "\u{ff}",
    ];
    for a in names {
        let pa = crate::series_key::name_prefix(a);
        let mut first8 = [0u8; 8];
        for (d, s) in first8.iter_mut().zip(a.as_bytes()) {
            *d = *s;
        }
        assert_eq!(pa, u64::from_be_bytes(first8), "{a:?}");
        for b in names {
            let pb = crate::series_key::name_prefix(b);
            if pa != pb {
                assert_eq!(pa.cmp(&pb), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }
}

#[test]
fn label_table_sorts_and_rebuilds_label_sets_like_labels() {
    let sets: Vec<Labels> = [
        vec![("__name__", "m"), ("a", "x")],
        vec![("__name__", "m"), ("ab", "")],
        vec![("__name__", "m"), ("a", "x\u{0}y")],
        vec![("__name__", "m"), ("a", "x"), ("b", "1")],
        vec![("__name__", "m")],
        vec![("__name__", "m\u{e9}"), ("a", "x")],
        vec![("__name__", "l"), ("zz", "top")],
        vec![("__name__", "m"), ("a", "xy")],
    ]
    .into_iter()
    .map(Labels::from_pairs)
    .collect();
    let mut symbols = Symbols::new();
    let mut table = super::LabelTable::default();
    for (id, l) in sets.iter().enumerate() {
        let mut pairs = Vec::new();
        symbols.intern_labels(&mut pairs, l);
        table.push(pairs, id as u32 * 10);
    }
    // A series whose symbols do not resolve has no labels (and is not written).
    table.push([(u32::MAX, 0)], 99);
    // Symbols interned after the series were taken do not disturb the ranks.
    symbols.intern("0");
    symbols.intern("zzz");
    table.rank_symbols(&symbols);
    let got: Vec<(Labels, u32)> = table
        .sorted()
        .into_iter()
        .filter_map(|k| Some((table.labels(k, &symbols)?, table.id(k))))
        .collect();
    let mut want: Vec<(Labels, u32)> = sets
        .iter()
        .cloned()
        .enumerate()
        .map(|(id, l)| (l, id as u32 * 10))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

/// When the chunk files cannot be written (here: a regular file where their directory should
/// be), full chunks stay on the heap: every sample still reads back bit for bit, as from a
/// head whose files work, before and after a cut, and the failures are counted.
#[test]
fn full_chunks_stay_on_the_heap_when_the_chunk_files_cannot_be_written() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = || HeadOptions {
        shards: 4,
        ..Default::default()
    };
    let working = Head::with_chunk_dir(opts(), &tmp.path().join("ok")).unwrap();
    let blocked = tmp.path().join("blocked");
    let failing = Head::with_chunk_dir(opts(), &blocked).unwrap();
    std::fs::write(&blocked, b"not a directory").unwrap();
    let t = |i: i64| 1_795_000_000_000 + i * 15_000 + i % 3;
    for h in [&working, &failing] {
        // One sample per series per batch, as a scrape arrives: enough for four full chunks.
        for i in 0..600i64 {
            let mut b = WriteBatch::new();
            b.add_series(
                [("__name__", "records"), ("job", "flink")],
                &[(t(i), (i * 1_003 + i % 7) as f64)],
            );
            b.add_series(
                [("__name__", "load"), ("job", "flink")],
                &[(t(i), (i as f64 * 0.37).sin())],
            );
            let out = h.append(&mut b, &mut AppendLog::default()).unwrap();
            assert_eq!(out.accepted, 2);
        }
    }
    assert!(working.mapped_chunk_stats().bytes > 0);
    let stats = failing.mapped_chunk_stats();
    assert!(stats.write_failures >= 2, "{stats:?}");
    assert_eq!((stats.files, stats.bytes), (0, 0));
    let read = |h: &Head| {
        h.select(&[Matcher::equal("job", "flink")], i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| {
                let bits: Vec<u64> = s.values.iter().map(|v| v.to_bits()).collect();
                (s.labels, s.timestamps, bits)
            })
            .collect::<Vec<_>>()
    };
    let got = read(&failing);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, ts, _)| ts.len() == 600));
    assert_eq!(got, read(&working));
    for h in [&working, &failing] {
        h.truncate_before(t(250)).unwrap();
    }
    let got = read(&failing);
    assert!(got
        .iter()
        .all(|(_, ts, _)| ts.len() == 350 && ts[0] == t(250)));
    assert_eq!(got, read(&working));
}

#[test]
fn keyed_series_skip_their_labels_once_the_head_holds_them() {
    let h = head();
    let labels = [("job", "flink"), ("a", "1"), ("__name__", "m")];
    let owned: Vec<(Cow<'_, str>, Cow<'_, str>)> = labels
        .iter()
        .map(|&(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v)))
        .collect();
    let key = SeriesKey::of(&owned, &mut KeyScratch::default()).unwrap();
    // Keyed and without labels, before the head holds the series: unresolved, nothing stored.
    let mut b = WriteBatch::new();
    b.add_series([("__name__", "other")], &[(500, 5.0)]);
    b.start_keyed_series(key);
    b.push_sample(1000, 1.0);
    let mut log = AppendLog::default();
    let o = h.append(&mut b, &mut log).unwrap();
    assert_eq!((o.accepted, o.rejected_total()), (1, 0));
    assert_eq!(o.unresolved, vec![1]);
    assert!(h
        .select(&[Matcher::equal("__name__", "m")], 0, i64::MAX)
        .unwrap()
        .is_empty());
    // Keyed with labels: created under that key.
    let mut b = WriteBatch::new();
    b.start_keyed_series(key);
    for &(n, v) in &labels {
        b.push_label(n, v);
    }
    b.push_sample(1000, 1.0);
    let o = h.append(&mut b, &mut AppendLog::default()).unwrap();
    assert_eq!((o.accepted, o.new_series, o.unresolved.len()), (1, 1, 0));
    // Keyed without labels, now held: stored in the same series; plain labels find it too.
    let mut b = WriteBatch::new();
    b.start_keyed_series(key);
    b.push_sample(2000, 2.0);
    let o = h.append(&mut b, &mut AppendLog::default()).unwrap();
    assert_eq!((o.accepted, o.new_series, o.unresolved.len()), (1, 0, 0));
    append(&h, "m", ("a", "1"), &[(3000, 3.0)]);
    let got = h
        .select(&[Matcher::equal("__name__", "m")], 0, i64::MAX)
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].timestamps, vec![1000, 2000, 3000]);
}

#[test]
fn series_keys_ignore_order_and_empty_values_and_refuse_bad_label_sets() {
    let key = |pairs: &[(&str, &str)]| {
        let owned: Vec<(Cow<'_, str>, Cow<'_, str>)> = pairs
            .iter()
            .map(|&(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v)))
            .collect();
        SeriesKey::of(&owned, &mut KeyScratch::default())
    };
    let k = key(&[("__name__", "m"), ("a", "1")]).unwrap();
    assert_eq!(key(&[("a", "1"), ("__name__", "m")]), Ok(k));
    assert_eq!(key(&[("a", "1"), ("b", ""), ("__name__", "m")]), Ok(k));
    assert_ne!(key(&[("a", "2"), ("__name__", "m")]), Ok(k));
    // The same key the WAL replay computes from the canonical labels.
    let labels = Labels::from_pairs([("__name__", "m"), ("a", "1")]);
    let replayed = SeriesKey::from_hash(hash_label_pairs128(labels.pairs()));
    assert_eq!(replayed, k);
    let dup = key(&[("a", "1"), ("a", "2"), ("__name__", "m")]).unwrap_err();
    assert!(dup.contains("duplicate label name \"a\""), "{dup}");
    let empty = key(&[("", "1"), ("__name__", "m")]).unwrap_err();
    assert!(empty.contains("empty label name"), "{empty}");
    assert_eq!(key(&[("a", "")]).unwrap_err(), "series without labels");
}

#[test]
fn outcomes_of_two_appends_add_up() {
    let mut a = AppendOutcome {
        accepted: 3,
        rejected: vec![(RejectReason::TooOld, 2)],
        new_series: 1,
        messages: vec!["first".into()],
        unresolved: vec![4],
    };
    a.absorb(AppendOutcome {
        accepted: 2,
        rejected: vec![(RejectReason::OutOfOrder, 1), (RejectReason::TooOld, 1)],
        new_series: 2,
        messages: vec!["second".into()],
        unresolved: vec![],
    });
    assert_eq!((a.accepted, a.new_series), (5, 3));
    assert_eq!(
        a.rejected,
        vec![(RejectReason::OutOfOrder, 1), (RejectReason::TooOld, 3)]
    );
    assert_eq!(a.messages, vec!["first", "second"]);
    assert_eq!(a.unresolved, vec![4]);
}

#[test]
fn series_whose_values_change_shape_read_back_exactly() {
    // Counters, then arbitrary bits, then decimals, then a constant, then counters again:
    // every chunk after the first starts from an earlier chunk's layouts, which stop fitting.
    let h = head();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let samples: Vec<(i64, f64)> = (0..2_000i64)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = match i / 300 {
                0 | 5 | 6 => (i * 1_003) as f64,
                1 => f64::from_bits(x),
                2 => (x % 100_000) as f64 / 100.0,
                3 => 42.0,
                _ => (x % 1_000) as f64 / 7.0,
            };
            (1_000_000 + i * 15_000 + (x % 9) as i64, v)
        })
        .collect();
    for chunk in samples.chunks(50) {
        let o = append(&h, "m", ("a", "1"), chunk);
        assert_eq!(o.accepted, chunk.len() as u64);
    }
    let got = h
        .select(&[Matcher::equal("__name__", "m")], 0, i64::MAX)
        .unwrap();
    assert_eq!(
        got[0].timestamps,
        samples.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    let want: Vec<u64> = samples.iter().map(|s| s.1.to_bits()).collect();
    let have: Vec<u64> = got[0].values.iter().map(|v| v.to_bits()).collect();
    assert_eq!(have, want);
}

fn key_of(labels: &[(&str, &str)]) -> SeriesKey {
    let owned: Vec<(Cow<'_, str>, Cow<'_, str>)> = labels
        .iter()
        .map(|&(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v)))
        .collect();
    SeriesKey::of(&owned, &mut KeyScratch::default()).unwrap()
}

/// One keyed series without labels, sent with `series_ref`; returns the outcome and the
/// reference the append left in the batch.
fn append_keyed(
    h: &Head,
    key: SeriesKey,
    series_ref: Option<SeriesRef>,
    sample: (i64, f64),
) -> (AppendOutcome, Option<SeriesRef>) {
    let mut b = WriteBatch::new();
    b.start_keyed_series_at(key, series_ref);
    b.push_sample(sample.0, sample.1);
    let o = h.append(&mut b, &mut AppendLog::default()).unwrap();
    (o, b.series[0].series_ref)
}

#[test]
fn series_refs_lead_to_their_series_and_stale_ones_fall_back_to_the_key() {
    // One shard, so that removals move entries that other references point to.
    let h = Head::new(HeadOptions {
        ooo_window_ms: 60_000,
        shards: 1,
        ..Default::default()
    });
    let names = ["a", "b", "c", "d"];
    let keys: Vec<SeriesKey> = names.iter().map(|n| key_of(&[("__name__", n)])).collect();
    // Created with labels: each append hands back where its series is.
    let mut b = WriteBatch::new();
    for (n, &key) in names.iter().zip(&keys) {
        b.start_keyed_series(key);
        b.push_label("__name__", *n);
        // a's only sample is old: a is removed at the truncation below.
        b.push_sample(if *n == "a" { 10 } else { 1000 }, 1.0);
    }
    let o = h.append(&mut b, &mut AppendLog::default()).unwrap();
    assert_eq!((o.accepted, o.new_series), (4, 4));
    let refs: Vec<Option<SeriesRef>> = b.series.iter().map(|s| s.series_ref).collect();
    assert!(refs.iter().all(Option::is_some));
    let distinct: std::collections::HashSet<_> = refs.iter().collect();
    assert_eq!(distinct.len(), 4);
    // A fresh reference: the sample lands in its series and the reference stays.
    let (o, back) = append_keyed(&h, keys[1], refs[1], (2000, 2.0));
    assert_eq!((o.accepted, back), (1, refs[1]));
    // A reference to another series' place is not trusted: the key decides.
    let (o, back) = append_keyed(&h, keys[2], refs[3], (2000, 3.0));
    assert_eq!((o.accepted, back), (1, refs[2]));
    // Truncation removes a (whose only sample is old); the last entry moves into its place.
    let removed = h.truncate_before(500).unwrap();
    assert_eq!(removed.cardinality(), 1);
    // d's old reference now points past the end, and a's place holds d: both go stale.
    let (o, back_d) = append_keyed(&h, keys[3], refs[3], (2000, 4.0));
    assert_eq!(o.accepted, 1);
    assert_eq!(back_d, refs[0], "d moved into a's place");
    // a's reference now points at d's entry: a is not held any more, so it is unresolved
    // and nothing goes into d.
    let (o, back_a) = append_keyed(&h, keys[0], refs[0], (3000, 9.0));
    assert_eq!((o.accepted, o.unresolved.clone()), (0, vec![0]));
    assert_eq!(back_a, refs[0], "left as it was");
    // A reference past every entry.
    let (o, _) = append_keyed(&h, keys[1], SeriesRef::at(1 << 20), (3000, 5.0));
    assert_eq!(o.accepted, 1);
    let read = |name: &str| {
        h.select(&[Matcher::equal("__name__", name)], 0, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| (s.timestamps, s.values))
            .collect::<Vec<_>>()
    };
    assert!(read("a").is_empty());
    assert_eq!(
        read("b"),
        vec![(vec![1000, 2000, 3000], vec![1.0, 2.0, 5.0])]
    );
    assert_eq!(read("c"), vec![(vec![1000, 2000], vec![1.0, 3.0])]);
    assert_eq!(read("d"), vec![(vec![1000, 2000], vec![1.0, 4.0])]);
}

#[test]
fn series_refs_of_another_head_are_checked_like_stale_ones() {
    // After a restart the head's entries are in another order; a reference kept from the
    // earlier head must not put samples into whatever series sits at its place now.
    let keys: Vec<SeriesKey> = (0..50)
        .map(|i| key_of(&[("__name__", "m"), ("i", &i.to_string())]))
        .collect();
    let first = head();
    let mut refs = Vec::new();
    for (i, &key) in keys.iter().enumerate() {
        let mut b = WriteBatch::new();
        b.start_keyed_series(key);
        b.push_label("__name__", "m");
        b.push_label("i", i.to_string());
        b.push_sample(1000, i as f64);
        first.append(&mut b, &mut AppendLog::default()).unwrap();
        refs.push(b.series[0].series_ref);
    }
    let second = head();
    for (i, &key) in keys.iter().enumerate().rev() {
        let mut b = WriteBatch::new();
        b.start_keyed_series(key);
        b.push_label("__name__", "m");
        b.push_label("i", i.to_string());
        b.push_sample(1000, i as f64);
        second.append(&mut b, &mut AppendLog::default()).unwrap();
    }
    let mut b = WriteBatch::new();
    for (i, (&key, &r)) in keys.iter().zip(&refs).enumerate() {
        b.start_keyed_series_at(key, r);
        b.push_sample(2000, i as f64 + 0.5);
    }
    let o = second.append(&mut b, &mut AppendLog::default()).unwrap();
    assert_eq!((o.accepted, o.unresolved.len()), (50, 0));
    for s in second
        .select(&[Matcher::equal("__name__", "m")], 0, i64::MAX)
        .unwrap()
    {
        let i: f64 = s.labels.get("i").unwrap().parse().unwrap();
        assert_eq!(s.values, vec![i, i + 0.5], "{}", s.labels);
    }
}

#[test]
fn chunks_spanning_more_than_49_days_read_and_truncate_exactly() {
    // A sealed chunk keeps its span in 32 bits of milliseconds; one sample a month makes
    // chunks whose span does not fit (a head that is never cut), read conservatively.
    let h = head();
    let month = 30 * 24 * 3_600_000i64;
    let samples: Vec<(i64, f64)> = (0..300).map(|i| (i * month, i as f64)).collect();
    append(&h, "m", ("s", "sparse"), &samples);
    let sel = [Matcher::equal("s", "sparse")];
    let ts = |mint: i64, maxt: i64| -> Vec<i64> {
        h.select(&sel, mint, maxt)
            .unwrap()
            .first()
            .map_or(Vec::new(), |s| s.timestamps.clone())
    };
    assert_eq!(
        ts(0, i64::MAX),
        samples.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    assert_eq!(
        ts(10 * month, 12 * month),
        vec![10 * month, 11 * month, 12 * month]
    );
    assert_eq!(ts(10 * month + 1, 11 * month - 1), Vec::<i64>::new());
    // Duplicates and conflicts are still found inside such chunks.
    let o = append(&h, "m", ("s", "sparse"), &[(299 * month, 299.0)]);
    assert_eq!((o.accepted, o.rejected_total()), (1, 0));
    // Truncation drops whole chunks that end before the point, though their end is unknown.
    h.truncate_before(250 * month).unwrap();
    assert_eq!(
        ts(0, i64::MAX),
        (250..300).map(|i| i * month).collect::<Vec<_>>()
    );
    h.truncate_before(299 * month + 1).unwrap();
    assert!(h
        .select(&sel, 0, i64::MAX)
        .unwrap()
        .iter()
        .all(|s| s.timestamps.is_empty()));
}
