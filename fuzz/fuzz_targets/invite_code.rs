//! Invite code text decoding must never panic (WIRE.md §5).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = peerup_core::invite::InviteCode::decode(text);
    }
    let _ = peerup_core::invite::InviteCode::from_bytes(data);
});
