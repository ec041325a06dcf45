//! The optional disk tier (`EdgeConfig::cache_dir`): cached responses also written to disk,
//! so a restarted edge serves what it cached before instead of asking the origin again.
//!
//! - One file per entry, `<dir>/<distribution hash>/<key hash>`: a little-endian `u32`
//!   length, a JSON header (key, status, headers, the `http-cache-semantics` policy, the
//!   freshness and keep times), then the body. Written to a temporary name and renamed, so a
//!   crash leaves a whole file or none; a file that does not parse is deleted.
//! - Bounded by `cache_dir_bytes`: the index (built by scanning the directory at start)
//!   remembers each file's size and age, and the oldest files go first.
//! - A purge removes the distribution's directory, so purged objects cannot come back after
//!   a restart.
//! - Reads happen when the memory tier misses, writes on a blocking thread after the memory
//!   insert; a disk error only costs a miss.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use crate::cache::{CacheKey, Entry};

/// The JSON header of an entry file.
#[derive(Serialize, Deserialize)]
struct Meta {
    /// Format version.
    v: u32,
    dist: String,
    rest: String,
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    policy: http_cache_semantics::CachePolicy,
    fresh_until_ms: u64,
    keep_until_ms: u64,
}

/// One file in the index.
#[derive(Clone, Copy)]
struct Indexed {
    bytes: u64,
    written_ms: u64,
}

#[derive(Default)]
struct Index {
    files: HashMap<PathBuf, Indexed>,
    by_age: BTreeSet<(u64, PathBuf)>,
    total: u64,
}

impl Index {
    fn add(&mut self, path: PathBuf, file: Indexed) {
        self.remove(&path);
        self.total += file.bytes;
        self.by_age.insert((file.written_ms, path.clone()));
        self.files.insert(path, file);
    }

    fn remove(&mut self, path: &Path) {
        if let Some(old) = self.files.remove(path) {
            self.total -= old.bytes;
            self.by_age.remove(&(old.written_ms, path.to_owned()));
        }
    }
}

/// The disk tier.
pub(crate) struct Disk {
    dir: PathBuf,
    max_bytes: u64,
    index: Arc<Mutex<Index>>,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn hash(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

impl Disk {
    /// Opens (creating) `dir` and indexes the files in it.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut index = Index::default();
        for dist in std::fs::read_dir(dir)? {
            let dist = dist?;
            if !dist.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(dist.path())? {
                let file = file?;
                let path = file.path();
                if path.extension().is_some_and(|e| e == "tmp") {
                    let _ = std::fs::remove_file(&path); // a write cut short
                    continue;
                }
                let meta = file.metadata()?;
                let written_ms = meta.modified().map(ms).unwrap_or(0);
                index.add(path, Indexed { bytes: meta.len(), written_ms });
            }
        }
        tracing::info!(dir = %dir.display(), objects = index.files.len(), bytes = index.total, "edge disk cache opened");
        Ok(Self { dir: dir.to_owned(), max_bytes, index: Arc::new(Mutex::new(index)) })
    }

    fn dist_dir(&self, dist: &str) -> PathBuf {
        self.dir.join(hash(dist))
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dist_dir(&key.dist).join(hash(&key.rest))
    }

    /// The entry stored for `key`, if any (a file that does not read is deleted).
    pub(crate) fn get(&self, key: &CacheKey, now: SystemTime) -> Option<Entry> {
        let path = self.path(key);
        if !self.index.lock().unwrap_or_else(|e| e.into_inner()).files.contains_key(&path) {
            return None;
        }
        match read(&path, key, now) {
            Some(entry) => Some(entry),
            None => {
                self.forget(&path);
                None
            }
        }
    }

    fn forget(&self, path: &Path) {
        let _ = std::fs::remove_file(path);
        self.index.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
    }

    /// Writes `entry` for `key` in the background (at once when no runtime runs).
    pub(crate) fn put(&self, key: &CacheKey, entry: &Entry) {
        let Some(bytes) = encode(key, entry) else { return };
        let path = self.path(key);
        let index = self.index.clone();
        let max = self.max_bytes;
        let write = move || write_file(&path, &bytes, &index, max);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(write)),
            Err(_) => write(),
        }
    }

    /// Removes every stored entry of a distribution.
    pub(crate) fn purge(&self, dist: &str) {
        let dir = self.dist_dir(dist);
        let mut index = self.index.lock().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<PathBuf> = index.files.keys().filter(|p| p.starts_with(&dir)).cloned().collect();
        for path in &gone {
            index.remove(path);
        }
        if let Err(e) = std::fs::remove_dir_all(&dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "edge disk cache: purge failed");
        }
    }

    /// Bytes on disk now.
    pub(crate) fn bytes(&self) -> u64 {
        self.index.lock().unwrap_or_else(|e| e.into_inner()).total
    }
}

fn encode(key: &CacheKey, entry: &Entry) -> Option<Vec<u8>> {
    let meta = Meta {
        v: 1,
        dist: key.dist.to_string(),
        rest: key.rest.to_string(),
        status: entry.status.as_u16(),
        headers: entry.headers.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect(),
        policy: entry.policy.clone(),
        fresh_until_ms: ms(entry.fresh_until),
        keep_until_ms: ms(entry.keep_until),
    };
    let json = serde_json::to_vec(&meta).ok()?;
    let mut out = Vec::with_capacity(4 + json.len() + entry.body.len());
    out.extend_from_slice(&u32::try_from(json.len()).ok()?.to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&entry.body);
    Some(out)
}

fn read(path: &Path, key: &CacheKey, now: SystemTime) -> Option<Entry> {
    let raw = std::fs::read(path).ok()?;
    let len = usize::try_from(u32::from_le_bytes(raw.get(..4)?.try_into().ok()?)).ok()?;
    let meta: Meta = serde_json::from_slice(raw.get(4..4 + len)?).ok()?;
    // A hash collision, or a file from another format: not this key's.
    if meta.v != 1 || *meta.dist != *key.dist || *meta.rest != *key.rest {
        return None;
    }
    let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    let keep_until = at(meta.keep_until_ms);
    if keep_until <= now {
        return None;
    }
    let mut headers = HeaderMap::with_capacity(meta.headers.len());
    for (name, value) in meta.headers {
        headers.append(HeaderName::from_bytes(name.as_bytes()).ok()?, HeaderValue::from_bytes(&value).ok()?);
    }
    let body = Bytes::copy_from_slice(raw.get(4 + len..)?);
    Some(Entry::restored(
        StatusCode::from_u16(meta.status).ok()?,
        headers,
        body,
        meta.policy,
        at(meta.fresh_until_ms),
        keep_until,
        now,
    ))
}

fn write_file(path: &Path, bytes: &[u8], index: &Mutex<Index>, max_bytes: u64) {
    let Some(parent) = path.parent() else { return };
    let tmp = path.with_extension("tmp");
    let written = std::fs::create_dir_all(parent)
        .and_then(|()| std::fs::write(&tmp, bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(path = %path.display(), error = %e, "edge disk cache: write failed");
        return;
    }
    let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
    // The write time orders eviction only (oldest first), never freshness.
    #[allow(clippy::disallowed_methods)]
    let written_ms = ms(SystemTime::now());
    index.add(path.to_owned(), Indexed { bytes: bytes.len() as u64, written_ms });
    while index.total > max_bytes {
        let Some((_, oldest)) = index.by_age.iter().next().cloned() else { break };
        let _ = std::fs::remove_file(&oldest);
        index.remove(&oldest);
    }
}
