//! Reading `/api/v1/query{,_range}` answers into a comparable form and comparing two of them:
//! same result type, same series label sets (in any order), same timestamps, values equal within
//! a relative tolerance (NaN equals NaN, infinities equal by sign). Two errors agree.

use std::collections::BTreeMap;

use serde_json::Value;

/// Relative tolerance for sample values.
pub(crate) const REL_TOLERANCE: f64 = 1e-6;

/// A parsed answer.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// `status: error` or a non-JSON answer, with its message.
    Error(String),
    /// The result type and its series, sorted by labels; a scalar is one series without labels.
    Data {
        result_type: String,
        series: Vec<(String, Vec<(i64, f64)>)>,
    },
}

fn value(v: &Value) -> Result<f64, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("sample value {v} is not a string"))?;
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse().map_err(|_| format!("bad sample value {s:?}")),
    }
}

fn point(p: &Value) -> Result<(i64, f64), String> {
    let arr = p
        .as_array()
        .ok_or_else(|| format!("point {p} is not a pair"))?;
    match arr.as_slice() {
        [t, v] => {
            let t = t
                .as_f64()
                .ok_or_else(|| format!("timestamp {t} is not a number"))?;
            Ok(((t * 1000.0).round() as i64, value(v)?))
        }
        _ => Err(format!("point {p} is not a pair")),
    }
}

/// Labels rendered canonically: sorted `name="value"` pairs.
fn labels_key(m: &Value) -> Result<String, String> {
    let obj = m
        .as_object()
        .ok_or_else(|| format!("metric {m} is not an object"))?;
    let sorted: BTreeMap<&str, &str> = obj
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
        .collect();
    let parts: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    Ok(format!("{{{}}}", parts.join(", ")))
}

/// Parses an HTTP answer of a query endpoint; series are sorted by labels unless `keep_order`.
pub(crate) fn parse(status: u16, body: &str, keep_order: bool) -> Outcome {
    let v: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Outcome::Error(format!("status {status}, unparsable body ({e}): {body}")),
    };
    if v["status"] != "success" {
        return Outcome::Error(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("?"),
            v["error"].as_str().unwrap_or(body)
        ));
    }
    match parse_data(&v["data"], keep_order) {
        Ok(o) => o,
        Err(e) => Outcome::Error(format!("malformed success answer: {e}: {body}")),
    }
}

fn parse_data(d: &Value, keep_order: bool) -> Result<Outcome, String> {
    let result_type = d["resultType"].as_str().ok_or("no resultType")?.to_string();
    let r = &d["result"];
    let mut series = Vec::new();
    match result_type.as_str() {
        "scalar" => series.push(("scalar".to_string(), vec![point(r)?])),
        "string" => return Err("string results are not compared".into()),
        "vector" | "matrix" => {
            for s in r.as_array().ok_or("result is not an array")? {
                let key = labels_key(&s["metric"])?;
                let points = if result_type == "vector" {
                    vec![point(&s["value"])?]
                } else {
                    s["values"]
                        .as_array()
                        .ok_or("series without values")?
                        .iter()
                        .map(point)
                        .collect::<Result<_, _>>()?
                };
                series.push((key, points));
            }
        }
        other => return Err(format!("unknown result type {other:?}")),
    }
    if !keep_order {
        series.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(Outcome::Data {
        result_type,
        series,
    })
}

fn same_value(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= REL_TOLERANCE * a.abs().max(b.abs())
}

/// `None` when the outcomes agree, else the first difference found (`want` is Prometheus).
pub(crate) fn first_difference(want: &Outcome, got: &Outcome) -> Option<String> {
    match (want, got) {
        (Outcome::Error(_), Outcome::Error(_)) => None,
        (Outcome::Error(e), Outcome::Data { .. }) => {
            Some(format!("Prometheus fails ({e}) but eddy answers"))
        }
        (Outcome::Data { .. }, Outcome::Error(e)) => {
            Some(format!("eddy fails ({e}) but Prometheus answers"))
        }
        (
            Outcome::Data {
                result_type: wt,
                series: ws,
            },
            Outcome::Data {
                result_type: gt,
                series: gs,
            },
        ) => {
            if wt != gt {
                return Some(format!("result type: Prometheus {wt}, eddy {gt}"));
            }
            let wk: Vec<&str> = ws.iter().map(|s| s.0.as_str()).collect();
            let gk: Vec<&str> = gs.iter().map(|s| s.0.as_str()).collect();
            if wk != gk {
                let missing: Vec<&&str> = wk.iter().filter(|k| !gk.contains(k)).collect();
                let extra: Vec<&&str> = gk.iter().filter(|k| !wk.contains(k)).collect();
                return Some(format!(
                    "series: Prometheus {} eddy {}; only in Prometheus {:?}; only in eddy {:?}",
                    wk.len(),
                    gk.len(),
                    missing.iter().take(2).collect::<Vec<_>>(),
                    extra.iter().take(2).collect::<Vec<_>>()
                ));
            }
            for ((key, wp), (_, gp)) in ws.iter().zip(gs) {
                for (i, (w, g)) in wp.iter().zip(gp).enumerate() {
                    if w.0 != g.0 {
                        return Some(format!(
                            "{key} point {i}: timestamp Prometheus {} eddy {}",
                            w.0, g.0
                        ));
                    }
                    if !same_value(w.1, g.1) {
                        return Some(format!("{key} at {}: Prometheus {} eddy {}", w.0, w.1, g.1));
                    }
                }
                if wp.len() != gp.len() {
                    let (longer, who) = if wp.len() > gp.len() {
                        (wp, "Prometheus")
                    } else {
                        (gp, "eddy")
                    };
                    let extra = longer[wp.len().min(gp.len())];
                    return Some(format!(
                        "{key}: Prometheus {} points, eddy {}; first extra in {who}: {:?}",
                        wp.len(),
                        gp.len(),
                        extra
                    ));
                }
            }
            None
        }
    }
}

/// Drops the points before `t` (and series left without points), to compare only the part of
/// two answers where a documented difference cannot show.
pub(crate) fn drop_before(o: &mut Outcome, t: i64) {
    if let Outcome::Data { series, .. } = o {
        for (_, points) in series.iter_mut() {
            points.retain(|p| p.0 >= t);
        }
        series.retain(|(_, points)| !points.is_empty());
    }
}
