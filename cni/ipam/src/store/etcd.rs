//! The etcd store (etcd v3 API through `etcd-client`).

use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp, TxnOpResponse};

use super::{Cmp, Consistency, KeyValue, Op, Read, ReadResult, StoreError, TxnResult};
use crate::config::EtcdConfig;

pub struct EtcdStore {
    client: Client,
    endpoints: Vec<String>,
}

fn map_err(e: etcd_client::Error) -> StoreError {
    use etcd_client::Error as E;
    use tonic::Code;
    match &e {
        E::GRpcStatus(s) => match s.code() {
            Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Internal
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Cancelled => StoreError::unavailable(format!("etcd: {}", s.message())),
            _ => StoreError::other(format!("etcd: {e}")),
        },
        E::TransportError(_) | E::IoError(_) | E::EndpointError(_) => StoreError::unavailable(format!("etcd: {e}")),
        _ => StoreError::other(format!("etcd: {e}")),
    }
}

fn compare(c: &Cmp) -> Compare {
    match c {
        Cmp::Absent(k) => Compare::create_revision(k.as_str(), CompareOp::Equal, 0),
        Cmp::Exists(k) => Compare::create_revision(k.as_str(), CompareOp::Greater, 0),
        Cmp::ModRevision(k, r) => Compare::mod_revision(k.as_str(), CompareOp::Equal, *r),
        // Over a range, etcd compares every key in it; an empty range is
        // compared as one key with create_revision 0.
        Cmp::PrefixEmpty(p) => Compare::create_revision(p.as_str(), CompareOp::Equal, 0).with_prefix(),
    }
}

fn read_op(r: &Read, consistency: Consistency) -> TxnOp {
    let mut opts = GetOptions::new();
    if consistency == Consistency::Serializable {
        opts = opts.with_serializable();
    }
    match r {
        Read::Get(k) => TxnOp::get(k.as_str(), Some(opts)),
        Read::Prefix { prefix, keys_only } => {
            let mut o = opts.with_prefix();
            if *keys_only {
                o = o.with_keys_only();
            }
            TxnOp::get(prefix.as_str(), Some(o))
        }
        Read::Count(prefix) => TxnOp::get(prefix.as_str(), Some(opts.with_prefix().with_count_only())),
    }
}

type Kvs = (Vec<Vec<KeyValue>>, Vec<i64>);

fn kvs(resps: Vec<TxnOpResponse>) -> Result<Kvs, StoreError> {
    let counts = resps.iter().map(|r| if let TxnOpResponse::Get(g) = r { g.count() } else { 0 }).collect();
    let lists = resps
        .into_iter()
        .map(|r| match r {
            TxnOpResponse::Get(g) => g
                .kvs()
                .iter()
                .map(|kv| {
                    Ok(KeyValue {
                        key: kv
                            .key_str()
                            .map_err(|e| StoreError::other(format!("etcd: non-UTF-8 key: {e}")))?
                            .to_string(),
                        value: kv.value().to_vec(),
                        create_revision: kv.create_revision(),
                        mod_revision: kv.mod_revision(),
                    })
                })
                .collect(),
            _ => Err(StoreError::other("etcd: unexpected transaction response")),
        })
        .collect::<Result<_, _>>()?;
    Ok((lists, counts))
}

impl EtcdStore {
    pub async fn connect(cfg: &EtcdConfig) -> Result<EtcdStore, StoreError> {
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(cfg.dial_timeout)
            .with_timeout(cfg.request_timeout)
            .with_require_leader(true);
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            opts = opts.with_user(u.clone(), p.clone());
        }
        if let Some(tls) = &cfg.tls {
            opts = with_tls(opts, tls)?;
        }
        let client = Client::connect(&cfg.endpoints, Some(opts)).await.map_err(map_err)?;
        Ok(EtcdStore { client, endpoints: cfg.endpoints.clone() })
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The client, for callers that need more of etcd (tests, tools).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn read(&self, reads: &[Read], consistency: Consistency) -> Result<ReadResult, StoreError> {
        let ops: Vec<TxnOp> = reads.iter().map(|r| read_op(r, consistency)).collect();
        let resp = self.client.kv_client().txn(Txn::new().and_then(ops)).await.map_err(map_err)?;
        let revision = resp.header().map_or(0, |h| h.revision());
        let (results, counts) = kvs(resp.op_responses())?;
        Ok(ReadResult { revision, results, counts })
    }

    pub async fn txn(&self, cmps: &[Cmp], ops: &[Op], on_failure: &[Read]) -> Result<TxnResult, StoreError> {
        let then: Vec<TxnOp> = ops
            .iter()
            .map(|o| match o {
                Op::Put(k, v) => TxnOp::put(k.as_str(), v.clone(), None),
                Op::Delete(k) => TxnOp::delete(k.as_str(), None),
            })
            .collect();
        let otherwise: Vec<TxnOp> = on_failure.iter().map(|r| read_op(r, Consistency::Linearizable)).collect();
        let txn = Txn::new().when(cmps.iter().map(compare).collect::<Vec<_>>()).and_then(then).or_else(otherwise);
        let resp = self.client.kv_client().txn(txn).await.map_err(map_err)?;
        let revision = resp.header().map_or(0, |h| h.revision());
        if resp.succeeded() {
            Ok(TxnResult { succeeded: true, revision, failure_reads: Vec::new() })
        } else {
            Ok(TxnResult { succeeded: false, revision, failure_reads: kvs(resp.op_responses())?.0 })
        }
    }
}

#[cfg(feature = "tls")]
fn with_tls(opts: ConnectOptions, tls: &crate::config::TlsConfig) -> Result<ConnectOptions, StoreError> {
    use etcd_client::{Certificate, Identity, TlsOptions};
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| StoreError::other(format!("etcd tls: cannot read {}: {e}", p.display())))
    };
    let mut t = TlsOptions::new();
    if let Some(ca) = &tls.ca_file {
        t = t.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    if let (Some(c), Some(k)) = (&tls.cert_file, &tls.key_file) {
        t = t.identity(Identity::from_pem(read(c)?, read(k)?));
    }
    if let Some(name) = &tls.server_name {
        t = t.domain_name(name.clone());
    }
    Ok(opts.with_tls(t))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_opts: ConnectOptions, _tls: &crate::config::TlsConfig) -> Result<ConnectOptions, StoreError> {
    Err(StoreError::other("etcd.tls is set but vswitch-ipam was built without the \"tls\" feature"))
}
