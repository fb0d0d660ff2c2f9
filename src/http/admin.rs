//! Administrative routes: flush the head into blocks, compact blocks, take a snapshot.

use axum::extract::{Query, State};
use axum::Json;
use eddy_storage::block::BlockId;
use eddy_storage::Db;
use serde::Deserialize;

use super::{ApiError, ErrorType, SharedState};

/// `POST /api/v1/admin/flush`: cuts the whole head into blocks; answers when done.
pub async fn flush(State(st): State<SharedState>) -> Result<Json<serde_json::Value>, ApiError> {
    write_blocks(st, "flush", Db::flush).await
}

/// `POST /api/v1/admin/compact`: merges each largest compaction window's blocks into one now,
/// finished window or not (see `Db::compact_all`); answers with the new block ids when done.
pub async fn compact(State(st): State<SharedState>) -> Result<Json<serde_json::Value>, ApiError> {
    write_blocks(st, "compaction", Db::compact_all).await
}

/// Runs `work` (which writes blocks and frees a lot) on the blocking pool, gives the freed
/// memory back, and answers `{"data":{"blocks":[ids]}}` with the blocks it wrote.
async fn write_blocks(
    st: SharedState,
    what: &'static str,
    work: fn(&Db) -> eddy_storage::Result<Vec<BlockId>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ids = tokio::task::spawn_blocking(move || {
        let ids = work(&st.db);
        crate::allocator::release_freed_memory();
        ids
    })
    .await
    .map_err(|e| ApiError::new(ErrorType::Internal, format!("{what} task failed: {e}")))?
    .map_err(ApiError::storage)?;
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    Ok(Json(
        serde_json::json!({"status": "success", "data": {"blocks": ids}}),
    ))
}

/// Parameters of the snapshot route (as Prometheus).
#[derive(Debug, Deserialize)]
pub struct SnapshotParams {
    #[serde(default)]
    skip_head: Option<String>,
}

/// `POST /api/v1/admin/tsdb/snapshot`: hard-links blocks (and writes the head unless
/// `skip_head=true`) into `<data-dir>/snapshots/<name>`; answers `{"data":{"name":…}}`.
pub async fn snapshot(
    State(st): State<SharedState>,
    Query(p): Query<SnapshotParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let skip_head = matches!(p.skip_head.as_deref(), Some("true") | Some("1"));
    let name = format!("{}-{:016x}", chrono_like_now(), rand_suffix());
    let n = name.clone();
    tokio::task::spawn_blocking(move || st.db.snapshot(&n, !skip_head))
        .await
        .map_err(|e| ApiError::new(ErrorType::Internal, format!("snapshot task failed: {e}")))?
        .map_err(ApiError::storage)?;
    Ok(Json(
        serde_json::json!({"status": "success", "data": {"name": name}}),
    ))
}

/// `YYYYMMDDTHHMMSSZ` of the current UTC time, as Prometheus names snapshots.
fn chrono_like_now() -> String {
    let secs = super::now_ms() / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(super::now_ms());
    h.finish()
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_517), (2026, 3, 5));
    }
}
