//! memif control messages: decode arbitrary bytes; whatever decodes must
//! re-encode to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    vswitch_memif::fuzzing::msg(data);
});
