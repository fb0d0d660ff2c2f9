//! Metric metadata (type, help, unit) seen at ingest, served by `/api/v1/metadata`.

use std::collections::HashMap;

use eddy_ingest::remote_write::MetricMetadata;
use parking_lot::RwLock;

/// One family's metadata as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MetaEntry {
    /// `counter`, `gauge`, `summary`, `histogram`, … or `unknown`.
    #[serde(rename = "type")]
    pub metric_type: String,
    /// Help text.
    pub help: String,
    /// Unit.
    pub unit: String,
}

/// The latest metadata per metric family. Bounded: beyond `MAX_FAMILIES` new families are
/// not recorded (metadata is advisory; samples are unaffected).
#[derive(Debug, Default)]
pub struct MetadataStore {
    families: RwLock<HashMap<String, MetaEntry>>,
}

const MAX_FAMILIES: usize = 100_000;

impl MetadataStore {
    /// Records what a request declared; cheap when nothing changed.
    pub fn update(&self, meta: &[MetricMetadata<'_>]) {
        if meta.is_empty() {
            return;
        }
        let changed: Vec<(String, MetaEntry)> = {
            let known = self.families.read();
            meta.iter()
                .filter_map(|m| {
                    let e = MetaEntry {
                        metric_type: m.metric_type.as_str().to_string(),
                        help: m.help.to_string(),
                        unit: m.unit.to_string(),
                    };
                    (known.get(m.family.as_ref()) != Some(&e)).then(|| (m.family.to_string(), e))
                })
                .collect()
        };
        if changed.is_empty() {
            return;
        }
        let mut known = self.families.write();
        for (k, v) in changed {
            if known.len() < MAX_FAMILIES || known.contains_key(&k) {
                known.insert(k, v);
            }
        }
    }

    /// Metadata of `metric` (all families when `None`), at most `limit` families.
    pub fn query(&self, metric: Option<&str>, limit: Option<usize>) -> Vec<(String, MetaEntry)> {
        let known = self.families.read();
        let mut out: Vec<(String, MetaEntry)> = match metric {
            Some(m) => known
                .get(m)
                .map(|e| vec![(m.to_string(), e.clone())])
                .unwrap_or_default(),
            None => known.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(l) = limit {
            out.truncate(l);
        }
        out
    }
}
