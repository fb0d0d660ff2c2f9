//! Targets: from a job's static and file_sd groups to [`TargetSpec`]s (target labels after
//! `relabel_configs`), and the file_sd poller that re-reads target files when they change.
//!
//! As in Prometheus, a target starts with the labels `__address__`, `__scheme__`,
//! `__metrics_path__`, `__param_<name>`, `job` and its group's labels; `relabel_configs` may
//! rewrite or drop it; then `instance` defaults to `__address__` and every `__`-prefixed label
//! is removed. file_sd files hold `[{targets: [...], labels: {...}}]` as JSON (`.json`) or YAML;
//! their targets also get `__meta_filepath`. A file that fails to read or parse keeps its
//! previous targets, so a half-written file does not stop scraping.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::SystemTime;

use super::config::{check_address, fmt_duration, FileSdConfig, ScrapeConfig, TargetGroup};
use super::relabel::{relabel, LabelPair, RelabelScratch};
use super::{Health, Inner, TargetStatus};

/// Identity of a running target: job, address, path and labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TargetKey(pub(crate) u64);

/// Everything a scrape loop needs to know about its target.
#[derive(Debug, Clone)]
pub(crate) struct TargetSpec {
    pub(crate) job: String,
    pub(crate) address: String,
    pub(crate) instance: String,
    pub(crate) path_and_query: String,
    /// Target labels (with `job` and `instance`), sorted by name.
    pub(crate) labels: Vec<(String, String)>,
}

impl TargetSpec {
    pub(crate) fn key(&self) -> TargetKey {
        let head = [
            ("", self.job.as_str()),
            ("", self.address.as_str()),
            ("", self.path_and_query.as_str()),
        ];
        let pairs = head
            .into_iter()
            .chain(self.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        TargetKey(eddy_storage::labels::hash_label_pairs(pairs))
    }

    pub(crate) fn scrape_url(&self) -> String {
        format!("http://{}{}", self.address, self.path_and_query)
    }

    pub(crate) fn initial_status(&self, cfg: &ScrapeConfig) -> TargetStatus {
        TargetStatus {
            job: self.job.clone(),
            instance: self.instance.clone(),
            scrape_url: self.scrape_url(),
            labels: self.labels.clone(),
            health: Health::Unknown,
            last_error: None,
            last_scrape_ms: None,
            last_duration: Default::default(),
            last_samples: 0,
            interval: cfg.scrape_interval,
            timeout: cfg.scrape_timeout,
        }
    }
}

/// True if two configs scrape a target the same way (so a reload can keep its loop).
pub(crate) fn same_scrape(a: &ScrapeConfig, b: &ScrapeConfig) -> bool {
    a.job_name == b.job_name
        && a.scrape_interval == b.scrape_interval
        && a.scrape_timeout == b.scrape_timeout
        && a.metrics_path == b.metrics_path
        && a.honor_labels == b.honor_labels
        && a.params == b.params
        && a.metric_relabel_configs == b.metric_relabel_configs
        && a.sample_limit == b.sample_limit
        && a.label_limit == b.label_limit
        && a.body_size_limit == b.body_size_limit
}

/// Builds the target for `address` of a group, or `None` if relabeling drops it or leaves an
/// invalid address.
pub(crate) fn target_spec(
    cfg: &ScrapeConfig,
    address: &str,
    group_labels: &BTreeMap<String, String>,
) -> Option<TargetSpec> {
    let mut labels: Vec<LabelPair<'static>> = Vec::with_capacity(8 + group_labels.len());
    let mut put = |n: String, v: String| labels.push((Cow::Owned(n), Cow::Owned(v)));
    put("__address__".into(), address.into());
    put("__scheme__".into(), cfg.scheme.clone());
    put("__metrics_path__".into(), cfg.metrics_path.clone());
    put(
        "__scrape_interval__".into(),
        fmt_duration(cfg.scrape_interval),
    );
    put(
        "__scrape_timeout__".into(),
        fmt_duration(cfg.scrape_timeout),
    );
    put("job".into(), cfg.job_name.clone());
    for (k, v) in &cfg.params {
        if let Some(first) = v.first() {
            put(format!("__param_{k}"), first.clone());
        }
    }
    for (n, v) in group_labels {
        match labels.iter_mut().find(|(ln, _)| ln == n) {
            Some(l) => l.1 = Cow::Owned(v.clone()),
            None => labels.push((Cow::Owned(n.clone()), Cow::Owned(v.clone()))),
        }
    }
    if !relabel(
        &cfg.relabel_configs,
        &mut labels,
        0,
        &mut RelabelScratch::default(),
    ) {
        return None;
    }
    let get = |name: &str| {
        labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_string())
    };
    let address = get("__address__").filter(|a| check_address(a).is_ok())?;
    let path = get("__metrics_path__").unwrap_or_else(|| cfg.metrics_path.clone());
    let instance = get("instance")
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| address.clone());
    // Query: every `params` value, with the first value of each overridden by `__param_*`.
    let mut query = String::new();
    for (k, vals) in &cfg.params {
        for (i, v) in vals.iter().enumerate() {
            let v = match get(&format!("__param_{k}")) {
                Some(over) if i == 0 => over,
                _ => v.clone(),
            };
            query.push(if query.is_empty() { '?' } else { '&' });
            encode_query(k, &mut query);
            query.push('=');
            encode_query(&v, &mut query);
        }
    }
    let mut out: Vec<(String, String)> = labels
        .into_iter()
        .filter(|(n, v)| !n.starts_with("__") && n != "instance" && !v.is_empty())
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    out.push(("instance".into(), instance.clone()));
    out.sort();
    Some(TargetSpec {
        job: cfg.job_name.clone(),
        address,
        instance,
        path_and_query: format!("{path}{query}"),
        labels: out,
    })
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass).
fn encode_query(s: &str, dst: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            dst.push(b as char);
        } else {
            dst.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Polls the files of one file_sd config every `refresh_interval` and reports the groups of
/// changed files to the scraper. Ends when the scraper is gone.
pub(crate) async fn poll_files(
    inner: Weak<Inner>,
    generation: u64,
    job: usize,
    sd: usize,
    cfg: FileSdConfig,
) {
    let mut seen: HashMap<PathBuf, (SystemTime, u64)> = HashMap::new();
    let mut groups: HashMap<PathBuf, Vec<TargetGroup>> = HashMap::new();
    let mut first = true;
    loop {
        let files = expand_patterns(&cfg.files);
        let mut changed = first;
        first = false;
        groups.retain(|p, _| files.contains(p));
        seen.retain(|p, _| {
            let keep = files.contains(p);
            changed |= !keep;
            keep
        });
        for path in &files {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            let stamp = (
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
            );
            if seen.get(path) == Some(&stamp) {
                continue;
            }
            match read_groups(path) {
                Ok(g) => {
                    seen.insert(path.clone(), stamp);
                    groups.insert(path.clone(), g);
                    changed = true;
                }
                Err(e) => tracing::warn!(
                    "file_sd: keeping the previous targets of {}: {e}",
                    path.display()
                ),
            }
        }
        if changed {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            let mut paths: Vec<&PathBuf> = groups.keys().collect();
            paths.sort();
            let all: Vec<TargetGroup> = paths
                .into_iter()
                .flat_map(|p| groups[p].iter().cloned())
                .collect();
            inner.set_sd_groups(generation, job, sd, all);
        }
        tokio::time::sleep(cfg.refresh_interval).await;
    }
}

/// Reads one file_sd file; targets get `__meta_filepath`.
fn read_groups(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read: {e}"))?;
    let mut groups: Vec<TargetGroup> = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("parse JSON: {e}"))?
    } else {
        serde_norway::from_str::<Option<Vec<TargetGroup>>>(&text)
            .map_err(|e| format!("parse YAML: {e}"))?
            .unwrap_or_default()
    };
    for g in &mut groups {
        for t in &g.targets {
            check_address(t)?;
        }
        g.labels
            .insert("__meta_filepath".into(), path.display().to_string());
    }
    Ok(groups)
}

/// Expands patterns whose last segment may contain `*` and `?`, sorted.
fn expand_patterns(patterns: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in patterns {
        let path = Path::new(p);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.contains(['*', '?']) {
            out.push(path.to_path_buf());
            continue;
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if let Some(n) = e.file_name().to_str() {
                if wildcard_match(name.as_bytes(), n.as_bytes()) {
                    out.push(dir.join(n));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `*` matches any run (including empty), `?` one byte.
fn wildcard_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(b"tm_*.json", b"tm_1.json"));
        assert!(wildcard_match(b"tm_*.json", b"tm_.json"));
        assert!(!wildcard_match(b"tm_*.json", b"tm_1.yaml"));
        assert!(wildcard_match(b"*", b"x"));
        assert!(wildcard_match(b"a?c", b"abc"));
        assert!(!wildcard_match(b"a?c", b"ac"));
    }

    #[test]
    fn query_encoding() {
        let mut s = String::new();
        encode_query("name[]", &mut s);
        assert_eq!(s, "name%5B%5D");
    }
}
