#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerup_core::fuzzing::relay_pair(data));
