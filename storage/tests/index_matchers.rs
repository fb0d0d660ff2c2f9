//! Matcher semantics, label names/values and removal, run against both postings sources: the
//! head's `MemPostings` and a written-and-reopened block index.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use croaring::Bitmap;
use eddy_storage::block::{Block, BlockId, BlockWriter, ChunkMeta};
use eddy_storage::index::{self, MemPostings};
use eddy_storage::labels::matches_all;
use eddy_storage::{Labels, MatchOp, Matcher};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// The series of the semantics table, in no particular order.
fn table_series() -> Vec<Labels> {
    [
        vec![("__name__", "up"), ("job", "a"), ("inst", "1")],
        vec![("__name__", "up"), ("job", "b"), ("inst", "2")],
        vec![("__name__", "up"), ("job", "ab")],
        vec![("__name__", "down"), ("inst", "1")],
        vec![("__name__", "up"), ("job", "x\ny")],
        vec![("__name__", "up"), ("job", "ba"), ("inst", "10")],
    ]
    .into_iter()
    .map(Labels::from_pairs)
    .collect()
}

/// Both sources over the same series; results are compared as label-set strings.
struct Sources {
    series: Vec<Labels>,
    mem: MemPostings,
    block: Block,
    _dir: tempfile::TempDir,
}

impl Sources {
    fn new(mut series: Vec<Labels>) -> Sources {
        let mut mem = MemPostings::new();
        for (i, l) in series.iter().enumerate() {
            mem.add(i as u32, l);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut sorted = series.clone();
        sorted.sort();
        let mut w = BlockWriter::new(dir.path(), BlockId::new(1, 1), 0, 1000, 1, vec![]).unwrap();
        for l in &sorted {
            w.add_series(
                l,
                &[(
                    ChunkMeta {
                        min_t: 0,
                        max_t: 10,
                        count: 2,
                    },
                    b"xy",
                )],
            )
            .unwrap();
        }
        let block = Block::open(&w.finish().unwrap()).unwrap();
        series.shrink_to_fit();
        Sources {
            series,
            mem,
            block,
            _dir: dir,
        }
    }

    fn head_names(&self, b: &Bitmap) -> Vec<String> {
        let mut v: Vec<String> = b
            .iter()
            .map(|i| self.series[i as usize].to_string())
            .collect();
        v.sort();
        v
    }

    fn block_names(&self, b: &Bitmap) -> Vec<String> {
        // Block ordinals follow label order, so the strings come out in ordinal order.
        let mut v: Vec<String> = b
            .iter()
            .map(|o| self.block.series_labels(o).unwrap().to_string())
            .collect();
        v.sort();
        v
    }

    /// Brute force: every series checked with `Matcher::matches`.
    fn expected(&self, ms: &[Matcher]) -> Vec<String> {
        let mut v: Vec<String> = self
            .series
            .iter()
            .filter(|l| matches_all(l, ms))
            .map(|l| l.to_string())
            .collect();
        v.sort();
        v
    }

    #[track_caller]
    fn check(&self, ms: &[Matcher], want: &[&str]) {
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        let head = self.head_names(&index::select(&self.mem, ms).unwrap());
        let block = self.block_names(&self.block.select(ms).unwrap());
        assert_eq!(head, want, "head, matchers {ms:?}");
        assert_eq!(block, want, "block, matchers {ms:?}");
        assert_eq!(self.expected(ms), want, "brute force, matchers {ms:?}");
    }
}

fn m(name: &str, op: &str, value: &str) -> Matcher {
    let op = match op {
        "=" => MatchOp::Equal,
        "!=" => MatchOp::NotEqual,
        "=~" => MatchOp::RegexMatch,
        "!~" => MatchOp::RegexNoMatch,
        _ => unreachable!(),
    };
    Matcher::new(op, name, value).unwrap()
}

const UP_A: &str = r#"up{inst="1", job="a"}"#;
const UP_B: &str = r#"up{inst="2", job="b"}"#;
const UP_AB: &str = r#"up{job="ab"}"#;
const DOWN: &str = r#"down{inst="1"}"#;
const UP_NL: &str = r#"up{job="x\ny"}"#;
const UP_BA: &str = r#"up{inst="10", job="ba"}"#;

#[test]
fn matcher_semantics_table() {
    let s = Sources::new(table_series());
    let all = [UP_A, UP_B, UP_AB, DOWN, UP_NL, UP_BA];
    let f = |ms: &[Matcher], want: &[&str]| s.check(ms, want);
    // Equality and inequality; `!=` keeps series without the label.
    f(&[m("job", "=", "a")], &[UP_A]);
    f(&[m("job", "=", "zzz")], &[]);
    f(&[m("job", "!=", "a")], &[UP_B, UP_AB, DOWN, UP_NL, UP_BA]);
    f(&[m("nolabel", "!=", "a")], &all);
    // Empty value: `=""` selects series without the label; `!=""` those with it.
    f(&[m("job", "=", "")], &[DOWN]);
    f(&[m("job", "!=", "")], &[UP_A, UP_B, UP_AB, UP_NL, UP_BA]);
    f(&[m("nolabel", "=", "")], &all);
    // Regexes are anchored at both ends.
    f(&[m("job", "=~", "a")], &[UP_A]);
    f(&[m("job", "=~", "a.*")], &[UP_A, UP_AB]);
    f(&[m("job", "=~", ".*a")], &[UP_A, UP_BA]);
    f(&[m("job", "=~", "b.+")], &[UP_BA]);
    f(&[m("job", "=~", "a|b")], &[UP_A, UP_B]);
    f(&[m("job", "=~", "(?i)A|B")], &[UP_A, UP_B]);
    f(&[m("job", "=~", "[ab]{2}")], &[UP_AB, UP_BA]);
    // Dot matches newline (Prometheus compiles with (?s)).
    f(&[m("job", "=~", "x.y")], &[UP_NL]);
    // Empty-matching regexes also select series without the label.
    f(&[m("job", "=~", "a|")], &[UP_A, DOWN]);
    f(&[m("job", "=~", "")], &[DOWN]);
    f(&[m("job", "=~", ".*")], &all);
    f(&[m("job", "=~", ".+")], &[UP_A, UP_B, UP_AB, UP_NL, UP_BA]);
    f(&[m("job", "!~", "a.*")], &[UP_B, DOWN, UP_NL, UP_BA]);
    f(&[m("job", "!~", ".*")], &[]);
    f(&[m("job", "!~", ".+")], &[DOWN]);
    f(&[m("job", "!~", "a|")], &[UP_B, UP_AB, UP_NL, UP_BA]);
    f(&[m("job", "!~", "")], &[UP_A, UP_B, UP_AB, UP_NL, UP_BA]);
    // Combinations.
    f(
        &[m("__name__", "=", "up"), m("inst", "=~", "1.*")],
        &[UP_A, UP_BA],
    );
    f(
        &[m("__name__", "=", "up"), m("inst", "=", "")],
        &[UP_AB, UP_NL],
    );
    f(&[m("__name__", "!=", "up"), m("job", "!=", "a")], &[DOWN]);
    f(
        &[m("inst", "!=", "1"), m("job", "!~", "b|ba")],
        &[UP_AB, UP_NL],
    );
    f(&[m("job", "=", "a"), m("job", "=", "b")], &[]);
    f(&[], &all);
}

#[test]
fn label_names_and_values_with_filters() {
    let s = Sources::new(table_series());
    let b_up = s.block.select(&[m("__name__", "=", "up")]).unwrap();
    let h_up = index::select(&s.mem, &[m("__name__", "=", "up")]).unwrap();
    let b_down = s.block.select(&[m("__name__", "=", "down")]).unwrap();
    let h_down = index::select(&s.mem, &[m("__name__", "=", "down")]).unwrap();
    let strs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (names, values_job, values_inst_down) in [
        (
            index::label_names(&s.mem, None).unwrap(),
            index::label_values(&s.mem, "job", Some(&h_up)).unwrap(),
            index::label_values(&s.mem, "inst", Some(&h_down)).unwrap(),
        ),
        (
            s.block.label_names(None).unwrap(),
            s.block.label_values("job", Some(&b_up)).unwrap(),
            s.block.label_values("inst", Some(&b_down)).unwrap(),
        ),
    ] {
        assert_eq!(names, strs(&["__name__", "inst", "job"]));
        assert_eq!(values_job, strs(&["a", "ab", "b", "ba", "x\ny"]));
        assert_eq!(values_inst_down, strs(&["1"]));
    }
    assert_eq!(
        index::label_names(&s.mem, Some(&h_down)).unwrap(),
        strs(&["__name__", "inst"])
    );
    assert_eq!(
        s.block.label_names(Some(&b_down)).unwrap(),
        strs(&["__name__", "inst"])
    );
    assert_eq!(
        s.block.label_values("inst", None).unwrap(),
        strs(&["1", "10", "2"])
    );
    assert_eq!(
        index::label_values(&s.mem, "inst", None).unwrap(),
        strs(&["1", "10", "2"])
    );
    assert_eq!(
        s.block.label_values("nope", None).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        s.block.label_names(Some(&Bitmap::new())).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        index::label_values(&s.mem, "job", Some(&Bitmap::new())).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn remove_drops_series_and_empty_pairs() {
    let series = table_series();
    let mut mem = MemPostings::new();
    mem.add_batch(series.iter().enumerate().map(|(i, l)| (i as u32, l)));
    assert_eq!(mem.num_series(), 6);
    // Remove `down{inst="1"}` (3) and `up{job="ab"}` (2).
    mem.remove(&Bitmap::of(&[2, 3]));
    assert_eq!(mem.num_series(), 4);
    assert_eq!(
        index::select(&mem, &[m("job", "=", "")]).unwrap().to_vec(),
        Vec::<u32>::new()
    );
    assert_eq!(
        index::select(&mem, &[m("__name__", "=", "down")])
            .unwrap()
            .to_vec(),
        Vec::<u32>::new()
    );
    assert_eq!(
        index::select(&mem, &[m("inst", "=", "1")])
            .unwrap()
            .to_vec(),
        vec![0]
    );
    assert_eq!(
        index::label_values(&mem, "__name__", None).unwrap(),
        vec!["up".to_string()]
    );
    assert_eq!(
        index::label_values(&mem, "job", None).unwrap(),
        ["a", "b", "ba", "x\ny"].map(String::from).to_vec()
    );
    assert_eq!(index::select(&mem, &[]).unwrap().to_vec(), vec![0, 1, 4, 5]);
    // The inherent shorthands agree with the generic functions.
    assert_eq!(mem.select(&[m("inst", "!=", "2")]).to_vec(), vec![0, 4, 5]);
    assert_eq!(
        mem.label_names(Some(&Bitmap::of(&[4]))),
        ["__name__", "job"]
    );
    assert_eq!(
        mem.label_values("inst", Some(&Bitmap::of(&[0, 1]))),
        ["1", "2"]
    );
    // Ids can be reused after removal.
    mem.add(2, &Labels::from_pairs([("__name__", "new")]));
    assert_eq!(
        index::select(&mem, &[m("__name__", "=~", "n.*")])
            .unwrap()
            .to_vec(),
        vec![2]
    );
    mem.remove(&Bitmap::from_range(0..10));
    assert_eq!(mem.num_pairs(), 0);
    assert_eq!(
        index::label_names(&mem, None).unwrap(),
        Vec::<String>::new()
    );
}

const ALPHABET: [&str; 6] = ["a", "b", "ab", "ba", "abc", "c"];

fn random_series(rng: &mut SmallRng, n: usize) -> Vec<Labels> {
    let mut out: Vec<Labels> = (0..n)
        .map(|i| {
            let mut pairs = vec![("id".to_string(), i.to_string())];
            for name in ["x", "y", "z"] {
                if rng.gen_bool(0.7) {
                    pairs.push((
                        name.to_string(),
                        ALPHABET[rng.gen_range(0..ALPHABET.len())].to_string(),
                    ));
                }
            }
            Labels::from_pairs(pairs)
        })
        .collect();
    out.dedup();
    out
}

/// Regexes that hit each fast path (literal, alternation, prefix, classes) and the scan path.
fn random_regex(rng: &mut SmallRng) -> String {
    let atom = |rng: &mut SmallRng| -> String {
        match rng.gen_range(0..8) {
            0 => ALPHABET[rng.gen_range(0..ALPHABET.len())].to_string(),
            1 => ".*".into(),
            2 => ".+".into(),
            3 => "[ab]".into(),
            4 => "(a|bc?)".into(),
            5 => String::new(),
            6 => "b*".into(),
            _ => ".".into(),
        }
    };
    let parts = rng.gen_range(1..=3);
    let mut alts = Vec::new();
    for _ in 0..rng.gen_range(1..=3) {
        alts.push((0..parts).map(|_| atom(rng)).collect::<String>());
    }
    alts.join("|")
}

#[test]
fn random_matchers_agree_with_brute_force() {
    let mut rng = SmallRng::seed_from_u64(7);
    let s = Sources::new(random_series(&mut rng, 300));
    for _ in 0..400 {
        let n = rng.gen_range(1..=3);
        let ms: Vec<Matcher> = (0..n)
            .map(|_| {
                let name = ["x", "y", "z", "w"][rng.gen_range(0..4)];
                match rng.gen_range(0..4) {
                    0 => m(name, "=", ALPHABET[rng.gen_range(0..ALPHABET.len())]),
                    1 => m(name, "!=", ["a", "", "zz"][rng.gen_range(0..3)]),
                    2 => m(name, "=~", &random_regex(&mut rng)),
                    _ => m(name, "!~", &random_regex(&mut rng)),
                }
            })
            .collect();
        let want = s.expected(&ms);
        assert_eq!(
            s.head_names(&index::select(&s.mem, &ms).unwrap()),
            want,
            "head {ms:?}"
        );
        assert_eq!(
            s.block_names(&s.block.select(&ms).unwrap()),
            want,
            "block {ms:?}"
        );
    }
}

#[test]
fn block_select_returns_ordinals_in_label_order() {
    let mut rng = SmallRng::seed_from_u64(3);
    let s = Sources::new(random_series(&mut rng, 200));
    let sel = s.block.select(&[m("x", "=~", "a.*")]).unwrap();
    let labels: Vec<Labels> = sel
        .iter()
        .map(|o| s.block.series_labels(o).unwrap())
        .collect();
    assert!(labels.len() > 10);
    assert!(labels.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn fast_path_plans_agree_with_the_regex() {
    let mut rng = SmallRng::seed_from_u64(11);
    let mut values: Vec<String> = vec![String::new(), "\n".into(), "a\nb".into()];
    for _ in 0..300 {
        let len = rng.gen_range(0..5);
        values.push(
            (0..len)
                .map(|_| ["a", "b", "c", "A", "."][rng.gen_range(0..5)])
                .collect(),
        );
    }
    let mut fast = 0;
    for _ in 0..500 {
        let re = random_regex(&mut rng);
        let plan = index::analyze_regex(&re);
        let matcher = m("x", "=~", &re);
        if let index::ValuePlan::Scan { prefix } = &plan {
            // The scan only visits values with the prefix: no match may lack it.
            for v in values.iter().filter(|v| matcher.matches(v)) {
                assert!(
                    v.starts_with(prefix.as_str()),
                    "regex {re:?} prefix {prefix:?} value {v:?}"
                );
            }
            continue;
        }
        fast += 1;
        for v in &values {
            assert_eq!(
                plan.contains(v, None),
                matcher.matches(v),
                "regex {re:?} plan {plan:?} value {v:?}"
            );
        }
    }
    assert!(fast > 50, "only {fast} regexes took a fast path");
}
