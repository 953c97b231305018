#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerup_core::fuzzing::peer_notify(data));
