//! ledger-store: where a reader keeps the state it folded and the offsets it consumed.
//!
//! One sled database per process, opened once ([`Store::open`]); one [`StoreTree`] per
//! reader (service) inside it. A reader commits the rows a batch of messages changed
//! together with the next offsets to read, in one atomic sled batch, and flushes before
//! anything is acknowledged outside the process ([`StoreTree::commit`]). On start it
//! seeks to [`StoreTree::positions`]: Kafka's committed offsets are only a hint.
//!
//! Keys are bytes and sled orders them bytewise, so wherever order matters the key is
//! built to sort: ids appended raw after an ASCII prefix, numbers big-endian.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The key prefix under which a tree keeps its positions. Reserved: [`Changes`] may not
/// touch it.
pub const POSITION_PREFIX: &[u8] = b"pos/";

/// How long [`Store::open`] waits for the directory's lock.
pub const LOCK_WAIT: Duration = Duration::from_secs(2);
const LOCK_RETRY_INTERVAL: Duration = Duration::from_millis(20);

/// sled reports a held lock as an I/O error whose message says so (its `flock` fails
/// with EWOULDBLOCK); there is no dedicated variant to match.
fn is_lock_busy(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the store at {path}: {source}")]
    Open { path: PathBuf, source: sled::Error },
    #[error("store error: {0}")]
    Sled(#[from] sled::Error),
    #[error("position row {key:?} is corrupt: {why}")]
    CorruptPosition { key: String, why: &'static str },
    #[error("partition {partition} of topic {topic} is negative")]
    NegativePartition { topic: String, partition: i32 },
    #[error("topic name {0:?} cannot be stored as a position (empty or contains '/')")]
    BadTopic(String),
    #[error("key {0:?} is reserved for positions; state rows may not use the \"pos/\" prefix")]
    ReservedKey(String),
}

/// The process's one sled database.
pub struct Store {
    db: sled::Db,
}

/// sled's page cache, in MiB, unless [`CACHE_VAR`] says otherwise: sled's own default
/// (1 GiB), which a read model of some hundred thousand loans fills. A smaller cache
/// holds less memory and writes slower (BENCHMARKS.md: 64 MiB made a replay of 140,189
/// facts take 33 s instead of 19 s).
pub const CACHE_MIB: u64 = 1024;

/// The environment variable that sets [`CACHE_MIB`] (`LEDGER_STORE_CACHE_MB=256`).
pub const CACHE_VAR: &str = "LEDGER_STORE_CACHE_MB";

fn cache_capacity() -> u64 {
    std::env::var(CACHE_VAR).ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(CACHE_MIB) * 1024 * 1024
}

impl Store {
    /// Opens (or creates) the database in `dir`, waiting up to [`LOCK_WAIT`] for the
    /// directory's lock. sled locks the directory, so a second process (or a second
    /// `open` in this one while the first is alive) fails here.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with_lock_wait(dir, LOCK_WAIT)
    }

    /// As [`Store::open`], waiting up to `wait` for the lock.
    ///
    /// Dropping a sled database does not release its lock at once: sled's background
    /// flusher thread holds it a moment longer (sled issues 1234 and 1289). A process
    /// that closes its store and opens it again (a restart in tests, a command run
    /// right after a service stopped) would fail for no reason without this wait. Only
    /// the lock is waited for; any other error is returned at once.
    pub fn open_with_lock_wait(dir: &Path, wait: Duration) -> Result<Store, StoreError> {
        let deadline = Instant::now() + wait;
        loop {
            match sled::Config::new().path(dir).cache_capacity(cache_capacity()).open() {
                Ok(db) => return Ok(Store { db }),
                Err(source) if is_lock_busy(&source) && Instant::now() < deadline => {
                    std::thread::sleep(LOCK_RETRY_INTERVAL);
                }
                Err(source) => return Err(StoreError::Open { path: dir.to_path_buf(), source }),
            }
        }
    }

    /// The tree of one reader, created on first use.
    pub fn tree(&self, name: &str) -> Result<StoreTree, StoreError> {
        Ok(StoreTree { tree: self.db.open_tree(name.as_bytes())? })
    }

    /// Names of the readers' trees (sled's own default tree left out).
    pub fn tree_names(&self) -> Vec<String> {
        let default = self.db.name();
        self.db
            .tree_names()
            .into_iter()
            .filter(|n| *n != default)
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .collect()
    }

    /// Writes everything committed so far to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// One reader's rows and positions. Cheap to clone (a handle on the same tree).
#[derive(Clone)]
pub struct StoreTree {
    tree: sled::Tree,
}

impl StoreTree {
    /// The next offset to read per (topic, partition), as last committed.
    ///
    /// Row: key `pos/{topic}/{partition as big-endian u32}`, value the offset as a
    /// big-endian i64.
    pub fn positions(&self) -> Result<BTreeMap<(String, i32), i64>, StoreError> {
        let mut out = BTreeMap::new();
        for row in self.tree.scan_prefix(POSITION_PREFIX) {
            let (key, value) = row?;
            let (topic, partition) = decode_position_key(&key)?;
            let offset: [u8; 8] = value.as_ref().try_into().map_err(|_| StoreError::CorruptPosition {
                key: String::from_utf8_lossy(&key).into_owned(),
                why: "the offset is not 8 bytes",
            })?;
            out.insert((topic, partition), i64::from_be_bytes(offset));
        }
        Ok(out)
    }

    /// Applies the changed rows and the new positions as one atomic sled batch, then
    /// flushes: when this returns Ok, both are on disk together, and only then may the
    /// caller acknowledge anything outside the process (produce, commit to Kafka, answer).
    pub fn commit(&self, changes: &Changes, positions: &[(&str, i32, i64)]) -> Result<(), StoreError> {
        if changes.is_empty() && positions.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for (key, value) in &changes.rows {
            if key.starts_with(POSITION_PREFIX) {
                return Err(StoreError::ReservedKey(String::from_utf8_lossy(key).into_owned()));
            }
            match value {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
        for &(topic, partition, offset) in positions {
            batch.insert(position_key(topic, partition)?, &offset.to_be_bytes()[..]);
        }
        self.tree.apply_batch(batch)?;
        self.tree.flush()?;
        Ok(())
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    /// Every row whose key starts with `prefix`, in bytewise key order.
    pub fn scan_prefix(&self, prefix: &[u8]) -> impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> {
        self.tree.scan_prefix(prefix).map(|row| row.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(StoreError::from))
    }

    /// Whether the tree holds no rows at all (no state and no positions).
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }
}

fn position_key(topic: &str, partition: i32) -> Result<Vec<u8>, StoreError> {
    if topic.is_empty() || topic.contains('/') {
        return Err(StoreError::BadTopic(topic.to_string()));
    }
    let partition =
        u32::try_from(partition).map_err(|_| StoreError::NegativePartition { topic: topic.to_string(), partition })?;
    let mut key = Vec::with_capacity(POSITION_PREFIX.len() + topic.len() + 5);
    key.extend_from_slice(POSITION_PREFIX);
    key.extend_from_slice(topic.as_bytes());
    key.push(b'/');
    key.extend_from_slice(&partition.to_be_bytes());
    Ok(key)
}

fn decode_position_key(key: &[u8]) -> Result<(String, i32), StoreError> {
    let corrupt = |why| StoreError::CorruptPosition { key: String::from_utf8_lossy(key).into_owned(), why };
    let rest = &key[POSITION_PREFIX.len()..];
    // The partition is the last four bytes; a '/' separates it from the topic.
    if rest.len() < 6 || rest[rest.len() - 5] != b'/' {
        return Err(corrupt("not pos/{topic}/{partition}"));
    }
    let (topic, partition) = rest.split_at(rest.len() - 5);
    let topic = std::str::from_utf8(topic).map_err(|_| corrupt("the topic is not UTF-8"))?;
    let partition: [u8; 4] = partition[1..].try_into().map_err(|_| corrupt("the partition is not 4 bytes"))?;
    let partition =
        i32::try_from(u32::from_be_bytes(partition)).map_err(|_| corrupt("the partition is out of range"))?;
    Ok((topic.to_string(), partition))
}

/// The rows a batch changed: puts and deletes, to be committed together.
///
/// Later changes to a key replace earlier ones (a delete after a put deletes, a put
/// after a delete puts), as if they had been applied one after the other. That is what
/// lets a reader merge the changes of many facts into one batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// `None` is a delete.
    rows: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl Changes {
    pub fn new() -> Changes {
        Changes::default()
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.rows.insert(key.into(), Some(value.into()));
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.rows.insert(key.into(), None);
    }

    /// Adds `later`'s changes after these ones (its changes win on the same key).
    pub fn extend(&mut self, later: Changes) {
        self.rows.extend(later.rows);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The number of keys changed (a key put twice counts once).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// The pending change of `key`: `Some(Some(value))` a put, `Some(None)` a delete,
    /// `None` untouched.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.rows.get(key).map(|v| v.as_deref())
    }

    /// The changes in key order: `(key, Some(value))` for a put, `(key, None)` for a delete.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.rows.iter().map(|(k, v)| (k.as_slice(), v.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("ledger-store-{name}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn rows(tree: &StoreTree, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        tree.scan_prefix(prefix).collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn commit_writes_rows_and_positions_together() {
        let dir = TempDir::new("commit");
        let store = Store::open(&dir.0).unwrap();
        let tree = store.tree("projector").unwrap();
        assert!(tree.positions().unwrap().is_empty());

        let mut changes = Changes::new();
        changes.put("loan/A1", "one");
        changes.put("loan/A2", "two");
        tree.commit(&changes, &[("loan.events", 0, 5), ("loan.events", 1, 7)]).unwrap();
        assert_eq!(tree.get(b"loan/A1").unwrap().as_deref(), Some(&b"one"[..]));
        let expected: BTreeMap<_, _> =
            [(("loan.events".to_string(), 0), 5), (("loan.events".to_string(), 1), 7)].into();
        assert_eq!(tree.positions().unwrap(), expected);

        // A delete and a put in one batch; a position moves on, another stays.
        let mut changes = Changes::new();
        changes.delete("loan/A1");
        changes.put("loan/A2", "two'");
        tree.commit(&changes, &[("loan.events", 0, 9)]).unwrap();
        assert_eq!(tree.get(b"loan/A1").unwrap(), None);
        assert_eq!(tree.get(b"loan/A2").unwrap().as_deref(), Some(&b"two'"[..]));
        let positions = tree.positions().unwrap();
        assert_eq!(positions[&("loan.events".to_string(), 0)], 9);
        assert_eq!(positions[&("loan.events".to_string(), 1)], 7);
        // Positions are not state rows.
        assert_eq!(rows(&tree, b"loan/").len(), 1);
    }

    #[test]
    fn a_refused_commit_changes_nothing() {
        let dir = TempDir::new("refused");
        let store = Store::open(&dir.0).unwrap();
        let tree = store.tree("t").unwrap();
        tree.commit(&Changes::new(), &[("in", 0, 1)]).unwrap();

        // A batch that touches a reserved key is refused as a whole: neither its other
        // rows nor its positions are written.
        let mut changes = Changes::new();
        changes.put("loan/A1", "x");
        changes.put("pos/in/\0\0\0\0", "y");
        assert!(matches!(tree.commit(&changes, &[("in", 0, 2)]), Err(StoreError::ReservedKey(_))));
        assert_eq!(tree.get(b"loan/A1").unwrap(), None);
        assert_eq!(tree.positions().unwrap()[&("in".to_string(), 0)], 1);

        // So is one with a position that cannot be stored.
        let mut changes = Changes::new();
        changes.put("loan/A1", "x");
        assert!(matches!(tree.commit(&changes, &[("in", -1, 2)]), Err(StoreError::NegativePartition { .. })));
        assert!(matches!(tree.commit(&changes, &[("a/b", 0, 2)]), Err(StoreError::BadTopic(_))));
        assert_eq!(tree.get(b"loan/A1").unwrap(), None);
    }

    #[test]
    fn later_changes_to_a_key_win() {
        let mut changes = Changes::new();
        changes.put("k", "1");
        changes.delete("k");
        assert_eq!(changes.get(b"k"), Some(None));
        changes.put("k", "2");
        assert_eq!(changes.get(b"k"), Some(Some(&b"2"[..])));
        assert_eq!(changes.len(), 1);

        let mut later = Changes::new();
        later.delete("k");
        later.put("j", "3");
        changes.extend(later);
        assert_eq!(changes.len(), 2);
        assert_eq!(changes.get(b"k"), Some(None));
        assert_eq!(changes.iter().collect::<Vec<_>>(), vec![(&b"j"[..], Some(&b"3"[..])), (&b"k"[..], None)]);

        let dir = TempDir::new("later");
        let store = Store::open(&dir.0).unwrap();
        let tree = store.tree("t").unwrap();
        let mut first = Changes::new();
        first.put("k", "old");
        tree.commit(&first, &[]).unwrap();
        tree.commit(&changes, &[]).unwrap();
        assert_eq!(tree.get(b"k").unwrap(), None);
        assert_eq!(tree.get(b"j").unwrap().as_deref(), Some(&b"3"[..]));
    }

    #[test]
    fn rows_and_positions_survive_reopen() {
        let dir = TempDir::new("reopen");
        {
            let store = Store::open(&dir.0).unwrap();
            let a = store.tree("accrual").unwrap();
            let b = store.tree("projector").unwrap();
            let mut changes = Changes::new();
            changes.put("loan/A1", "a");
            a.commit(&changes, &[("loan.events", 0, 3), ("loan.events", 2, 11)]).unwrap();
            b.commit(&Changes::new(), &[("loan.events", 0, 100), ("loan.applications", 3, i64::MAX)]).unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(&dir.0).unwrap();
        let mut names = store.tree_names();
        names.sort();
        assert_eq!(names, ["accrual", "projector"]);
        let a = store.tree("accrual").unwrap();
        let b = store.tree("projector").unwrap();
        assert_eq!(a.get(b"loan/A1").unwrap().as_deref(), Some(&b"a"[..]));
        assert_eq!(b.get(b"loan/A1").unwrap(), None, "trees are separate");
        let pa: Vec<_> = a.positions().unwrap().into_iter().collect();
        assert_eq!(pa, [(("loan.events".to_string(), 0), 3), (("loan.events".to_string(), 2), 11)]);
        let pb: Vec<_> = b.positions().unwrap().into_iter().collect();
        assert_eq!(pb, [(("loan.applications".to_string(), 3), i64::MAX), (("loan.events".to_string(), 0), 100)]);
        assert!(store.tree("new").unwrap().is_empty());
    }

    #[test]
    fn the_store_is_opened_once() {
        let dir = TempDir::new("lock");
        let store = Store::open(&dir.0).unwrap();
        let busy = Store::open_with_lock_wait(&dir.0, Duration::ZERO);
        assert!(matches!(&busy, Err(StoreError::Open { source, .. }) if is_lock_busy(source)), "{:?}", busy.err());
        let started = Instant::now();
        assert!(matches!(Store::open_with_lock_wait(&dir.0, Duration::from_millis(200)), Err(StoreError::Open { .. })));
        assert!(started.elapsed() >= Duration::from_millis(200));

        // Once the first one is closed, an open waiting for the lock gets it.
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(store);
        });
        let reopened = Store::open(&dir.0);
        closer.join().unwrap();
        assert!(reopened.is_ok(), "{:?}", reopened.err());
    }

    #[test]
    fn prefix_scans_are_sorted_bytewise() {
        let dir = TempDir::new("scan");
        let store = Store::open(&dir.0).unwrap();
        let tree = store.tree("t").unwrap();
        let mut changes = Changes::new();
        // Inserted out of order, with ids whose bytewise order is not their numeric one,
        // a multi-byte UTF-8 id, and neighbours outside the prefix.
        for id in ["L10", "L2", "L1", "l0", "L\u{00e9}", "L1/x", "L"] {
            changes.put(format!("loan/{id}"), id);
        }
        changes.put("loam/X", "before");
        changes.put("loan0", "after");
        changes.put("loans/X", "after");
        tree.commit(&changes, &[("loan.events", 0, 1)]).unwrap();
        let ids: Vec<String> = rows(&tree, b"loan/").into_iter().map(|(_, v)| String::from_utf8(v).unwrap()).collect();
        let mut expected = vec!["L10", "L2", "L1", "l0", "L\u{00e9}", "L1/x", "L"];
        expected.sort(); // String order is bytewise UTF-8 order.
        assert_eq!(ids, expected);
        assert_eq!(ids, ["L", "L1", "L1/x", "L10", "L2", "L\u{00e9}", "l0"]);
        assert!(rows(&tree, b"").windows(2).all(|w| w[0].0 < w[1].0));
        // Partitions sort numerically (big-endian), past 255 too.
        tree.commit(&Changes::new(), &[("t", 256, 1), ("t", 2, 1), ("t", 1, 1)]).unwrap();
        let keys: Vec<Vec<u8>> = rows(&tree, b"pos/t/").into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys.iter().map(|k| k[k.len() - 4..].to_vec()).collect::<Vec<_>>(),
            [[0, 0, 0, 1], [0, 0, 0, 2], [0, 0, 1, 0]]
        );
    }
}
