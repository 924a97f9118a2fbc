//! Shared by the behaviour targets: run a behaviour on a copy of the input
//! placed after headroom and check the invariants every behaviour keeps.
#![allow(dead_code)]

use vswitch_srv6::behavior::Outcome;

/// Headroom before the packet: enough for the largest template.
pub const ROOM: usize = vswitch_srv6::behavior::MAX_ENCAP_LEN + 16;

/// The input after `ROOM` bytes of headroom.
pub fn buffer(data: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; ROOM];
    b.extend_from_slice(data);
    b
}

/// Runs `f` on `buffer(data)` with the packet at `ROOM` and checks: spans
/// stay inside the buffer; a drop leaves every byte as it was; a forwarded
/// or decapsulated packet does not grow past the input's end.
pub fn run(data: &[u8], f: impl FnOnce(&mut [u8], usize, usize) -> Outcome) -> (Outcome, Vec<u8>) {
    let before = buffer(data);
    let mut b = before.clone();
    let o = f(&mut b, ROOM, data.len());
    match o {
        Outcome::Forward { span, .. } | Outcome::Decap { span, .. } | Outcome::Local { span, .. } => {
            assert!(span.start + span.len <= b.len(), "{o:?}");
        }
        Outcome::Drop { reason, .. } => {
            assert_eq!(before, b, "dropped ({reason}) but modified");
            assert!(!reason.name().is_empty());
        }
    }
    if let Outcome::Local { span, offset, .. } = o {
        assert!(offset <= span.len);
    }
    (o, b)
}
