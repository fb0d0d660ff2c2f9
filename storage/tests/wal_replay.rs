//! WAL replay: round trips across segments and checkpoints, torn and corrupt tails, corruption in
//! the middle of the log, and start-up after repair.

#![allow(clippy::unwrap_used)] // Test helpers outside #[test] fns may unwrap too.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eddy_storage::wal::{self, ReplayReport, SyncPolicy, Wal, WalOptions};
use eddy_storage::Error;

/// Frame header bytes (length + CRC32C) in front of every record.
const FRAME: u64 = 8;
/// File header bytes at the start of every segment.
const HEADER: u64 = 8;

fn opts(segment_size: u64) -> WalOptions {
    WalOptions {
        segment_size,
        sync: SyncPolicy::Always,
    }
}

fn rec(i: usize) -> Vec<u8> {
    // Varying lengths, including empty records.
    if i % 9 == 4 {
        return Vec::new();
    }
    let mut v = format!("record-{i:04}-").into_bytes();
    v.resize(v.len() + (i * 5) % 23, b'x');
    v
}

fn replay_all(dir: &Path) -> (Vec<Vec<u8>>, ReplayReport) {
    let mut out = Vec::new();
    let report = wal::replay(dir, &mut |r| {
        out.push(r.to_vec());
        Ok(())
    })
    .unwrap();
    (out, report)
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Writes `n` records with one record per segment after the first few.
fn write_log(dir: &Path, n: usize, segment_size: u64) -> Vec<Vec<u8>> {
    let w = Wal::open(dir, opts(segment_size)).unwrap();
    let recs: Vec<Vec<u8>> = (0..n).map(rec).collect();
    for r in &recs {
        w.append(r).unwrap();
    }
    w.close().unwrap();
    recs
}

#[test]
fn empty_and_missing_dirs_replay_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (got, report) = replay_all(&dir.path().join("absent"));
    assert!(got.is_empty());
    assert_eq!(report, ReplayReport::default());
    Wal::open(dir.path(), opts(1 << 20))
        .unwrap()
        .close()
        .unwrap();
    let (got, report) = replay_all(dir.path());
    assert!(got.is_empty());
    assert_eq!(
        (report.segments, report.last_segment, report.truncated),
        (1, Some(0), None)
    );
}

#[test]
fn replay_across_segments_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let mut want = write_log(dir.path(), 50, 64);
    assert!(
        segment_files(dir.path()).len() > 10,
        "small segments should rotate often"
    );
    // Reopening starts a new segment; records keep their order across opens and policies.
    for (round, sync) in [
        SyncPolicy::Never,
        SyncPolicy::Interval(Duration::from_millis(5)),
    ]
    .into_iter()
    .enumerate()
    {
        let w = Wal::open(
            dir.path(),
            WalOptions {
                segment_size: 200,
                sync,
            },
        )
        .unwrap();
        for i in 0..20 {
            let r = format!("round{round}-{i}").into_bytes();
            w.append(&r).unwrap();
            want.push(r);
        }
        w.close().unwrap();
    }
    let (got, report) = replay_all(dir.path());
    assert_eq!(got, want);
    assert_eq!(report.records, want.len() as u64);
    assert_eq!(report.segments, segment_files(dir.path()).len() as u64);
    assert_eq!(report.truncated, None);
    assert_eq!(report.checkpoint, None);
}

#[test]
fn large_records_and_append_all() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), opts(1024)).unwrap();
    let big = vec![0xabu8; 5000];
    w.append(&big).unwrap();
    w.append_all(&[b"series", b"samples"]).unwrap();
    w.append_all(&[]).unwrap();
    let too_big = vec![0u8; wal::MAX_RECORD_LEN + 1];
    let e = w.append(&too_big).unwrap_err();
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    w.close().unwrap();
    assert!(matches!(w.append(b"late"), Err(Error::Closed(_))));
    let (got, _) = replay_all(dir.path());
    assert_eq!(got, vec![big, b"series".to_vec(), b"samples".to_vec()]);
}

#[test]
fn torn_tail_at_every_offset_is_truncated_and_log_continues() {
    let orig = tempfile::tempdir().unwrap();
    let recs = write_log(orig.path(), 12, 100);
    let last_seg = segment_files(orig.path()).pop().unwrap();
    let name = last_seg.file_name().unwrap().to_owned();
    let full = fs::read(&last_seg).unwrap();
    let last = recs.last().unwrap();
    let frame_start = full.len() as u64 - FRAME - last.len() as u64;
    assert!(frame_start >= HEADER);
    for cut in frame_start..full.len() as u64 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(orig.path(), dir.path());
        let seg = dir.path().join(&name);
        fs::write(&seg, &full[..cut as usize]).unwrap();

        let (got, report) = replay_all(dir.path());
        assert_eq!(got, recs[..recs.len() - 1], "cut at {cut}");
        if cut == frame_start {
            assert_eq!(
                report.truncated, None,
                "a cut on a frame boundary is a clean end"
            );
        } else {
            assert_eq!(
                report.truncated,
                Some((seg.clone(), frame_start)),
                "cut at {cut}"
            );
            assert_eq!(report.truncated_bytes, cut - frame_start);
        }
        assert_eq!(fs::metadata(&seg).unwrap().len(), frame_start);

        let w = Wal::open(dir.path(), opts(100)).unwrap();
        w.append(b"after restart").unwrap();
        w.close().unwrap();
        let (got, report) = replay_all(dir.path());
        assert_eq!(got.len(), recs.len());
        assert_eq!(got[..recs.len() - 1], recs[..recs.len() - 1]);
        assert_eq!(got.last().unwrap(), b"after restart");
        assert_eq!(report.truncated, None);
    }
}

#[test]
fn flipped_bit_anywhere_in_the_tail_record_is_truncated() {
    let orig = tempfile::tempdir().unwrap();
    let recs = write_log(orig.path(), 6, 1 << 20);
    let seg = segment_files(orig.path()).pop().unwrap();
    let full = fs::read(&seg).unwrap();
    let frame_start = full.len() - FRAME as usize - recs[5].len();
    for byte in frame_start..full.len() {
        for bit in 0..8 {
            let mut bad = full.clone();
            bad[byte] ^= 1 << bit;
            fs::write(&seg, &bad).unwrap();
            let (got, report) = replay_all(orig.path());
            assert_eq!(got, recs[..5], "bit {bit} of byte {byte}");
            assert_eq!(report.truncated, Some((seg.clone(), frame_start as u64)));
            assert_eq!(fs::metadata(&seg).unwrap().len(), frame_start as u64);
        }
    }
}

#[test]
fn open_without_replay_repairs_the_last_segment() {
    let dir = tempfile::tempdir().unwrap();
    let recs = write_log(dir.path(), 4, 1 << 20);
    let seg = segment_files(dir.path()).pop().unwrap();
    let full = fs::read(&seg).unwrap();
    fs::write(&seg, &full[..full.len() - 2]).unwrap();
    let w = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(w.current_segment(), 1);
    w.append(b"new").unwrap();
    w.close().unwrap();
    // Segment 0 is in the middle now; without the repair at open it would be corruption.
    let (got, report) = replay_all(dir.path());
    assert_eq!(got, [&recs[..3], &[b"new".to_vec()]].concat());
    assert_eq!(report.truncated, None);
}

#[test]
fn zeroed_header_of_a_new_last_segment_is_a_torn_write() {
    let dir = tempfile::tempdir().unwrap();
    let recs = write_log(dir.path(), 4, 1 << 20);
    // Power failed after the new segment's size reached disk but before its header did.
    let torn = dir.path().join("00000001");
    fs::write(&torn, [0u8; 8]).unwrap();
    let (got, report) = replay_all(dir.path());
    assert_eq!(got, recs);
    assert_eq!(report.truncated, Some((torn.clone(), 0)));
    assert_eq!(fs::metadata(&torn).unwrap().len(), 0);
    // An empty segment is valid anywhere, also once later segments follow it.
    let w = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(w.current_segment(), 2);
    w.append(b"new").unwrap();
    w.close().unwrap();
    let (got, report) = replay_all(dir.path());
    assert_eq!(got, [&recs[..], &[b"new".to_vec()]].concat());
    assert_eq!((report.segments, report.truncated), (3, None));
    // A header of another format is never truncated away.
    fs::write(dir.path().join("00000003"), b"EWAL\x09\0\0\0").unwrap();
    let err = wal::replay(dir.path(), &mut |_| Ok(())).unwrap_err();
    assert!(err.to_string().contains("bad file header"), "{err}");
    assert_eq!(fs::metadata(dir.path().join("00000003")).unwrap().len(), 8);
}

#[test]
fn corruption_in_a_middle_segment_names_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, 40);
    let segs = segment_files(dir.path());
    assert!(segs.len() >= 4);
    let victim = &segs[1];
    let mut bytes = fs::read(victim).unwrap();
    let len = bytes.len();
    assert!(len > (HEADER + FRAME) as usize);
    bytes[len - 1] ^= 0x10;
    fs::write(victim, &bytes).unwrap();
    let err = wal::replay(dir.path(), &mut |_| Ok(())).unwrap_err();
    match &err {
        Error::Corruption {
            path,
            offset,
            reason,
        } => {
            assert_eq!(path, victim);
            assert_eq!(*offset, HEADER, "the first frame of the segment is damaged");
            assert!(reason.starts_with("checksum mismatch"), "{reason}");
        }
        other => panic!("want corruption, got {other:?}"),
    }
    assert!(err.to_string().contains(victim.to_str().unwrap()), "{err}");
    // Nothing was truncated: the damage is left for a human.
    assert_eq!(fs::read(victim).unwrap(), bytes);
}

#[test]
fn missing_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 10, 40);
    let segs = segment_files(dir.path());
    fs::remove_file(&segs[2]).unwrap();
    let err = wal::replay(dir.path(), &mut |_| Ok(())).unwrap_err();
    assert!(
        matches!(&err, Error::Corruption { path, .. } if path == &segs[2]),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("missing WAL segment 2: the next one is 3"),
        "{err}"
    );
}

#[test]
fn callback_errors_stop_replay_and_decode_errors_get_a_location() {
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    let mut good = Vec::new();
    wal::encode_samples(&mut good, &[1], &[1000], &[2.5]);
    w.append(&good).unwrap();
    w.append(&[wal::record::RECORD_SAMPLES, 5]).unwrap();
    w.close().unwrap();
    let mut decoded = 0;
    let mut samples = wal::SamplesRecord::default();
    let err = wal::replay(dir.path(), &mut |r| {
        samples.decode(r)?;
        decoded += 1;
        Ok(())
    })
    .unwrap_err();
    assert_eq!(decoded, 1);
    let second_frame = HEADER + FRAME + good.len() as u64;
    match err {
        Error::Corruption {
            path,
            offset,
            reason,
        } => {
            assert_eq!(path, dir.path().join("00000000"));
            // Byte 2 of the second record: where its sample count promised more than it holds.
            assert_eq!(offset, second_frame + FRAME + 2);
            assert_eq!(
                reason,
                "decode WAL record: sample count exceeds record length"
            );
        }
        other => panic!("want corruption, got {other:?}"),
    }
}

#[test]
fn head_records_round_trip_through_the_log() {
    use eddy_storage::wal::{DecodedRecord, RecordType};
    use eddy_storage::Labels;
    let dir = tempfile::tempdir().unwrap();
    let w = Wal::open(dir.path(), opts(1 << 20)).unwrap();
    let l1 = Labels::from_pairs([
        ("__name__", "flink_taskmanager_Status_JVM_CPU_Load"),
        ("tm_id", "tm-1"),
    ]);
    let mut series = Vec::new();
    wal::encode_series(&mut series, &[(1, &l1)]);
    let mut samples = Vec::new();
    wal::encode_samples(
        &mut samples,
        &[1, 1],
        &[1000, 2000],
        &[0.25, f64::from_bits(0x7ff0_0000_0000_0002)],
    );
    w.append_all(&[&series, &samples]).unwrap();
    w.close().unwrap();
    let mut kinds = Vec::new();
    wal::replay(dir.path(), &mut |r| {
        kinds.push(wal::record::record_type(r)?);
        match wal::decode_record(r)? {
            DecodedRecord::Series(s) => assert_eq!(s[0].to_labels(), l1),
            DecodedRecord::Samples(s) => {
                assert_eq!(s.ts, [1000, 2000]);
                assert_eq!(s.vals[1].to_bits(), 0x7ff0_0000_0000_0002);
            }
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(kinds, [RecordType::Series, RecordType::Samples]);
}

#[test]
fn absurd_segment_numbers_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(u64::MAX.to_string()), b"").unwrap();
    let (got, report) = replay_all(dir.path());
    assert!(got.is_empty());
    assert_eq!(report.last_segment, Some(u64::MAX));
    let err = Wal::open(dir.path(), opts(1 << 20)).unwrap_err();
    assert!(
        err.to_string().contains("no room for a next segment"),
        "{err}"
    );
}
