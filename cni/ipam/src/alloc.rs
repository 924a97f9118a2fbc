//! The allocator: ADD, DEL, CHECK, GC and STATUS against the store.
//!
//! Why no address is ever handed out twice: an address is allocated only by
//! the transaction that creates its `ips/<ip>` key, and that transaction
//! requires the key to be absent. Everything else — block ownership, the
//! node's idea of what is free, cached hints, serializable reads — only
//! decides which address to *try*; a wrong guess fails the transaction and
//! is retried. The same transaction creates the attachment key (and requires
//! it absent), so an ADD takes effect at most once even when it is retried
//! after a lost reply, and all of an attachment's addresses (dual-stack)
//! appear or none does.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use vswitch_cni_types::{Attachment, CniError, CniResult, IpConfig, K8sArgs, Version};

use crate::config::{parse_ip_maybe_prefix, IpamConfig, StoreConfig, DEFAULT_ETCD_PREFIX};
use crate::keys::{now_unix, AttachedIp, AttachmentRecord, BlockRecord, IpRecord, Keys, MetaRecord, Owner};
use crate::pool::{self, RangeSet};
use crate::store::{Cmp, Consistency, KeyValue, Op, Read, Store, StoreError, StoreErrorKind};

/// Plugin-specific error codes.
pub mod codes {
    /// No free address left in a range set.
    pub const EXHAUSTED: u32 = 100;
    /// A requested address is allocated to another attachment.
    pub const ADDRESS_IN_USE: u32 = 101;
    /// A requested address is not one this network may hand out.
    pub const ADDRESS_NOT_AVAILABLE: u32 = 102;
    /// CHECK: the attachment has no allocation (or an inconsistent one).
    pub const NO_ALLOCATION: u32 = 103;
    /// CHECK: the allocation differs from `prevResult`.
    pub const ALLOCATION_MISMATCH: u32 = 104;
    /// GC could not remove everything it should have.
    pub const GC_INCOMPLETE: u32 = 105;
}

/// How many free addresses to choose among (randomly): enough that
/// concurrent allocators on one node seldom pick the same one.
const CANDIDATES: usize = 16;
/// Reads per round trip when scanning other nodes' blocks.
const SCAN_CHUNK: usize = 32;
/// How long this process remembers its own commits (longer than any
/// member lags behind in practice).
const RECENT: Duration = Duration::from_secs(5);

/// The addresses of a block as one read saw them.
struct Usage {
    ips: HashSet<IpAddr>,
    revision: i64,
}

/// An ADD request.
#[derive(Clone, Debug, Default)]
pub struct AddRequest {
    pub attachment: Attachment,
    pub pod: K8sArgs,
    /// Requested addresses, `<ip>[/<prefix>]`: at most one per range set.
    pub requested: Vec<String>,
}

impl AddRequest {
    pub fn new(container_id: impl Into<String>, ifname: impl Into<String>) -> Self {
        AddRequest { attachment: Attachment::new(container_id, ifname), ..Default::default() }
    }
}

/// The addresses of one attachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub owner: Owner,
    pub ips: Vec<AttachedIp>,
    /// True when ADD found the attachment already allocated and returned it.
    pub existing: bool,
}

impl Allocation {
    pub fn addresses(&self) -> Vec<IpAddr> {
        self.ips.iter().map(|a| a.address.addr()).collect()
    }
}

/// What GC did.
#[derive(Clone, Debug, Default)]
pub struct GcReport {
    /// Attachments of this node not in the valid list, released.
    pub released: Vec<Allocation>,
    /// Address keys without their attachment, removed (none unless the store was edited by hand).
    pub orphans_removed: usize,
    pub blocks_released: Vec<IpNet>,
    /// What could not be done (GC goes on past errors).
    pub errors: Vec<String>,
}

/// STATUS details.
#[derive(Clone, Debug)]
pub struct StatusReport {
    /// `(allocated, usable)` per range set.
    pub usage: Vec<(u128, u128)>,
}

enum Fail {
    Store(StoreError),
    Cni(CniError),
    /// A transaction lost a race; try again.
    Conflict,
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<CniError> for Fail {
    fn from(e: CniError) -> Self {
        Fail::Cni(e)
    }
}

type R<T> = Result<T, Fail>;

fn corrupt(key: &str, e: impl std::fmt::Display) -> Fail {
    Fail::Store(StoreError::other(format!("cannot decode {key}: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(kv: &KeyValue) -> R<T> {
    serde_json::from_slice(&kv.value).map_err(|e| corrupt(&kv.key, e))
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("record serializes")
}

pub(crate) fn debug(msg: impl FnOnce() -> String) {
    if std::env::var_os("VSWITCH_IPAM_DEBUG").is_some() {
        eprintln!("vswitch-ipam: {}", msg());
    }
}

/// Jittered exponential backoff bounded by the operation's deadline.
struct Backoff {
    deadline: Instant,
    conflicts: u32,
    failures: u32,
    last: Option<String>,
}

impl Backoff {
    fn new(timeout: Duration) -> Self {
        Backoff { deadline: Instant::now() + timeout, conflicts: 0, failures: 0, last: None }
    }

    async fn sleep(&self, base_ms: u64, n: u32, cap_ms: u64) -> bool {
        let ms = (base_ms << n.min(10)).min(cap_ms);
        let d = Duration::from_millis(fastrand::u64(ms / 2..=ms.max(1)));
        if Instant::now() + d >= self.deadline {
            return false;
        }
        tokio::time::sleep(d).await;
        true
    }

    async fn conflict(&mut self) -> bool {
        self.conflicts += 1;
        // The first few retries are immediate: most conflicts are two
        // allocators that picked the same free address.
        if self.conflicts <= 3 {
            return Instant::now() < self.deadline;
        }
        self.sleep(1, self.conflicts - 3, 100).await
    }

    async fn unavailable(&mut self, e: &StoreError) -> bool {
        self.failures += 1;
        self.last = Some(e.msg.clone());
        self.sleep(20, self.failures, 1000).await
    }

    fn give_up(&self, store: &str, what: &str) -> CniError {
        match &self.last {
            Some(e) => CniError::try_again_later(format!("{what}: {store} unavailable"), e.clone()),
            None => CniError::try_again_later(
                format!("{what}: gave up after {} conflicting attempts", self.conflicts),
                "too many concurrent allocations in this network; retry",
            ),
        }
    }
}

/// One network's allocator (one per network and node; cheap to share
/// between tasks: every method takes `&self`).
pub struct Ipam {
    cfg: IpamConfig,
    store: Store,
    keys: Keys,
    /// This node's blocks as last seen (a hint: saves round trips).
    own_hint: Mutex<OwnHint>,
    /// Held while claiming a block.
    claim_lock: tokio::sync::Mutex<()>,
    /// Addresses tasks of this process are trying to allocate right now.
    pending: Mutex<HashSet<IpAddr>>,
    /// Addresses this process allocated lately, with the revision of the
    /// commit: a serializable read older than that does not show them yet.
    recent: Mutex<HashMap<IpAddr, (i64, Instant)>>,
    meta_checked: AtomicBool,
    /// Retries so far (lost races and store errors), for benchmarks and tests.
    retries: AtomicU64,
}

impl Ipam {
    /// Opens the store of `cfg` (etcd connects lazily; the first request dials).
    pub async fn open(cfg: IpamConfig) -> Result<Ipam, CniError> {
        let store = Store::open(&cfg).await.map_err(|e| match e.kind {
            StoreErrorKind::Unavailable => CniError::try_again_later("cannot reach the IPAM store", e.msg),
            StoreErrorKind::Other => CniError::io("cannot open the IPAM store", e.msg),
        })?;
        let prefix = match &cfg.store {
            StoreConfig::Etcd(e) => e.prefix.clone(),
            StoreConfig::File { .. } => DEFAULT_ETCD_PREFIX.to_string(),
        };
        let keys = Keys::new(&prefix, &cfg.network);
        Ok(Ipam {
            cfg,
            store,
            keys,
            own_hint: Mutex::new(OwnHint::default()),
            claim_lock: tokio::sync::Mutex::new(()),
            pending: Mutex::new(HashSet::new()),
            recent: Mutex::new(HashMap::new()),
            meta_checked: AtomicBool::new(false),
            retries: AtomicU64::new(0),
        })
    }

    /// How many times operations were retried (lost races, store errors).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &IpamConfig {
        &self.cfg
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `step` until it is done, retrying conflicts and store outages
    /// with backoff until the configured timeout (then error 11).
    async fn run<T, F, Fut>(&self, what: &str, mut step: F) -> Result<T, CniError>
    where
        F: FnMut(Consistency) -> Fut,
        Fut: Future<Output = R<T>>,
    {
        let mut bo = Backoff::new(self.cfg.timeout);
        let mut consistency = Consistency::Serializable;
        loop {
            let keep_going = match step(consistency).await {
                Ok(v) => return Ok(v),
                Err(Fail::Cni(e)) => return Err(e),
                Err(Fail::Store(e)) if e.kind == StoreErrorKind::Other => {
                    return Err(CniError::io(format!("{what}: {} failed", self.store.describe()), e.msg));
                }
                Err(Fail::Store(e)) => {
                    debug(|| format!("{what}: {e}; retrying"));
                    bo.unavailable(&e).await
                }
                Err(Fail::Conflict) => bo.conflict().await,
            };
            self.retries.fetch_add(1, Ordering::Relaxed);
            // After any failure, read what is committed, not a member's possibly stale copy.
            consistency = Consistency::Linearizable;
            if !keep_going {
                return Err(bo.give_up(&self.store.describe(), what));
            }
        }
    }

    // ---------------------------------------------------------------- ADD

    /// Allocates one address per range set to the attachment, or returns the
    /// addresses it already has.
    pub async fn add(&self, req: &AddRequest) -> Result<Allocation, CniError> {
        let requested = self.parse_requested(&req.requested)?;
        let owner = Owner {
            container_id: req.attachment.container_id.clone(),
            ifname: req.attachment.ifname.clone(),
            node: self.cfg.node.clone(),
            pod_namespace: req.pod.pod_namespace.clone(),
            pod_name: req.pod.pod_name.clone(),
            pod_uid: req.pod.pod_uid.clone(),
        };
        self.run("ADD", |c| self.try_add(&owner, &requested, c)).await
    }

    fn parse_requested(&self, reqs: &[String]) -> Result<Vec<Option<IpAddr>>, CniError> {
        let pool = &self.cfg.pool;
        let mut out = vec![None; pool.sets.len()];
        for s in reqs {
            let unavailable = |why: String| {
                CniError::plugin(codes::ADDRESS_NOT_AVAILABLE, format!("requested address {s} is not available"), why)
            };
            let ip = parse_ip_maybe_prefix(s).ok_or_else(|| unavailable("not an IP address".into()))?;
            let set = pool.set_of(ip).ok_or_else(|| {
                let all: Vec<String> = pool.sets.iter().map(RangeSet::describe).collect();
                unavailable(format!("not in any range of network {} ({})", self.cfg.network, all.join("; ")))
            })?;
            if !pool.usable(set, ip) {
                return Err(unavailable(format!(
                    "it is reserved in network {} (network or broadcast address, gateway, or excluded)",
                    self.cfg.network
                )));
            }
            if let Some(prev) = out[set.index].replace(ip) {
                return Err(unavailable(format!("{prev} is requested from the same range set")));
            }
        }
        Ok(out)
    }

    async fn try_add(&self, owner: &Owner, requested: &[Option<IpAddr>], c: Consistency) -> R<Allocation> {
        let node = &self.cfg.node;
        let att_key = self.keys.attachment(&owner.attachment());
        // Read the attachment, this node's block index and the blocks most
        // likely to have room, in one round trip.
        let hot = self.own_hint.lock().unwrap().hot();
        let mut reads = vec![Read::get(&att_key), Read::prefix_keys(self.keys.node_blocks_prefix(node))];
        reads.extend(hot.iter().map(|b| Read::prefix_keys(self.keys.block_ips_prefix(b))));
        let rr = self.store.read(&reads, c).await?;
        if let Some(kv) = rr.results[0].first() {
            return self.existing(kv, owner);
        }
        let nb_prefix = self.keys.node_blocks_prefix(node);
        let index: Vec<IpNet> = rr.results[1]
            .iter()
            .filter_map(|kv| Keys::suffix::<IpNet>(&kv.key, &nb_prefix))
            .filter(|b| self.cfg.pool.set_of_block(b).is_some())
            .collect();
        // The index as read, plus blocks this process claimed after the
        // revision the read was served at.
        let mut own = self.own_hint.lock().unwrap().observe(&index, rr.revision);
        let mut used: HashMap<IpNet, Usage> = HashMap::new();
        for (b, kvs) in hot.iter().zip(&rr.results[2..]) {
            if own.contains(b) {
                used.insert(*b, self.block_ips(b, kvs, rr.revision));
            }
        }

        // Choose one address per range set.
        let mut reserved = Reserved { pending: &self.pending, ips: Vec::new(), saw_pending: false };
        let mut plan: Vec<(usize, IpAddr, IpNet)> = Vec::new();
        for set in &self.cfg.pool.sets {
            if let Some(ip) = requested[set.index] {
                let block = set.block_of(ip).expect("requested address is in the set");
                self.ensure_block(block, c).await?;
                plan.push((set.index, ip, block));
                continue;
            }
            if let Some((ip, block)) = self.pick(set, &own, &used, &mut reserved) {
                plan.push((set.index, ip, block));
                continue;
            }
            // The blocks read so far are full: count what every block of
            // this node holds and read the ones with room.
            let unread: Vec<IpNet> =
                own.iter().filter(|b| set.has_block(b) && !used.contains_key(b)).copied().collect();
            if !unread.is_empty() {
                used.extend(self.read_blocks_with_room(set, &unread, c).await?);
                if let Some((ip, block)) = self.pick(set, &own, &used, &mut reserved) {
                    plan.push((set.index, ip, block));
                    continue;
                }
            }
            // One claim at a time per process: tasks that queued behind a
            // claim use the block it got (read outside the lock) instead of
            // claiming one each.
            let claiming = self.claim_lock.lock().await;
            let fresh: Vec<IpNet> = {
                let hint = self.own_hint.lock().unwrap();
                hint.blocks.iter().filter(|b| set.has_block(b) && !own.contains(b)).copied().collect()
            };
            if !fresh.is_empty() {
                drop(claiming);
                own.extend(&fresh);
                used.extend(self.read_block_usage(&fresh, Consistency::Linearizable).await?);
                match self.pick(set, &fresh, &used, &mut reserved) {
                    Some((ip, block)) => {
                        plan.push((set.index, ip, block));
                        continue;
                    }
                    None => return Err(Fail::Conflict),
                }
            }
            match self.claim_block(set, &own, c).await? {
                Claim::Claimed(block, rev) => {
                    own.push(block);
                    self.own_hint.lock().unwrap().add(block, rev);
                    let usage = self.read_block_usage(&[block], Consistency::Linearizable).await?;
                    used.extend(usage);
                    match self.pick(set, &[block], &used, &mut reserved) {
                        Some((ip, block)) => plan.push((set.index, ip, block)),
                        None => return Err(Fail::Conflict),
                    }
                }
                Claim::NoneFree(claimed) => {
                    drop(claiming);
                    let mut all = own.clone();
                    all.extend(claimed.into_iter().filter(|b| !own.contains(b)));
                    match self.borrow(set, &all, c, &mut reserved).await? {
                        Some((ip, block)) => plan.push((set.index, ip, block)),
                        // A stale view may look full; only a linearizable one may
                        // say so. Addresses other tasks here are trying may come free.
                        None if c == Consistency::Serializable || reserved.saw_pending => return Err(Fail::Conflict),
                        None => return Err(Fail::Cni(self.exhausted(set))),
                    }
                }
            }
        }

        // Commit: everything or nothing.
        let now = now_unix();
        let ips: Vec<AttachedIp> = plan
            .iter()
            .map(|&(si, ip, block)| {
                let range = self.cfg.pool.sets[si].range_of(ip).expect("planned address is in its set");
                AttachedIp {
                    address: IpNet::new(ip, range.subnet.prefix_len()).expect("prefix fits"),
                    gateway: range.gateway,
                    block,
                    range_set: si,
                }
            })
            .collect();
        let rec = AttachmentRecord { owner: owner.clone(), ips: ips.clone(), created_at: now };
        let mut cmps = vec![Cmp::Absent(att_key.clone())];
        let mut ops = vec![Op::Put(att_key.clone(), encode(&rec))];
        let mut on_failure = vec![Read::get(&att_key)];
        for a in &ips {
            let ip = a.address.addr();
            let ip_key = self.keys.ip(ip);
            cmps.push(Cmp::Absent(ip_key.clone()));
            cmps.push(Cmp::Exists(self.keys.block(&a.block)));
            let ip_rec = IpRecord { owner: owner.clone(), block: a.block, created_at: now };
            ops.push(Op::Put(ip_key.clone(), encode(&ip_rec)));
            ops.push(Op::Put(self.keys.block_ip(&a.block, ip), Vec::new()));
            on_failure.push(Read::get(ip_key));
            on_failure.push(Read::get(self.keys.block(&a.block)));
        }
        let t = self.store.txn(&cmps, &ops, &on_failure).await?;
        if t.succeeded {
            let mut recent = self.recent.lock().unwrap();
            for a in &ips {
                recent.insert(a.address.addr(), (t.revision, Instant::now()));
            }
            drop(recent);
            debug(|| format!("ADD {}: {:?}", owner.describe(), ips.iter().map(|a| a.address).collect::<Vec<_>>()));
            return Ok(Allocation { owner: owner.clone(), ips, existing: false });
        }
        if let Some(kv) = t.failure_reads[0].first() {
            return self.existing(kv, owner);
        }
        for (i, a) in ips.iter().enumerate() {
            let ip_kvs = &t.failure_reads[1 + 2 * i];
            if let Some(kv) = ip_kvs.first() {
                if requested[a.range_set].is_some() {
                    let holder: IpRecord = decode(kv)?;
                    return Err(Fail::Cni(CniError::plugin(
                        codes::ADDRESS_IN_USE,
                        format!("requested address {} is already allocated", a.address.addr()),
                        format!("held by {} in network {}", holder.owner.describe(), self.cfg.network),
                    )));
                }
            }
            if t.failure_reads[2 + 2 * i].is_empty() {
                // The block was released meanwhile.
                self.own_hint.lock().unwrap().remove(a.block);
            }
        }
        Err(Fail::Conflict)
    }

    fn existing(&self, kv: &KeyValue, owner: &Owner) -> R<Allocation> {
        let rec: AttachmentRecord = decode(kv)?;
        if rec.owner.attachment() != owner.attachment() {
            return Err(corrupt(&kv.key, "record names another attachment"));
        }
        Ok(Allocation { owner: rec.owner, ips: rec.ips, existing: true })
    }

    fn block_ips(&self, block: &IpNet, kvs: &[KeyValue], revision: i64) -> Usage {
        let prefix = self.keys.block_ips_prefix(block);
        Usage { ips: kvs.iter().filter_map(|kv| Keys::suffix::<IpAddr>(&kv.key, &prefix)).collect(), revision }
    }

    async fn read_block_usage(&self, blocks: &[IpNet], c: Consistency) -> R<HashMap<IpNet, Usage>> {
        let mut out = HashMap::new();
        for chunk in blocks.chunks(SCAN_CHUNK) {
            let reads: Vec<Read> = chunk.iter().map(|b| Read::prefix_keys(self.keys.block_ips_prefix(b))).collect();
            let rr = self.store.read(&reads, c).await?;
            for (b, kvs) in chunk.iter().zip(&rr.results) {
                out.insert(*b, self.block_ips(b, kvs, rr.revision));
            }
        }
        Ok(out)
    }

    /// Counts the addresses of `blocks` and reads the ones with room.
    async fn read_blocks_with_room(
        &self,
        set: &RangeSet,
        blocks: &[IpNet],
        c: Consistency,
    ) -> R<HashMap<IpNet, Usage>> {
        let mut room = Vec::new();
        for chunk in blocks.chunks(SCAN_CHUNK) {
            let reads: Vec<Read> = chunk.iter().map(|b| Read::count(self.keys.block_ips_prefix(b))).collect();
            let rr = self.store.read(&reads, c).await?;
            let mut hint = self.own_hint.lock().unwrap();
            for (b, n) in chunk.iter().zip(&rr.counts) {
                if (*n as usize) < self.cfg.pool.usable_in_block(set, b).len() {
                    room.push(*b);
                } else {
                    hint.full.insert(*b);
                }
            }
        }
        room.truncate(4);
        self.read_block_usage(&room, c).await
    }

    /// A random address among the first free ones of `blocks` (in address
    /// order), skipping those other tasks of this process are trying now;
    /// reserved until `reserved` is dropped.
    fn pick(
        &self,
        set: &RangeSet,
        blocks: &[IpNet],
        used: &HashMap<IpNet, Usage>,
        reserved: &mut Reserved<'_>,
    ) -> Option<(IpAddr, IpNet)> {
        let mut pending = self.pending.lock().unwrap();
        let mut recent = self.recent.lock().unwrap();
        recent.retain(|_, (_, at)| at.elapsed() < RECENT);
        let mut cands = Vec::new();
        for b in blocks.iter().filter(|b| set.has_block(b)) {
            let Some(u) = used.get(b) else { continue };
            // Taken: what the read saw, and what this process committed after
            // the revision the read was served at (a member may lag behind).
            let taken = |ip: &IpAddr| u.ips.contains(ip) || recent.get(ip).is_some_and(|(rev, _)| *rev > u.revision);
            let free: Vec<IpAddr> = self.cfg.pool.usable_in_block(set, b).into_iter().filter(|ip| !taken(ip)).collect();
            if free.is_empty() {
                self.own_hint.lock().unwrap().full.insert(*b);
            }
            let (n, before) = (free.len(), cands.len());
            cands.extend(free.into_iter().filter(|ip| !pending.contains(ip)).map(|ip| (ip, *b)));
            reserved.saw_pending |= cands.len() - before < n;
            if cands.len() >= CANDIDATES {
                break;
            }
        }
        if cands.is_empty() {
            return None;
        }
        let pick = cands[fastrand::usize(..cands.len().min(CANDIDATES))];
        pending.insert(pick.0);
        reserved.ips.push(pick.0);
        Some(pick)
    }

    /// Makes sure the block of a requested address exists (claiming it for
    /// this node when nobody has it).
    async fn ensure_block(&self, block: IpNet, c: Consistency) -> R<()> {
        let key = self.keys.block(&block);
        let rr = self.store.read(&[Read::get(&key)], c).await?;
        if !rr.results[0].is_empty() {
            return Ok(());
        }
        self.check_meta().await?;
        let t = self.store.txn(&[Cmp::Absent(key.clone())], &self.claim_ops(&block, rr.revision), &[]).await?;
        if t.succeeded {
            self.own_hint.lock().unwrap().add(block, t.revision);
        }
        // Otherwise someone else claimed it: also fine, the address may still be free.
        Ok(())
    }

    fn claim_ops(&self, block: &IpNet, generation: i64) -> Vec<Op> {
        let rec = BlockRecord { node: self.cfg.node.clone(), generation, claimed_at: now_unix() };
        vec![
            Op::Put(self.keys.block(block), encode(&rec)),
            Op::Put(self.keys.node_block(&self.cfg.node, block), Vec::new()),
        ]
    }

    /// Claims a free block of `set` for this node, or reports every claimed block of the set.
    async fn claim_block(&self, set: &RangeSet, own: &[IpNet], c: Consistency) -> R<Claim> {
        self.check_meta().await?;
        let rr = self.store.read(&[Read::prefix(self.keys.blocks_prefix())], c).await?;
        let bp = self.keys.blocks_prefix();
        let mut claimed: HashMap<IpNet, (BlockRecord, i64)> = HashMap::new();
        for kv in &rr.results[0] {
            if let Some(b) = Keys::suffix::<IpNet>(&kv.key, &bp) {
                if set.has_block(&b) {
                    claimed.insert(b, (decode(kv)?, kv.mod_revision));
                }
            }
        }
        // A block of ours the index did not show (stale read): use it.
        if let Some((b, (_, rev))) = claimed.iter().find(|(b, (r, _))| r.node == self.cfg.node && !own.contains(b)) {
            return Ok(Claim::Claimed(*b, *rev));
        }
        let n = set.block_count();
        // Start where this node's name hashes to: claims by one node's
        // concurrent allocators collide on one block (and share it), claims
        // by different nodes mostly do not collide at all.
        let start = fnv1a(self.cfg.node.as_bytes()) as u128 % n;
        let free = (0..n.min(1 << 20)).map(|i| set.block_at((start + i) % n)).find(|b| !claimed.contains_key(b));
        match free {
            Some(block) => self.try_claim(block, rr.revision).await,
            None => Ok(Claim::NoneFree(claimed.into_keys().collect())),
        }
    }

    async fn try_claim(&self, block: IpNet, generation: i64) -> R<Claim> {
        let key = self.keys.block(&block);
        let t = self
            .store
            .txn(&[Cmp::Absent(key.clone())], &self.claim_ops(&block, generation), &[Read::get(&key)])
            .await?;
        if t.succeeded {
            debug(|| format!("node {} claimed block {block}", self.cfg.node));
            return Ok(Claim::Claimed(block, t.revision));
        }
        match t.failure_reads[0].first() {
            Some(kv) if decode::<BlockRecord>(kv)?.node == self.cfg.node => Ok(Claim::Claimed(block, kv.mod_revision)),
            _ => Err(Fail::Conflict),
        }
    }

    /// Every block is claimed: take a free address from any block (other
    /// nodes' included). Still duplicate-free: the address key decides.
    async fn borrow(
        &self,
        set: &RangeSet,
        blocks: &[IpNet],
        c: Consistency,
        reserved: &mut Reserved<'_>,
    ) -> R<Option<(IpAddr, IpNet)>> {
        let mut blocks = blocks.to_vec();
        blocks.sort_by_key(|b| pool::to_u128(b.network()));
        if !blocks.is_empty() {
            // Borrowers start at different places so they do not all fight over one block.
            let k = fastrand::usize(..blocks.len());
            blocks.rotate_left(k);
        }
        for chunk in blocks.chunks(SCAN_CHUNK) {
            let usage = self.read_block_usage(chunk, c).await?;
            if let Some(pick) = self.pick(set, chunk, &usage, reserved) {
                return Ok(Some(pick));
            }
        }
        Ok(None)
    }

    fn exhausted(&self, set: &RangeSet) -> CniError {
        CniError::plugin(
            codes::EXHAUSTED,
            format!("no free address in range set {} ({}) of network {}", set.index, set.describe(), self.cfg.network),
            format!("all {} usable addresses are allocated", self.cfg.pool.usable_count(set)),
        )
    }

    /// Every node must cut the pool into the same blocks.
    async fn check_meta(&self) -> R<()> {
        if self.meta_checked.load(Ordering::Relaxed) {
            return Ok(());
        }
        let want = MetaRecord { block_v4: self.cfg.block_v4, block_v6: self.cfg.block_v6 };
        let key = self.keys.meta();
        let t = self
            .store
            .txn(&[Cmp::Absent(key.clone())], &[Op::Put(key.clone(), encode(&want))], &[Read::get(&key)])
            .await?;
        if !t.succeeded {
            if let Some(kv) = t.failure_reads[0].first() {
                let have: MetaRecord = decode(kv)?;
                if have != want {
                    return Err(Fail::Cni(CniError::invalid_config(
                        "blockSize differs from the network's",
                        format!(
                            "network {} is cut into /{} (IPv4) and /{} (IPv6) blocks; this configuration says /{} and /{}",
                            self.cfg.network, have.block_v4, have.block_v6, want.block_v4, want.block_v6
                        ),
                    )));
                }
            }
        }
        self.meta_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    // ---------------------------------------------------------------- DEL

    /// Releases the attachment's addresses; `None` when it had none (DEL is
    /// idempotent).
    pub async fn del(&self, att: &Attachment) -> Result<Option<Allocation>, CniError> {
        let released = self.run("DEL", |_| self.try_del(att, None)).await?;
        if let Some(a) = &released {
            {
                let mut hint = self.own_hint.lock().unwrap();
                for ip in &a.ips {
                    hint.full.remove(&ip.block);
                }
            }
            if self.cfg.release_empty_blocks {
                let blocks: HashSet<IpNet> = a.ips.iter().map(|i| i.block).collect();
                for b in blocks {
                    // Best effort: a block that is not empty or not ours stays.
                    let _ = self.run("DEL", |_| self.try_release_block(b)).await;
                }
            }
        }
        Ok(released)
    }

    /// Deletes the attachment's record and addresses; with `only_rev`, only
    /// if the record is still the one written at that revision.
    async fn try_del(&self, att: &Attachment, only_rev: Option<i64>) -> R<Option<Allocation>> {
        let key = self.keys.attachment(att);
        let rr = self.store.read(&[Read::get(&key)], Consistency::Linearizable).await?;
        let Some(kv) = rr.results[0].first() else { return Ok(None) };
        if only_rev.is_some_and(|r| r != kv.mod_revision) {
            return Ok(None);
        }
        self.delete_attachment(kv).await.map(Some)
    }

    async fn delete_attachment(&self, kv: &KeyValue) -> R<Allocation> {
        let rec: AttachmentRecord = decode(kv)?;
        let mut ops = vec![Op::Delete(kv.key.clone())];
        for a in &rec.ips {
            ops.push(Op::Delete(self.keys.ip(a.address.addr())));
            ops.push(Op::Delete(self.keys.block_ip(&a.block, a.address.addr())));
        }
        let t = self.store.txn(&[Cmp::ModRevision(kv.key.clone(), kv.mod_revision)], &ops, &[]).await?;
        if !t.succeeded {
            return Err(Fail::Conflict);
        }
        debug(|| format!("DEL {}", rec.owner.describe()));
        Ok(Allocation { owner: rec.owner, ips: rec.ips, existing: true })
    }

    /// Releases `block` if it is this node's and has no address allocated.
    async fn try_release_block(&self, block: IpNet) -> R<bool> {
        let key = self.keys.block(&block);
        let rr = self.store.read(&[Read::get(&key)], Consistency::Linearizable).await?;
        let Some(kv) = rr.results[0].first() else { return Ok(false) };
        if decode::<BlockRecord>(kv)?.node != self.cfg.node {
            return Ok(false);
        }
        let cmps =
            [Cmp::ModRevision(key.clone(), kv.mod_revision), Cmp::PrefixEmpty(self.keys.block_ips_prefix(&block))];
        let ops = [Op::Delete(key), Op::Delete(self.keys.node_block(&self.cfg.node, &block))];
        let t = self.store.txn(&cmps, &ops, &[]).await?;
        if t.succeeded {
            self.own_hint.lock().unwrap().remove(block);
            debug(|| format!("node {} released block {block}", self.cfg.node));
        }
        Ok(t.succeeded)
    }

    // -------------------------------------------------------------- CHECK

    /// Checks that the attachment has its addresses (and that they are the
    /// ones in `expected`, when given).
    pub async fn check(&self, att: &Attachment, expected: Option<&CniResult>) -> Result<Allocation, CniError> {
        let alloc = self.run("CHECK", |_| self.try_check(att)).await?;
        if let Some(prev) = expected.filter(|p| !p.ips.is_empty()) {
            let listed: HashSet<IpAddr> = prev.ips.iter().map(|c| c.address.addr()).collect();
            if let Some(missing) = alloc.ips.iter().find(|a| !listed.contains(&a.address.addr())) {
                return Err(CniError::plugin(
                    codes::ALLOCATION_MISMATCH,
                    format!(
                        "allocation of container {} ifname {} differs from prevResult",
                        att.container_id, att.ifname
                    ),
                    format!("{} is allocated but not in prevResult", missing.address),
                ));
            }
        }
        Ok(alloc)
    }

    async fn try_check(&self, att: &Attachment) -> R<Allocation> {
        let key = self.keys.attachment(att);
        let rr = self.store.read(&[Read::get(&key)], Consistency::Linearizable).await?;
        let none = |why: String| {
            Fail::Cni(CniError::plugin(
                codes::NO_ALLOCATION,
                format!(
                    "no allocation for container {} ifname {} in network {}",
                    att.container_id, att.ifname, self.cfg.network
                ),
                why,
            ))
        };
        let Some(kv) = rr.results[0].first() else { return Err(none("no attachment record".into())) };
        let rec: AttachmentRecord = decode(kv)?;
        let reads: Vec<Read> = rec.ips.iter().map(|a| Read::get(self.keys.ip(a.address.addr()))).collect();
        let got = self.store.read(&reads, Consistency::Linearizable).await?;
        for (a, kvs) in rec.ips.iter().zip(&got.results) {
            match kvs.first() {
                None => return Err(none(format!("address {} has no record", a.address))),
                Some(kv) => {
                    let ip: IpRecord = decode(kv)?;
                    if ip.owner.attachment() != *att {
                        return Err(none(format!("address {} is held by {}", a.address, ip.owner.describe())));
                    }
                }
            }
        }
        Ok(Allocation { owner: rec.owner, ips: rec.ips, existing: true })
    }

    // ----------------------------------------------------------------- GC

    /// Releases every allocation of this node whose attachment is not in
    /// `valid`, removes address keys left without an attachment, and (with
    /// `releaseEmptyBlocks`) releases this node's empty blocks. Goes on past
    /// errors and reports them.
    pub async fn gc(&self, valid: &[Attachment]) -> Result<GcReport, CniError> {
        let valid: HashSet<&Attachment> = valid.iter().collect();
        let node = &self.cfg.node;
        let reads = [
            Read::prefix(self.keys.attachments_prefix()),
            Read::prefix(self.keys.ips_prefix()),
            Read::prefix_keys(self.keys.node_blocks_prefix(node)),
        ];
        let snap = self.run("GC", |_| async { Ok(self.store.read(&reads, Consistency::Linearizable).await?) }).await?;
        let mut report = GcReport::default();
        let mut atts: HashMap<Attachment, (i64, HashSet<IpAddr>)> = HashMap::new();
        for kv in &snap.results[0] {
            let rec: AttachmentRecord = match serde_json::from_slice(&kv.value) {
                Ok(r) => r,
                Err(e) => {
                    report.errors.push(format!("cannot decode {}: {e}", kv.key));
                    continue;
                }
            };
            atts.insert(rec.owner.attachment(), (kv.mod_revision, rec.ips.iter().map(|a| a.address.addr()).collect()));
            if rec.owner.node != *node || valid.contains(&rec.owner.attachment()) {
                continue;
            }
            let att = rec.owner.attachment();
            match self.run("GC", |_| self.try_del(&att, Some(kv.mod_revision))).await {
                Ok(Some(a)) => report.released.push(a),
                Ok(None) => {} // changed or gone since the snapshot: not ours to judge
                Err(e) => report.errors.push(format!("release {}: {e}", rec.owner.describe())),
            }
        }
        let ips_prefix = self.keys.ips_prefix();
        for kv in &snap.results[1] {
            let Ok(rec) = serde_json::from_slice::<IpRecord>(&kv.value) else {
                report.errors.push(format!("cannot decode {}", kv.key));
                continue;
            };
            let Some(ip) = Keys::suffix::<IpAddr>(&kv.key, &ips_prefix) else { continue };
            if rec.owner.node != *node {
                continue;
            }
            let att = rec.owner.attachment();
            let att_key = self.keys.attachment(&att);
            let guard = match atts.get(&att) {
                Some((_, ips)) if ips.contains(&ip) => continue,
                Some((rev, _)) => Cmp::ModRevision(att_key, *rev),
                None => Cmp::Absent(att_key),
            };
            let cmps = [Cmp::ModRevision(kv.key.clone(), kv.mod_revision), guard];
            let ops = [Op::Delete(kv.key.clone()), Op::Delete(self.keys.block_ip(&rec.block, ip))];
            match self.run("GC", |_| async { Ok(self.store.txn(&cmps, &ops, &[]).await?.succeeded) }).await {
                Ok(true) => report.orphans_removed += 1,
                Ok(false) => {}
                Err(e) => report.errors.push(format!("remove orphan {ip}: {e}")),
            }
        }
        if self.cfg.release_empty_blocks {
            let nb = self.keys.node_blocks_prefix(node);
            for b in snap.results[2].iter().filter_map(|kv| Keys::suffix::<IpNet>(&kv.key, &nb)) {
                match self.run("GC", |_| self.try_release_block(b)).await {
                    Ok(true) => report.blocks_released.push(b),
                    Ok(false) => {}
                    Err(e) => report.errors.push(format!("release block {b}: {e}")),
                }
            }
        }
        Ok(report)
    }

    // ------------------------------------------------------------- STATUS

    /// Whether ADD can be served: the store answers (linearizably) and no
    /// range set is exhausted. Error 50 otherwise.
    pub async fn status(&self) -> Result<StatusReport, CniError> {
        let rr =
            self.store.read(&[Read::prefix_keys(self.keys.ips_prefix())], Consistency::Linearizable).await.map_err(
                |e| CniError::plugin_not_available(format!("{} is not usable", self.store.describe()), e.msg),
            )?;
        let prefix = self.keys.ips_prefix();
        let mut counts = vec![0u128; self.cfg.pool.sets.len()];
        for ip in rr.results[0].iter().filter_map(|kv| Keys::suffix::<IpAddr>(&kv.key, &prefix)) {
            if let Some(s) = self.cfg.pool.set_of(ip) {
                counts[s.index] += 1;
            }
        }
        let usage: Vec<(u128, u128)> =
            self.cfg.pool.sets.iter().map(|s| (counts[s.index], self.cfg.pool.usable_count(s))).collect();
        if let Some(set) = self.cfg.pool.sets.iter().find(|s| usage[s.index].0 >= usage[s.index].1) {
            let e = self.exhausted(set);
            return Err(CniError::plugin_not_available(e.msg, e.details));
        }
        Ok(StatusReport { usage })
    }

    // -------------------------------------------------------------- views

    /// Every address allocated in the network, by any node.
    pub async fn allocations(&self) -> Result<Vec<(IpAddr, IpRecord)>, CniError> {
        let prefix = self.keys.ips_prefix();
        let rr = self
            .run("list", |_| async { Ok(self.store.read(&[Read::prefix(&prefix)], Consistency::Linearizable).await?) })
            .await?;
        let mut out = Vec::new();
        for kv in &rr.results[0] {
            let ip = Keys::suffix::<IpAddr>(&kv.key, &prefix).ok_or_else(|| CniError::io("bad key", kv.key.clone()))?;
            let rec = serde_json::from_slice(&kv.value)
                .map_err(|e| CniError::io(format!("cannot decode {}", kv.key), e.to_string()))?;
            out.push((ip, rec));
        }
        Ok(out)
    }

    /// Every attachment in the network.
    pub async fn attachments(&self) -> Result<Vec<AttachmentRecord>, CniError> {
        let prefix = self.keys.attachments_prefix();
        let rr = self
            .run("list", |_| async { Ok(self.store.read(&[Read::prefix(&prefix)], Consistency::Linearizable).await?) })
            .await?;
        rr.results[0]
            .iter()
            .map(|kv| {
                serde_json::from_slice(&kv.value)
                    .map_err(|e| CniError::io(format!("cannot decode {}", kv.key), e.to_string()))
            })
            .collect()
    }

    /// Every claimed block.
    pub async fn blocks(&self) -> Result<Vec<(IpNet, BlockRecord)>, CniError> {
        let prefix = self.keys.blocks_prefix();
        let rr = self
            .run("list", |_| async { Ok(self.store.read(&[Read::prefix(&prefix)], Consistency::Linearizable).await?) })
            .await?;
        let mut out = Vec::new();
        for kv in &rr.results[0] {
            let b = Keys::suffix::<IpNet>(&kv.key, &prefix).ok_or_else(|| CniError::io("bad key", kv.key.clone()))?;
            let rec = serde_json::from_slice(&kv.value)
                .map_err(|e| CniError::io(format!("cannot decode {}", kv.key), e.to_string()))?;
            out.push((b, rec));
        }
        Ok(out)
    }

    /// The CNI result of an allocation: addresses with their gateways, the
    /// configured routes and DNS.
    pub fn result(&self, alloc: &Allocation, version: Version) -> CniResult {
        let mut r = CniResult::new(version);
        r.ips = alloc.ips.iter().map(|a| IpConfig::new(a.address, a.gateway)).collect();
        r.routes = self.cfg.routes.clone();
        r.dns = self.cfg.dns.clone();
        r
    }
}

/// This node's blocks as this process last saw them, and which were full.
#[derive(Default)]
struct OwnHint {
    blocks: Vec<IpNet>,
    full: HashSet<IpNet>,
    /// Blocks this process claimed, with the revision of the claim: a
    /// (serializable) read of the index older than that does not show them.
    claimed: HashMap<IpNet, i64>,
}

impl OwnHint {
    /// Blocks to read with the attachment: the first two not known to be full.
    fn hot(&self) -> Vec<IpNet> {
        self.blocks.iter().filter(|b| !self.full.contains(b)).take(2).copied().collect()
    }

    /// Takes in the index as read at `revision`; returns this node's blocks, in address order.
    fn observe(&mut self, index: &[IpNet], revision: i64) -> Vec<IpNet> {
        self.claimed.retain(|_, rev| *rev > revision);
        let mut blocks = index.to_vec();
        blocks.extend(self.claimed.keys().filter(|b| !index.contains(b)));
        blocks.sort_by_key(|b| pool::to_u128(b.network()));
        self.full.retain(|b| blocks.contains(b));
        self.blocks = blocks.clone();
        blocks
    }

    fn add(&mut self, block: IpNet, revision: i64) {
        self.claimed.insert(block, revision);
        if !self.blocks.contains(&block) {
            self.blocks.push(block);
            self.blocks.sort_by_key(|b| pool::to_u128(b.network()));
        }
    }

    fn remove(&mut self, block: IpNet) {
        self.blocks.retain(|b| *b != block);
        self.full.remove(&block);
        self.claimed.remove(&block);
    }
}

/// Addresses this task reserved in [`Ipam::pending`]; released on drop.
struct Reserved<'a> {
    pending: &'a Mutex<HashSet<IpAddr>>,
    ips: Vec<IpAddr>,
    /// A free address was skipped because another task is trying it.
    saw_pending: bool,
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        let mut p = self.pending.lock().unwrap();
        for ip in &self.ips {
            p.remove(ip);
        }
    }
}

enum Claim {
    /// The block, and the revision its claim was written at.
    Claimed(IpNet, i64),
    NoneFree(Vec<IpNet>),
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}
