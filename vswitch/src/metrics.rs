//! The Prometheus `/metrics` endpoint: every scrape reads the per-worker
//! counters, sums them and encodes them (OpenMetrics text). Counters are
//! raw and monotonic: `vswitchctl clear` does not reset them here.

use crate::daemon::Daemon;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

type Labels = Vec<(String, String)>;

fn counter_family(reg: &mut Registry, name: &str, help: &str) -> Family<Labels, Counter> {
    let f = Family::<Labels, Counter>::default();
    reg.register(name, help, f.clone());
    f
}

/// The metrics text for one scrape.
pub fn render(d: &Daemon) -> String {
    let mut reg = Registry::with_prefix("vswitch");
    let if_rx_p = counter_family(&mut reg, "interface_rx_packets", "Packets received on an interface");
    let if_rx_b = counter_family(&mut reg, "interface_rx_bytes", "Bytes received on an interface");
    let if_tx_p = counter_family(&mut reg, "interface_tx_packets", "Packets sent on an interface");
    let if_tx_b = counter_family(&mut reg, "interface_tx_bytes", "Bytes sent on an interface");
    let if_drops = counter_family(&mut reg, "interface_drops", "Packets dropped on an interface");
    let node_calls = counter_family(&mut reg, "node_calls", "Calls of a graph node, per worker");
    let node_packets = counter_family(&mut reg, "node_packets", "Packets processed by a graph node, per worker");
    let node_clocks = counter_family(&mut reg, "node_clocks", "CPU clocks (TSC) spent in a graph node, per worker");
    let errors = counter_family(&mut reg, "node_errors", "Error counters of the graph nodes (show errors)");
    let worker_loops = counter_family(&mut reg, "worker_loops", "Turns of a worker's loop");
    let worker_rx = counter_family(&mut reg, "worker_rx_packets", "Packets received by a worker");
    let buf_cap = Gauge::<i64>::default();
    let buf_free = Gauge::<i64>::default();
    let buf_fail = Counter::<u64>::default();
    reg.register("buffers_capacity", "Buffers in the pool", buf_cap.clone());
    reg.register("buffers_free", "Buffers on the pool's shared free list", buf_free.clone());
    reg.register("buffers_alloc_failures", "Buffer allocations that found none", buf_fail.clone());

    let snapshot = d.control().controller.snapshot();
    for i in snapshot.interfaces.iter().flatten() {
        let l: Labels = vec![("interface".into(), i.name.clone()), ("sw_if".into(), i.sw_if.to_string())];
        let [rp, rb, tp, tb, dr] = d.if_totals_raw(i.sw_if);
        if_rx_p.get_or_create(&l).inc_by(rp);
        if_rx_b.get_or_create(&l).inc_by(rb);
        if_tx_p.get_or_create(&l).inc_by(tp);
        if_tx_b.get_or_create(&l).inc_by(tb);
        if_drops.get_or_create(&l).inc_by(dr);
    }
    for h in &d.workers.handles {
        let w = h.id.to_string();
        let wl: Labels = vec![("worker".into(), w.clone())];
        worker_loops.get_or_create(&wl).inc_by(h.loop_stats.loops.get());
        worker_rx.get_or_create(&wl).inc_by(h.loop_stats.rx_packets.get());
        for n in h.graph_stats.snapshot() {
            let l: Labels = vec![("node".into(), n.name.into()), ("worker".into(), w.clone())];
            node_calls.get_or_create(&l).inc_by(n.calls);
            node_packets.get_or_create(&l).inc_by(n.packets);
            node_clocks.get_or_create(&l).inc_by(n.clocks);
        }
    }
    for ((node, reason), v) in d.error_totals_raw() {
        let l: Labels = vec![("node".into(), node.into()), ("reason".into(), reason.into())];
        errors.get_or_create(&l).inc_by(v);
    }
    let s = d.pool.stats();
    buf_cap.set(s.capacity as i64);
    buf_free.set(s.free_shared as i64);
    buf_fail.inc_by(s.alloc_failures);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

async fn handle(
    d: Arc<Daemon>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let resp = if req.uri().path() == "/metrics" {
        match tokio::task::spawn_blocking(move || render(&d)).await {
            Ok(text) => Response::builder()
                .header("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")
                .body(Full::new(Bytes::from(text))),
            Err(_) => Response::builder().status(StatusCode::INTERNAL_SERVER_ERROR).body(Full::new(Bytes::new())),
        }
    } else {
        Response::builder().status(StatusCode::NOT_FOUND).body(Full::new(Bytes::from_static(b"try /metrics\n")))
    };
    Ok(resp.expect("static response parts are valid"))
}

/// Serves `/metrics` on `listener` until `shutdown` resolves.
pub async fn serve(listener: tokio::net::TcpListener, d: Arc<Daemon>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let d = Arc::clone(&d);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(Arc::clone(&d), req));
            if let Err(e) = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await
            {
                tracing::debug!(%peer, error = %e, "metrics connection ended");
            }
        });
    }
}
