//! The ring consumer (server on S2M, client on M2S) and the server's
//! producer into posted buffers, over a ring whose header, descriptors,
//! buffers and local indices are the fuzz input: bounds, index distances
//! and chains must be checked, nothing may panic or read outside the
//! region.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vswitch_memif::fuzzing::ring(data);
});
