#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| peerup_core::fuzzing::pairing_code(data));
