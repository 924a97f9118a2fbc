//! The single-node store: one JSON file per network under `dataDir`,
//! guarded by `flock` on a lock file so concurrent plugin processes on one
//! node see each other's writes and never interleave a transaction.
//!
//! Reads take the lock shared, transactions exclusive. A transaction is
//! written to a temporary file, synced, and renamed over the state file (then
//! the directory is synced): a process killed at any point leaves either the
//! old or the new state, never a torn one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Cmp, KeyValue, Op, Read, ReadResult, StoreError, TxnResult};

pub struct FileStore {
    dir: PathBuf,
}

#[derive(Default, Serialize, Deserialize)]
struct State {
    revision: i64,
    kvs: BTreeMap<String, Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    value: String,
    create_revision: i64,
    mod_revision: i64,
}

const STATE: &str = "state.json";
const LOCK: &str = "lock";

fn io_err(what: &str, path: &Path, e: io::Error) -> StoreError {
    StoreError::other(format!("{what} {}: {e}", path.display()))
}

impl FileStore {
    /// Opens (creating) the directory of one network.
    pub fn open(dir: &Path) -> Result<FileStore, StoreError> {
        fs::create_dir_all(dir).map_err(|e| io_err("cannot create data dir", dir, e))?;
        let s = FileStore { dir: dir.to_path_buf() };
        s.lock_file()?;
        Ok(s)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock_file(&self) -> Result<File, StoreError> {
        let p = self.dir.join(LOCK);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .map_err(|e| io_err("cannot open", &p, e))
    }

    fn load(&self) -> Result<State, StoreError> {
        let p = self.dir.join(STATE);
        match fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::other(format!("corrupt state file {}: {e}", p.display()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(io_err("cannot read", &p, e)),
        }
    }

    fn save(&self, st: &State) -> Result<(), StoreError> {
        let tmp = self.dir.join(format!("{STATE}.tmp"));
        let dst = self.dir.join(STATE);
        let bytes = serde_json::to_vec(st).expect("state serializes");
        let mut f = File::create(&tmp).map_err(|e| io_err("cannot create", &tmp, e))?;
        f.write_all(&bytes).and_then(|_| f.sync_all()).map_err(|e| io_err("cannot write", &tmp, e))?;
        fs::rename(&tmp, &dst).map_err(|e| io_err("cannot rename to", &dst, e))?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io_err("cannot sync", &self.dir, e))?;
        Ok(())
    }

    pub fn read(&self, reads: &[Read]) -> Result<ReadResult, StoreError> {
        let lock = self.lock_file()?;
        lock.lock_shared().map_err(|e| io_err("cannot lock", &self.dir.join(LOCK), e))?;
        let st = self.load()?;
        let results: Vec<Vec<KeyValue>> = reads.iter().map(|r| do_read(&st, r)).collect();
        let counts = reads
            .iter()
            .zip(&results)
            .map(|(r, kvs)| match r {
                Read::Count(p) => with_prefix(&st, p).count() as i64,
                _ => kvs.len() as i64,
            })
            .collect();
        Ok(ReadResult { revision: st.revision, results, counts })
        // the lock is released when `lock` is closed
    }

    pub fn txn(&self, cmps: &[Cmp], ops: &[Op], on_failure: &[Read]) -> Result<TxnResult, StoreError> {
        let lock = self.lock_file()?;
        lock.lock().map_err(|e| io_err("cannot lock", &self.dir.join(LOCK), e))?;
        let mut st = self.load()?;
        if !cmps.iter().all(|c| holds(&st, c)) {
            let failure_reads = on_failure.iter().map(|r| do_read(&st, r)).collect();
            return Ok(TxnResult { succeeded: false, revision: st.revision, failure_reads });
        }
        if !ops.is_empty() {
            let rev = st.revision + 1;
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        let value = String::from_utf8(v.clone())
                            .map_err(|_| StoreError::other(format!("non-UTF-8 value for {k}")))?;
                        let create = st.kvs.get(k).map_or(rev, |e| e.create_revision);
                        st.kvs.insert(k.clone(), Entry { value, create_revision: create, mod_revision: rev });
                    }
                    Op::Delete(k) => {
                        st.kvs.remove(k);
                    }
                }
            }
            st.revision = rev;
            self.save(&st)?;
        }
        Ok(TxnResult { succeeded: true, revision: st.revision, failure_reads: Vec::new() })
    }
}

fn kv(k: &str, e: &Entry, keys_only: bool) -> KeyValue {
    KeyValue {
        key: k.to_string(),
        value: if keys_only { Vec::new() } else { e.value.as_bytes().to_vec() },
        create_revision: e.create_revision,
        mod_revision: e.mod_revision,
    }
}

fn with_prefix<'a>(st: &'a State, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
    st.kvs.range(prefix.to_string()..).take_while(move |(k, _)| k.starts_with(prefix))
}

fn do_read(st: &State, r: &Read) -> Vec<KeyValue> {
    match r {
        Read::Get(k) => st.kvs.get(k).map(|e| kv(k, e, false)).into_iter().collect(),
        Read::Prefix { prefix, keys_only } => with_prefix(st, prefix).map(|(k, e)| kv(k, e, *keys_only)).collect(),
        Read::Count(_) => Vec::new(),
    }
}

fn holds(st: &State, c: &Cmp) -> bool {
    match c {
        Cmp::Absent(k) => !st.kvs.contains_key(k),
        Cmp::Exists(k) => st.kvs.contains_key(k),
        Cmp::ModRevision(k, r) => st.kvs.get(k).is_some_and(|e| e.mod_revision == *r),
        Cmp::PrefixEmpty(p) => with_prefix(st, p).next().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vswitch-ipam-filestore-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn txn_semantics() {
        let d = tmpdir("txn");
        let s = FileStore::open(&d).unwrap();
        let put = |k: &str| Op::Put(k.into(), b"v".to_vec());
        let r = s
            .txn(&[Cmp::Absent("/a/x".into()), Cmp::PrefixEmpty("/a/".into())], &[put("/a/x"), put("/b")], &[])
            .unwrap();
        assert!(r.succeeded);
        assert_eq!(r.revision, 1);
        let r = s.txn(&[Cmp::Absent("/a/x".into())], &[put("/a/y")], &[Read::get("/a/x")]).unwrap();
        assert!(!r.succeeded);
        assert_eq!(r.failure_reads[0][0].mod_revision, 1);
        assert!(!s.txn(&[Cmp::PrefixEmpty("/a/".into())], &[], &[]).unwrap().succeeded);
        assert!(s.txn(&[Cmp::PrefixEmpty("/c/".into()), Cmp::Exists("/b".into())], &[], &[]).unwrap().succeeded);
        let r = s.txn(&[Cmp::ModRevision("/a/x".into(), 1)], &[put("/a/x"), Op::Delete("/b".into())], &[]).unwrap();
        assert!(r.succeeded);
        let got = s.read(&[Read::prefix_keys("/a/"), Read::get("/b"), Read::count("/a/")]).unwrap();
        assert_eq!(got.counts, vec![1, 0, 1]);
        assert!(got.results[2].is_empty());
        assert_eq!(got.revision, 2);
        assert_eq!(got.results[0].len(), 1);
        assert_eq!(got.results[0][0].create_revision, 1);
        assert_eq!(got.results[0][0].mod_revision, 2);
        assert!(got.results[0][0].value.is_empty());
        assert!(got.results[1].is_empty());
        // state survives reopening
        drop(s);
        let s = FileStore::open(&d).unwrap();
        assert_eq!(s.read(&[Read::prefix("/a/")]).unwrap().results[0][0].value, b"v");
        fs::remove_dir_all(&d).unwrap();
    }
}
