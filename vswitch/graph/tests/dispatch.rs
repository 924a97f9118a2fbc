//! The graph runtime on small test graphs: arcs, drops, transmit,
//! replication, feature arcs, trace, loop cut-off, counters, no leaks.

use std::sync::Arc;
use vswitch_graph::{errors, next_arcs, Cx, GraphBuilder, Node, PacketId};
use vswitch_packet::{BufferPool, BufferPoolConfig, Buffers};

struct State {
    copies: usize,
}

next_arcs! { enum ClassifyNext { Even = "even", Odd = "odd", Copy = "copy", Loop = "loop" } }
errors! { enum ClassifyError { Bad = "first byte is 0xff", Empty = "empty packet" } }

/// Sends packets by their first byte.
struct Classify;
impl Node<State> for Classify {
    const NAME: &'static str = "classify";
    type Next = ClassifyNext;
    type Error = ClassifyError;
    fn process(&mut self, cx: &mut Cx<'_, State, Self>, vector: &[PacketId]) {
        for &p in vector {
            cx.start_trace(p);
            let Some(&b) = cx.bufs.data(p).first() else {
                cx.discard(p, ClassifyError::Empty);
                continue;
            };
            cx.trace(p, format!("first byte {b}"));
            match b {
                0xff => cx.discard(p, ClassifyError::Bad),
                0xfe => cx.enqueue(ClassifyNext::Copy, p),
                0xfd => cx.enqueue(ClassifyNext::Loop, p),
                b if b % 2 == 0 => cx.enqueue(ClassifyNext::Even, p),
                _ => cx.enqueue(ClassifyNext::Odd, p),
            }
        }
    }
}

next_arcs! { enum ToTx { Unused = "error-drop" } }
errors! { enum NoErr { Sent = "sent" } }

/// Transmits on a fixed port.
macro_rules! tx_node {
    ($ty:ident, $name:literal, $port:literal) => {
        struct $ty;
        impl Node<State> for $ty {
            const NAME: &'static str = $name;
            type Next = ToTx;
            type Error = NoErr;
            fn process(&mut self, cx: &mut Cx<'_, State, Self>, vector: &[PacketId]) {
                for &p in vector {
                    cx.trace(p, concat!("to port ", $port));
                    cx.transmit($port, p);
                }
                cx.count(NoErr::Sent, vector.len() as u64);
            }
        }
    };
}
tx_node!(Even, "even", 0);
tx_node!(Odd, "odd", 1);

next_arcs! { enum CopyNext { Even = "even" } }
errors! { enum CopyError { NoBuffer = "no buffer for a copy" } }
/// Replicates each packet `state.copies` times towards "even".
struct Copy;
impl Node<State> for Copy {
    const NAME: &'static str = "copy";
    type Next = CopyNext;
    type Error = CopyError;
    fn process(&mut self, cx: &mut Cx<'_, State, Self>, vector: &[PacketId]) {
        for &p in vector {
            for _ in 1..cx.state.copies {
                match cx.bufs.clone_packet(p) {
                    Some(q) => cx.enqueue(CopyNext::Even, q),
                    None => cx.count(CopyError::NoBuffer, 1),
                }
            }
            cx.enqueue(CopyNext::Even, p);
        }
    }
}

next_arcs! { enum LoopNext { Again = "loop" } }
/// Sends every packet back to itself: a forwarding loop.
struct Loop;
impl Node<State> for Loop {
    const NAME: &'static str = "loop";
    type Next = LoopNext;
    type Error = NoErr;
    fn process(&mut self, cx: &mut Cx<'_, State, Self>, vector: &[PacketId]) {
        for &p in vector {
            cx.enqueue(LoopNext::Again, p);
        }
    }
}

fn setup(n: u32) -> (Arc<BufferPool>, Buffers, vswitch_graph::Graph<State>) {
    let pool = BufferPool::new(&BufferPoolConfig { buffers: n, data_size: 256, prefer_huge: false }).unwrap();
    let bufs = pool.worker();
    let g = GraphBuilder::new().node(Classify).node(Even).node(Odd).node(Copy).node(Loop).ports(2).build().unwrap();
    (pool, bufs, g)
}

fn packets(bufs: &mut Buffers, first_bytes: &[u8]) -> Vec<PacketId> {
    first_bytes
        .iter()
        .map(|&b| {
            let p = bufs.alloc().unwrap();
            bufs.write(p, &[b, 0, 0, 0]);
            p
        })
        .collect()
}

#[test]
fn packets_follow_their_arcs_and_counters_add_up() {
    let (pool, mut bufs, mut g) = setup(1024);
    let state = State { copies: 3 };
    let input = g.node_index("classify").unwrap();
    let v = packets(&mut bufs, &[2, 3, 4, 0xff, 0xfe, 5]);
    let empty = bufs.alloc().unwrap();
    let mut v2 = v.clone();
    v2.push(empty);
    g.run(&mut bufs, &state, input, &v2);
    // 2, 4 and three copies of 0xfe on port 0; 3, 5 on port 1.
    assert_eq!(g.tx_queue(0).len(), 5);
    assert_eq!(g.tx_queue(1).len(), 2);
    let s = g.stats().clone();
    assert_eq!(s.error("classify", "first byte is 0xff"), 1);
    assert_eq!(s.error("classify", "empty packet"), 1);
    assert_eq!(s.error("even", "sent"), 5);
    assert_eq!(s.packets("classify"), 7);
    assert_eq!(s.packets("error-drop"), 2);
    let snap = s.snapshot();
    let even = snap.iter().find(|n| n.name == "even").unwrap();
    // Once for classify's vector, once for copy's: a node runs per frame, not per packet.
    assert_eq!((even.calls, even.packets), (2, 5));
    assert!(even.clocks > 0);
    // The worker sends and frees what it transmitted: nothing leaks.
    for port in 0..2 {
        let q = std::mem::take(g.tx_queue(port));
        bufs.free_bulk(&q);
    }
    drop(bufs);
    assert_eq!(pool.available(), 1024);
}

#[test]
fn a_forwarding_loop_is_cut_and_its_packets_dropped() {
    let (pool, mut bufs, mut g) = setup(64);
    let input = g.node_index("classify").unwrap();
    let v = packets(&mut bufs, &[0xfd; 10]);
    g.run(&mut bufs, &State { copies: 1 }, input, &v);
    assert_eq!(g.stats().loop_drops.get(), 10);
    drop(bufs);
    assert_eq!(pool.available(), 64);
}

#[test]
fn replication_without_buffers_is_counted_not_fatal() {
    let (pool, mut bufs, mut g) = setup(8);
    let input = g.node_index("classify").unwrap();
    let v = packets(&mut bufs, &[0xfe; 4]);
    g.run(&mut bufs, &State { copies: 4 }, input, &v);
    // 4 buffers were free for 12 wanted copies.
    assert_eq!(g.stats().error("copy", "no buffer for a copy"), 8);
    let q = std::mem::take(g.tx_queue(0));
    assert_eq!(q.len(), 8);
    bufs.free_bulk(&q);
    drop(bufs);
    assert_eq!(pool.available(), 8);
}

#[test]
fn trace_marks_the_next_n_packets_and_prints_their_path() {
    let (_pool, mut bufs, mut g) = setup(64);
    let input = g.node_index("classify").unwrap();
    g.add_trace("classify", 2).unwrap();
    let v = packets(&mut bufs, &[2, 3, 4]);
    g.run(&mut bufs, &State { copies: 1 }, input, &v);
    let log = g.trace_log().clone();
    assert_eq!(log.path(1), vec!["classify", "even"]);
    assert_eq!(log.path(2), vec!["classify", "odd"]);
    assert!(log.path(3).is_empty(), "budget was two packets");
    let text = log.format();
    assert!(text.contains("Packet 1\n  classify: first byte 2\n  even: to port 0"), "{text}");
    assert!(g.add_trace("nope", 1).is_err());
    for port in 0..2 {
        let q = std::mem::take(g.tx_queue(port));
        bufs.free_bulk(&q);
    }
}

// Feature arcs: "start" begins the arc, "feat-a"/"feat-b" are optional, "end" ends it.
next_arcs! { enum StartNext { Unused = "error-drop" } }
struct Start(vswitch_graph::FeatureArcId);
impl Node<State> for Start {
    const NAME: &'static str = "start";
    type Next = StartNext;
    type Error = NoErr;
    fn process(&mut self, cx: &mut Cx<'_, State, Self>, vector: &[PacketId]) {
        for &p in vector {
            let sw_if = cx.bufs.data(p)[0] as u32;
            cx.feature_start(self.0, sw_if, p);
        }
    }
}
macro_rules! feature_node {
    ($ty:ident, $name:literal, $mark:literal) => {
        struct $ty(vswitch_graph::FeatureArcId);
        impl Node<State> for $ty {
            const NAME: &'static str = $name;
            type Next = StartNext;
            type Error = NoErr;
            fn process(&mut self, cx: &mut Cx<'_, State, Self>, vector: &[PacketId]) {
                for &p in vector {
                    let d = cx.bufs.data_mut(p);
                    d[1] = d[1] * 10 + $mark;
                    let sw_if = d[0] as u32;
                    cx.feature_next(self.0, sw_if, p);
                }
            }
        }
    };
}
feature_node!(FeatA, "feat-a", 1);
feature_node!(FeatB, "feat-b", 2);
struct End;
impl Node<State> for End {
    const NAME: &'static str = "end";
    type Next = StartNext;
    type Error = NoErr;
    fn process(&mut self, cx: &mut Cx<'_, State, Self>, vector: &[PacketId]) {
        for &p in vector {
            cx.transmit(0, p);
        }
    }
}

#[test]
fn feature_arcs_run_only_enabled_features_in_order() {
    let pool = BufferPool::new(&BufferPoolConfig { buffers: 64, data_size: 256, prefer_huge: false }).unwrap();
    let mut bufs = pool.worker();
    // The arc id is the arc's position; it is first and only here.
    let arc = {
        let g = GraphBuilder::<State>::new().node(End).feature_arc("x", &[], "end").build().unwrap();
        g.feature_arc("x").unwrap()
    };
    let mut g = GraphBuilder::new()
        .node(Start(arc))
        .node(FeatA(arc))
        .node(FeatB(arc))
        .node(End)
        .feature_arc("x", &["feat-a", "feat-b"], "end")
        .ports(1)
        .build()
        .unwrap();
    g.features_mut().set(arc, 1, "feat-b", true).unwrap();
    g.features_mut().set(arc, 2, "feat-a", true).unwrap();
    g.features_mut().set(arc, 2, "feat-b", true).unwrap();
    assert!(g.features_mut().set(arc, 2, "feat-z", true).is_err());
    assert_eq!(g.features_mut().enabled(arc, 2), vec!["feat-a", "feat-b"]);
    let v = packets(&mut bufs, &[0, 1, 2, 9]);
    let start = g.node_index("start").unwrap();
    g.run(&mut bufs, &State { copies: 1 }, start, &v);
    let q = std::mem::take(g.tx_queue(0));
    let marks: Vec<(u8, u8)> = q.iter().map(|&p| (bufs.data(p)[0], bufs.data(p)[1])).collect();
    let mut marks = marks;
    marks.sort();
    assert_eq!(marks, vec![(0, 0), (1, 2), (2, 12), (9, 0)]);
    assert_eq!(g.stats().packets("feat-a"), 1, "interfaces without the feature skip it");
    g.features_mut().set(arc, 2, "feat-a", false).unwrap();
    assert_eq!(g.features_mut().enabled(arc, 2), vec!["feat-b"]);
    bufs.free_bulk(&q);
}

#[test]
fn build_errors_name_the_problem() {
    next_arcs! { enum BadNext { Nowhere = "no-such-node" } }
    struct Bad;
    impl Node<State> for Bad {
        const NAME: &'static str = "bad";
        type Next = BadNext;
        type Error = NoErr;
        fn process(&mut self, _: &mut Cx<'_, State, Self>, _: &[PacketId]) {}
    }
    let e = GraphBuilder::new().node(Bad).build().err().unwrap();
    assert_eq!(e.to_string(), "node \"bad\": next node \"no-such-node\" does not exist");
    let e = GraphBuilder::new().node(Loop).node(Loop).build().err().unwrap();
    assert_eq!(e.to_string(), "node \"loop\" added twice");
}
