//! The zero-copy client's receive path (buffers lent in place, forwarded
//! or released, slots posted again) over rings whose peer-written fields
//! are the fuzz input, round after round: every buffer must stay in
//! exactly one place (free, posted, in flight), every frame lent must lie
//! inside the region, nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vswitch_memif::fuzzing::zc(data);
});
