//! The key-value store the allocator keeps all its state in: etcd for a
//! cluster, or a file under `dataDir` for one node. Both give the same
//! model: keys with create/mod revisions, multi-key reads from one snapshot,
//! and transactions that apply all their writes only when all their
//! comparisons hold.

mod etcd;
mod file;

use std::fmt;

pub use etcd::EtcdStore;
pub use file::FileStore;

use crate::config::{IpamConfig, StoreConfig};

/// One key as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
}

/// What to read.
#[derive(Clone, Debug)]
pub enum Read {
    /// One key (zero or one results).
    Get(String),
    /// Every key starting with the prefix, ascending.
    Prefix { prefix: String, keys_only: bool },
    /// Only the number of keys starting with the prefix (no key is returned).
    Count(String),
}

impl Read {
    pub fn get(key: impl Into<String>) -> Read {
        Read::Get(key.into())
    }

    pub fn prefix(prefix: impl Into<String>) -> Read {
        Read::Prefix { prefix: prefix.into(), keys_only: false }
    }

    pub fn prefix_keys(prefix: impl Into<String>) -> Read {
        Read::Prefix { prefix: prefix.into(), keys_only: true }
    }

    pub fn count(prefix: impl Into<String>) -> Read {
        Read::Count(prefix.into())
    }
}

/// A transaction comparison.
#[derive(Clone, Debug)]
pub enum Cmp {
    /// The key does not exist.
    Absent(String),
    /// The key exists.
    Exists(String),
    /// The key exists and was last written at this revision.
    ModRevision(String, i64),
    /// No key starts with the prefix.
    PrefixEmpty(String),
}

/// A transaction write.
#[derive(Clone, Debug)]
pub enum Op {
    Put(String, Vec<u8>),
    Delete(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Sees every write acknowledged before the read started.
    Linearizable,
    /// May be served by any member from its local state, possibly stale:
    /// only for hints that a later transaction checks.
    Serializable,
}

/// Results of a read: the store revision it saw and, per [`Read`], the keys
/// and how many there are (for [`Read::Count`] only the number).
#[derive(Clone, Debug, Default)]
pub struct ReadResult {
    pub revision: i64,
    pub results: Vec<Vec<KeyValue>>,
    pub counts: Vec<i64>,
}

/// Outcome of a transaction: `succeeded`, or the `on_failure` reads taken
/// in the same snapshot that failed the comparisons.
#[derive(Clone, Debug)]
pub struct TxnResult {
    pub succeeded: bool,
    pub revision: i64,
    pub failure_reads: Vec<Vec<KeyValue>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// Unreachable, no leader, timed out: may clear up; retried.
    Unavailable,
    /// Anything else (bad data, local I/O errors).
    Other,
}

#[derive(Clone, Debug)]
pub struct StoreError {
    pub kind: StoreErrorKind,
    pub msg: String,
}

impl StoreError {
    pub fn unavailable(msg: impl Into<String>) -> Self {
        StoreError { kind: StoreErrorKind::Unavailable, msg: msg.into() }
    }

    pub fn other(msg: impl Into<String>) -> Self {
        StoreError { kind: StoreErrorKind::Other, msg: msg.into() }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for StoreError {}

/// The store of one network's pool.
pub enum Store {
    Etcd(Box<EtcdStore>),
    File(FileStore),
}

impl Store {
    /// Connects (etcd: lazily; the first request dials) or opens the data directory.
    pub async fn open(cfg: &IpamConfig) -> Result<Store, StoreError> {
        match &cfg.store {
            StoreConfig::Etcd(e) => Ok(Store::Etcd(Box::new(EtcdStore::connect(e).await?))),
            StoreConfig::File { dir } => Ok(Store::File(FileStore::open(&dir.join(&cfg.network))?)),
        }
    }

    /// A short description for messages (`etcd http://a:2379,...` or `data dir /var/...`).
    pub fn describe(&self) -> String {
        match self {
            Store::Etcd(s) => format!("etcd {}", s.endpoints().join(",")),
            Store::File(s) => format!("data dir {}", s.dir().display()),
        }
    }

    pub async fn read(&self, reads: &[Read], consistency: Consistency) -> Result<ReadResult, StoreError> {
        match self {
            Store::Etcd(s) => s.read(reads, consistency).await,
            Store::File(s) => s.read(reads),
        }
    }

    pub async fn txn(&self, cmps: &[Cmp], ops: &[Op], on_failure: &[Read]) -> Result<TxnResult, StoreError> {
        match self {
            Store::Etcd(s) => s.txn(cmps, ops, on_failure).await,
            Store::File(s) => s.txn(cmps, ops, on_failure),
        }
    }
}
