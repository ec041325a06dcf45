//! The optional disk tier (`EdgeConfig::cache_dir`): cached responses also written to disk,
//! so a restarted edge serves what it cached before instead of asking the origin again.
//!
//! - **It owns only what it wrote.** The directory carries a marker file ([`MARKER`]); a
//!   directory that is not empty and has no marker is refused at start, so an operator who
//!   points `cache_dir` at a directory holding other data loses nothing. Inside, only names
//!   of the tier's own shape are read, evicted or removed (`d-<32 hex>/<32 hex>.entry`, their
//!   temporary files, purged directories); anything else is left alone.
//! - **Private.** Directories are created 0700 and files 0600: cached responses can hold
//!   `Set-Cookie` and personalised pages.
//! - One file per entry: a little-endian `u32` length, a JSON header (key, status, headers,
//!   age and times), then the body. Written to a temporary name and renamed, so a crash
//!   leaves a whole file or none; a file that does not parse is deleted.
//! - Bounded by `cache_dir_bytes`: the index (built by scanning at start) remembers each
//!   file's size and age, and the oldest files go first.
//! - A purge renames the distribution's directory away at once (purged objects cannot come
//!   back, even after a restart) and deletes it in the background.
//! - Every read, write and deletion runs on tokio's blocking pool, never on the threads that
//!   serve viewers; a disk error only costs a miss.

use std::collections::{BTreeSet, HashMap};
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

use super::Storage;
use super::entry::{CacheKey, Entry};

/// The file that marks a directory as an edge cache; its first line names the format.
pub(crate) const MARKER: &str = "CARAPACE-EDGE-CACHE";

const MARKER_TEXT: &str = "carapace edge cache, format 2\nEvery d-* directory here belongs to the edge.\n";

/// Format version of entry files.
const FORMAT: u32 = 2;

/// The JSON header of an entry file.
#[derive(Serialize, Deserialize)]
struct Meta {
    v: u32,
    dist: String,
    /// The key's bytes, hex.
    rest: String,
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    age_ms: u64,
    stored_ms: u64,
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
    /// Purges so far per distribution directory: a write that started before the latest
    /// purge of its directory is dropped, so a purged object never lands after the purge.
    purges: HashMap<PathBuf, u64>,
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

    /// Takes the oldest files out of the index until the total fits `max`; the caller
    /// deletes them (outside the lock).
    fn evict_to(&mut self, max: u64) -> Vec<PathBuf> {
        let mut gone = Vec::new();
        while self.total > max {
            let Some((_, oldest)) = self.by_age.iter().next().cloned() else { break };
            self.remove(&oldest);
            gone.push(oldest);
        }
        gone
    }
}

/// The disk tier.
pub(crate) struct Disk {
    dir: PathBuf,
    max_bytes: u64,
    index: Arc<Mutex<Index>>,
    /// Makes temporary and purged names unique within this process.
    counter: AtomicU64,
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn hash(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    hex::encode(&digest.as_ref()[..16])
}

fn is_hash(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// What a name in the cache directory is, by its shape.
enum Name {
    /// `d-<hash>`: a distribution's entries.
    DistDir,
    /// `d-<hash>.purged-<n>`: a purged distribution's entries, still being deleted.
    Purged,
    /// Anything else: not the tier's, never touched.
    Foreign,
}

fn classify_top(name: &str) -> Name {
    let Some(rest) = name.strip_prefix("d-") else { return Name::Foreign };
    match rest.split_once(".purged-") {
        None if is_hash(rest) => Name::DistDir,
        Some((hash, n)) if is_hash(hash) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => Name::Purged,
        _ => Name::Foreign,
    }
}

/// `<hash>.entry` is an entry; `<hash>.entry.<n>.tmp` a write cut short.
fn classify_file(name: &str) -> Option<bool> {
    if let Some(hash) = name.strip_suffix(".entry") {
        return is_hash(hash).then_some(true);
    }
    let (hash, tail) = name.split_once(".entry.")?;
    let n = tail.strip_suffix(".tmp")?;
    (is_hash(hash) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(false)
}

fn private_dir(path: &Path) -> std::io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

impl Disk {
    /// Opens `dir` (creating it 0700) and indexes the entries in it. Refuses a directory
    /// that holds anything and is not marked as an edge cache.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        let marker = dir.join(MARKER);
        match std::fs::read_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => private_dir(dir)?,
            Err(e) => return Err(e),
            Ok(mut entries) => {
                if !marker.exists() && entries.next().is_some() {
                    return Err(std::io::Error::other(format!(
                        "{} is not empty and is not an edge cache directory (it has no {MARKER} file): \
                         give the edge an empty directory of its own",
                        dir.display()
                    )));
                }
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
            }
        }
        if !marker.exists() {
            let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&marker)?;
            file.write_all(MARKER_TEXT.as_bytes())?;
        }
        let mut index = Index::default();
        for top in std::fs::read_dir(dir)? {
            let top = top?;
            let Some(name) = top.file_name().to_str().map(str::to_owned) else { continue };
            if !top.file_type()?.is_dir() {
                continue;
            }
            match classify_top(&name) {
                Name::Foreign => continue,
                Name::Purged => {
                    let _ = std::fs::remove_dir_all(top.path()); // a purge cut short by a restart
                    continue;
                }
                Name::DistDir => {}
            }
            for file in std::fs::read_dir(top.path())? {
                let file = file?;
                let Some(name) = file.file_name().to_str().map(str::to_owned) else { continue };
                match classify_file(&name) {
                    None => {}
                    Some(false) => {
                        let _ = std::fs::remove_file(file.path()); // a write cut short
                    }
                    Some(true) => {
                        let meta = file.metadata()?;
                        let written_ms = meta.modified().map(ms).unwrap_or(0);
                        index.add(file.path(), Indexed { bytes: meta.len(), written_ms });
                    }
                }
            }
        }
        let gone = index.evict_to(max_bytes);
        for path in gone {
            let _ = std::fs::remove_file(path);
        }
        tracing::info!(dir = %dir.display(), objects = index.files.len(), bytes = index.total, "edge disk cache opened");
        Ok(Self { dir: dir.to_owned(), max_bytes, index: Arc::new(Mutex::new(index)), counter: AtomicU64::new(0) })
    }

    fn dist_dir(&self, dist: &str) -> PathBuf {
        self.dir.join(format!("d-{}", hash(dist.as_bytes())))
    }

    fn path(&self, key: &CacheKey) -> PathBuf {
        self.dist_dir(&key.dist).join(format!("{}.entry", hash(&key.rest)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs blocking file work on tokio's blocking pool (at once when no runtime runs).
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => runtime.spawn_blocking(work).await.ok(),
        Err(_) => Some(work()),
    }
}

fn background(work: impl FnOnce() + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => drop(runtime.spawn_blocking(work)),
        Err(_) => work(),
    }
}

impl Storage for Disk {
    async fn get(&self, key: &CacheKey, now: SystemTime) -> Option<Arc<Entry>> {
        let path = self.path(key);
        if !self.lock().files.contains_key(&path) {
            return None;
        }
        let (key, index) = (key.clone(), self.index.clone());
        blocking(move || match read(&path, &key, now) {
            Some(entry) => Some(Arc::new(entry)),
            None => {
                let _ = std::fs::remove_file(&path);
                index.lock().unwrap_or_else(|e| e.into_inner()).remove(&path);
                None
            }
        })
        .await
        .flatten()
    }

    fn put(&self, key: CacheKey, entry: Arc<Entry>) {
        let path = self.path(&key);
        let tmp = path.with_extension(format!("entry.{}.tmp", self.counter.fetch_add(1, Ordering::Relaxed)));
        let epoch = path.parent().and_then(|dir| self.lock().purges.get(dir).copied()).unwrap_or(0);
        let (index, max) = (self.index.clone(), self.max_bytes);
        background(move || {
            let Some(bytes) = encode(&key, &entry) else { return };
            write_file(&path, &tmp, &bytes, epoch, &index, max);
        });
    }

    fn purge(&self, dist: &str) {
        let dir = self.dist_dir(dist);
        let purged = dir.with_extension(format!("purged-{}", self.counter.fetch_add(1, Ordering::Relaxed)));
        {
            let mut index = self.lock();
            let gone: Vec<PathBuf> = index.files.keys().filter(|p| p.starts_with(&dir)).cloned().collect();
            for path in &gone {
                index.remove(path);
            }
            *index.purges.entry(dir.clone()).or_default() += 1;
            // Renamed under the lock, so a write racing the purge either lands in the old
            // directory (and goes with it) or in a new one after it.
            match std::fs::rename(&dir, &purged) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "edge disk cache: purge failed");
                    return;
                }
            }
        }
        background(move || {
            if let Err(e) = std::fs::remove_dir_all(&purged) {
                tracing::warn!(dir = %purged.display(), error = %e, "edge disk cache: removing a purged directory failed");
            }
        });
    }

    fn bytes(&self) -> u64 {
        self.lock().total
    }
}

fn encode(key: &CacheKey, entry: &Entry) -> Option<Vec<u8>> {
    let meta = Meta {
        v: FORMAT,
        dist: key.dist.to_string(),
        rest: hex::encode(&key.rest),
        status: entry.status.as_u16(),
        headers: entry.headers.iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect(),
        age_ms: duration_ms(entry.age_at_store),
        stored_ms: ms(entry.stored_at),
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
    // A hash collision, or a file of another format: not this key's.
    if meta.v != FORMAT || *meta.dist != *key.dist || hex::decode(&meta.rest).ok()? != *key.rest {
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
    // Restored as stored `now`, aged by the time it spent on disk: the memory tier's expiry
    // counts from insertion, and `Age` keeps growing from where it was.
    let on_disk = now.duration_since(at(meta.stored_ms)).unwrap_or_default();
    Some(Entry {
        status: StatusCode::from_u16(meta.status).ok()?,
        headers,
        body,
        age_at_store: Duration::from_millis(meta.age_ms) + on_disk,
        fresh_until: at(meta.fresh_until_ms),
        keep_until,
        stored_at: now,
    })
}

/// Writes an entry file: the bytes to a temporary file, then, under the index lock and only
/// if its distribution was not purged since `epoch`, renamed into place (a rename is a
/// metadata operation: the lock is held for no data I/O).
fn write_file(path: &Path, tmp: &Path, bytes: &[u8], epoch: u64, index: &Mutex<Index>, max_bytes: u64) {
    let Some(parent) = path.parent() else { return };
    let written = private_dir(parent).and_then(|()| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)?;
        file.write_all(bytes)
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(tmp);
        tracing::warn!(path = %path.display(), error = %e, "edge disk cache: write failed");
        return;
    }
    // The write time orders eviction only (oldest first), never freshness.
    #[allow(clippy::disallowed_methods)]
    let written_ms = ms(SystemTime::now());
    let gone = {
        let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
        if index.purges.get(parent).copied().unwrap_or(0) != epoch {
            drop(index);
            let _ = std::fs::remove_file(tmp); // purged while it was being written
            return;
        }
        // The directory may have been renamed away by a purge since `private_dir` made it.
        let placed = private_dir(parent).and_then(|()| std::fs::rename(tmp, path));
        if let Err(e) = placed {
            drop(index);
            let _ = std::fs::remove_file(tmp);
            tracing::warn!(path = %path.display(), error = %e, "edge disk cache: write failed");
            return;
        }
        index.add(path.to_owned(), Indexed { bytes: bytes.len() as u64, written_ms });
        index.evict_to(max_bytes)
    };
    for oldest in gone {
        let _ = std::fs::remove_file(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_the_tiers_own_shape_only() {
        let h = "0123456789abcdef0123456789abcdef";
        assert!(matches!(classify_top(&format!("d-{h}")), Name::DistDir));
        assert!(matches!(classify_top(&format!("d-{h}.purged-7")), Name::Purged));
        for foreign in ["projA", "d-xyz", h, &format!("d-{h}.purged-"), "d-"] {
            assert!(matches!(classify_top(foreign), Name::Foreign), "{foreign}");
        }
        assert_eq!(classify_file(&format!("{h}.entry")), Some(true));
        assert_eq!(classify_file(&format!("{h}.entry.12.tmp")), Some(false));
        for foreign in ["draft.tmp", "important.dat", h, &format!("{h}.entry.x.tmp")] {
            assert_eq!(classify_file(foreign), None, "{foreign}");
        }
    }
}
