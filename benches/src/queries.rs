//! Query files and result fingerprints for the query benchmark.
//!
//! A query file has one query per line, `name | PromQL`; blank lines and `#` comments are
//! skipped. A result is normalised before hashing so that equal answers from different
//! servers hash equally: series sorted by their label sets (labels sorted by name), each value
//! printed with 9 significant digits (about 1e-9 relative), `NaN`/`±Inf` spelled out, -0 as 0.

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

/// One named query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Short name (table row).
    pub name: String,
    /// PromQL expression.
    pub expr: String,
}

/// Parses a query file.
pub fn parse_queries(text: &str) -> anyhow::Result<Vec<Query>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some((name, expr)) = l.split_once('|') else {
            bail!("line {}: expected `name | query`, got {l:?}", i + 1);
        };
        let (name, expr) = (name.trim(), expr.trim());
        if name.is_empty() || expr.is_empty() {
            bail!("line {}: empty name or query", i + 1);
        }
        out.push(Query {
            name: name.to_string(),
            expr: expr.to_string(),
        });
    }
    Ok(out)
}

/// A normalised result: the canonical text, its hash, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// FNV-1a 64 of `text`.
    pub hash: u64,
    /// Series in the result.
    pub series: usize,
    /// Points (samples) in the result.
    pub points: usize,
    /// Canonical text (one line per series).
    pub text: String,
}

/// A value with 9 significant digits.
pub fn round_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.8e}")
    }
}

fn parse_point(p: &Value) -> anyhow::Result<String> {
    let arr = p
        .as_array()
        .ok_or_else(|| anyhow!("point is not an array: {p}"))?;
    let (Some(t), Some(v)) = (arr.first(), arr.get(1)) else {
        bail!("point needs [time, value]: {p}");
    };
    let t = t
        .as_f64()
        .ok_or_else(|| anyhow!("point time is not a number: {p}"))?;
    let v = v
        .as_str()
        .ok_or_else(|| anyhow!("point value is not a string: {p}"))?;
    let v: f64 = match v {
        "NaN" => f64::NAN,
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s
            .parse()
            .with_context(|| format!("parse point value {s:?}"))?,
    };
    Ok(format!(
        "{}:{}",
        (t * 1000.0).round() as i64,
        round_value(v)
    ))
}

/// Normalises a Prometheus API response body (`{"status":"success","data":{…}}`).
pub fn fingerprint(body: &[u8]) -> anyhow::Result<Fingerprint> {
    let v: Value = serde_json::from_slice(body).context("parse response JSON")?;
    if v["status"] != "success" {
        bail!("query failed: {} {}", v["errorType"], v["error"]);
    }
    let data = &v["data"];
    let result = &data["result"];
    let mut lines = Vec::new();
    let mut points = 0;
    match data["resultType"].as_str() {
        Some("matrix") | Some("vector") => {
            let list = result
                .as_array()
                .ok_or_else(|| anyhow!("result is not a list"))?;
            for s in list {
                let metric = s["metric"]
                    .as_object()
                    .ok_or_else(|| anyhow!("series without metric"))?;
                let mut labels: Vec<String> = metric
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                labels.sort();
                let mut line = format!("{{{}}}", labels.join(","));
                let pts: Vec<&Value> = match s.get("values") {
                    Some(Value::Array(a)) => a.iter().collect(),
                    _ => s.get("value").into_iter().collect(),
                };
                for p in pts {
                    line.push(' ');
                    line.push_str(&parse_point(p)?);
                    points += 1;
                }
                lines.push(line);
            }
        }
        Some("scalar") | Some("string") => {
            lines.push(parse_point(result)?);
            points = 1;
        }
        other => bail!("unknown resultType {other:?}"),
    }
    lines.sort();
    let text = lines.join("\n");
    Ok(Fingerprint {
        hash: fnv1a(text.as_bytes()),
        series: lines.len(),
        points,
        text,
    })
}

/// FNV-1a, 64 bit: stable across builds and platforms, unlike `DefaultHasher`.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_file() {
        let q = parse_queries("# c\n\nrate | sum(rate(x[1m]))\n a|b|c \n").unwrap();
        assert_eq!(q.len(), 2);
        assert_eq!(q[0].name, "rate");
        assert_eq!(q[1].expr, "b|c");
        assert!(parse_queries("no pipe").is_err());
        assert!(parse_queries(" | x").is_err());
    }

    #[test]
    fn equal_results_hash_equal_regardless_of_order_and_noise() {
        let a = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"b":"2","a":"1"},"values":[[1700000000,"0.30000000000000004"],[1700000060,"NaN"]]},
            {"metric":{"a":"0"},"values":[[1700000000.5,"-0"]]}]}}"#;
        let b = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"0"},"values":[[1700000000.5,"0"]]},
            {"metric":{"a":"1","b":"2"},"values":[[1700000000,"0.3"],[1700000060,"NaN"]]}]}}"#;
        let (fa, fb) = (fingerprint(a).unwrap(), fingerprint(b).unwrap());
        assert_eq!(fa, fb);
        assert_eq!((fa.series, fa.points), (2, 3));
        assert_eq!(
            fa.text,
            "{a=0} 1700000000500:0\n{a=1,b=2} 1700000000000:3.00000000e-1 1700000060000:NaN"
        );
        let c = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"0"},"values":[[1700000000.5,"0"]]},
            {"metric":{"a":"1","b":"2"},"values":[[1700000000,"0.3000001"],[1700000060,"NaN"]]}]}}"#;
        assert_ne!(fingerprint(c).unwrap().hash, fa.hash);
    }

    #[test]
    fn errors_are_reported() {
        let e = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert!(fingerprint(e)
            .unwrap_err()
            .to_string()
            .contains("parse error"));
        assert!(fingerprint(b"not json").is_err());
        let s = br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"2"]}}"#;
        assert_eq!(fingerprint(s).unwrap().text, "1700000000000:2.00000000e0");
    }

    #[test]
    fn rounding() {
        assert_eq!(round_value(1.0), "1.00000000e0");
        assert_eq!(round_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(round_value(840.2166666666667), round_value(840.21666666666));
        assert_ne!(round_value(840.2166666666667), round_value(840.2166676));
    }
}
