//! Pins the exact encoded bytes of small columns and chunks (the layouts in
//! docs/format/chunk.md), and checks that encoders append after existing bytes.

use eddy_storage::chunk::{
    chunk_header, decode_chunk, decode_split_chunk, decode_split_values, decode_timestamps,
    decode_values, encode_chunk, encode_timestamps, encode_values, split_chunk, timestamps_header,
    ChunkHeader,
};

const PREFIX: &[u8] = b"prefix";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[track_caller]
fn check_ts(src: &[i64], want_hex: &str) {
    let mut dst = PREFIX.to_vec();
    encode_timestamps(&mut dst, src);
    assert_eq!(&dst[..PREFIX.len()], PREFIX);
    assert_eq!(hex(&dst[PREFIX.len()..]), want_hex);
    let mut out = vec![-7];
    assert_eq!(
        decode_timestamps(&dst[PREFIX.len()..], &mut out).expect("decode"),
        dst.len() - PREFIX.len()
    );
    assert_eq!(out[0], -7, "decode must append");
    assert_eq!(&out[1..], src);
}

#[track_caller]
fn check_vals(src: &[f64], want_hex: &str) {
    let mut dst = PREFIX.to_vec();
    encode_values(&mut dst, src);
    assert_eq!(&dst[..PREFIX.len()], PREFIX);
    assert_eq!(hex(&dst[PREFIX.len()..]), want_hex);
    let mut out = vec![-7.0];
    assert_eq!(
        decode_values(&dst[PREFIX.len()..], src.len(), &mut out).expect("decode"),
        dst.len() - PREFIX.len()
    );
    let bits: Vec<u64> = out[1..].iter().map(|v| v.to_bits()).collect();
    let want: Vec<u64> = src.iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits, want);
}

#[test]
fn timestamp_columns() {
    // count 0.
    check_ts(&[], "00");
    // count 1, first = zigzag(1000) = 2000 → d0 0f.
    check_ts(&[1000], "01d00f");
    // count 2: first, then span 10.
    check_ts(&[1000, 1010], "02d00f0a");
    // Negative first: zigzag(-1) = 1.
    check_ts(&[-1, 9, 19, 29], "04011e00");
    // Constant delta: count 4, first 0, span 30, mode 0 (no payload).
    check_ts(&[0, 10, 20, 30], "04001e00");
    // Jitter: grid step 40/4 = 10, residuals [0, 1, 0, 0] in 1 bit each: mode 3,
    // stream width 1, base 0, packed 0b0010.
    check_ts(&[100, 110, 121, 130, 140], "05c8012803010002");
}

#[test]
fn value_columns() {
    check_vals(&[], "");
    // Constant: mode 0, then the bits of 1.5 (0x3ff8…) little-endian.
    check_vals(&[1.5, 1.5, 1.5], "00000000000000f83f");
    // Decimal scale 0, deltas [1, 1, 1, 2]: mode 0x11 (decimal, delta), scale 0, first
    // zigzag(1) = 2, stream width 1 base zigzag(1) = 2, packed [0, 0, 0, 1] = 0x08.
    check_vals(&[1.0, 2.0, 3.0, 4.0, 6.0], "110002010208");
    // Decimal scale 2: integers [10, 25, 40], deltas [15, 15]: width 0, base zigzag(15) = 0x1e.
    check_vals(&[0.1, 0.25, 0.4], "110214001e");
}

#[test]
fn meter_rates_divide_by_sixty() {
    // Flink's MeterView reports `(double) count / 60`; 50407 / 60 = 840.1166666666667.
    // m / 60 = 5m / 300, so the divisor 3·10^2 (scale byte 1 << 5 | 2 = 0x22) gives the
    // integers [252035, 252040, 252045]: first zigzag(252035) = 86e21e, deltas all 5.
    let src: Vec<f64> = [50407.0, 50408.0, 50409.0]
        .iter()
        .map(|c| c / 60.0)
        .collect();
    assert_eq!(src[0], 840.116_666_666_666_7);
    check_vals(&src, "112286e21e000a");
}

#[test]
fn ratios_store_their_divisor() {
    // A buffer pool's usage, used / 7: no short decimal, so the divisor is the ratio's
    // denominator. Mode 0x11 (decimal, deltas), ratio scale byte e0 and divisor 07, first
    // integer zigzag(3) = 06, then the deltas [2, 1, 1]: width 1, base zigzag(1) = 02,
    // packed [1, 0, 0] = 01.
    let src: Vec<f64> = [3.0, 5.0, 6.0, 7.0].iter().map(|m| m / 7.0).collect();
    check_vals(&src, "11e00706010201");
    // The same fill levels as Java floats widened to double (`(float) used / total`, Flink's
    // buffer pool gauges): the single-precision ratio scale byte c0, otherwise the same bytes.
    let src: Vec<f64> = [3.0f32, 5.0, 6.0, 7.0]
        .iter()
        .map(|m| f64::from(m / 7.0))
        .collect();
    check_vals(&src, "11c00706010201");
    // A larger divisor takes a longer uvarint: 1,000,003 = c3 84 3d. Mode 0x10 (raw
    // integers) [1, 2, 3]: width 2, base zigzag(1) = 02, packed [0, 1, 2] = 0b10_01_00 = 24.
    let src = [1.0 / 1_000_003.0, 2.0 / 1_000_003.0, 3.0 / 1_000_003.0];
    check_vals(&src, "10e0c3843d020224");
}

#[test]
fn whole_chunk() {
    let mut dst = PREFIX.to_vec();
    encode_chunk(&mut dst, &[1000, 2000, 3000], &[5.0, 5.0, 5.0]);
    assert_eq!(&dst[..PREFIX.len()], PREFIX);
    let chunk = &dst[PREFIX.len()..];
    // version 1 │ count 3, first d00f, span d00f, const mode 00 │ const 00 + bits of 5.0.
    assert_eq!(hex(chunk), concat!("0103d00fd00f00", "000000000000001440"));
    assert_eq!(
        chunk_header(chunk).unwrap(),
        ChunkHeader {
            count: 3,
            min_t: 1000,
            max_t: 3000
        }
    );
    let (mut ts, mut vals) = (vec![1], vec![1.0]);
    assert_eq!(decode_chunk(chunk, &mut ts, &mut vals).unwrap(), 3);
    assert_eq!(ts, [1, 1000, 2000, 3000]);
    assert_eq!(vals, [1.0, 5.0, 5.0, 5.0]);
    // Bytes after the chunk (the next chunk in a block) are ignored.
    let mut padded = chunk.to_vec();
    padded.extend_from_slice(b"next chunk");
    let (mut ts, mut vals) = (Vec::new(), Vec::new());
    assert_eq!(
        decode_chunk(&padded, &mut ts, &mut vals).expect("decode"),
        3
    );
    assert_eq!(ts, [1000, 2000, 3000]);
}

#[test]
fn split_chunk_cuts_at_the_column_boundaries() {
    // 4 timestamps with jitter (GRID mode, an int stream) so the column has a payload.
    let ts = [1000, 2003, 2998, 4000];
    let vals = [1.0, 2.0, 3.0, 4.0];
    let mut chunk = Vec::new();
    encode_chunk(&mut chunk, &ts, &vals);
    let mut col = Vec::new();
    encode_timestamps(&mut col, &ts);
    let mut v = Vec::new();
    encode_values(&mut v, &vals);
    let cols = split_chunk(&chunk).unwrap();
    assert_eq!(cols.version, [1]);
    assert_eq!(cols.timestamps, &col[..]);
    assert_eq!(cols.values, &v[..]);
    let h = ChunkHeader {
        count: 4,
        min_t: 1000,
        max_t: 4000,
    };
    assert_eq!(cols.header, h);
    assert_eq!(timestamps_header(&col).unwrap(), (h, col.len()));

    // The columns decode apart; buffers are appended to.
    let rest = [&[1u8][..], &v].concat();
    let (mut t2, mut v2) = (vec![7], vec![7.0]);
    assert_eq!(
        decode_split_chunk(&col, &rest, &mut t2, &mut v2).unwrap(),
        4
    );
    assert_eq!((&t2[1..], &v2[1..]), (&ts[..], &vals[..]));
    let mut v3 = Vec::new();
    assert_eq!(decode_split_values(&rest, 4, &mut v3).unwrap(), v.len());
    assert_eq!(v3, vals);

    // Truncated columns and bad versions are errors that leave the buffers alone.
    assert!(split_chunk(&chunk[..col.len()]).is_err());
    assert!(split_chunk(&[2, 1, 2]).is_err());
    assert!(split_chunk(&[]).is_err());
    assert!(timestamps_header(&col[..col.len() - 1]).is_err());
    let (mut t4, mut v4) = (vec![7], vec![7.0]);
    assert!(decode_split_chunk(&col, &rest[..rest.len() - 1], &mut t4, &mut v4).is_err());
    assert!(decode_split_chunk(&col, &[9, 0], &mut t4, &mut v4).is_err());
    assert!(decode_split_chunk(&col[..2], &rest, &mut t4, &mut v4).is_err());
    assert_eq!((t4, v4), (vec![7], vec![7.0]));
}

#[test]
fn stale_marker_is_a_patch_in_a_decimal_column() {
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let mut src: Vec<f64> = (0..32).map(|i| f64::from(i * 3)).collect();
    src[31] = stale;
    let mut dst = Vec::new();
    encode_values(&mut dst, &src);
    // mode 0x19 = decimal | patches | delta; scale 0; one patch at index 31 with raw bits.
    assert_eq!(hex(&dst[..3]), "190001");
    assert_eq!(dst[3], 31);
    assert_eq!(hex(&dst[4..12]), "020000000000f07f");
    let mut out = Vec::new();
    decode_values(&dst, 32, &mut out).unwrap();
    assert_eq!(out[31].to_bits(), 0x7ff0_0000_0000_0002);
    assert_eq!(&out[..31], &src[..31]);
}
