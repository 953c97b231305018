//! Invite codes and sealed frames (WIRE.md §5, §6).

use data_encoding::BASE32_NOPAD;

use crate::invite::InviteCode;
use crate::invite::code::{GROUP, group};
use crate::relay_addr::RelayAddr;
use crate::wire::sealed::{self, Decoded, FrameError, Key};

use super::*;

// ---------------------------------------------------------------------------
// invite_code

/// Invite codes (WIRE.md §5): the bytes go to [`InviteCode::from_bytes`],
/// their base32 text (grouped, and messed up with case and whitespace) to
/// [`InviteCode::decode`], and the bytes as text to `decode` as well.
///
/// # Panics
/// When `from_bytes` accepts bytes that `to_bytes` does not give back
/// (two encodings of one code), when the text form decodes differently
/// from the bytes, or when a decoded code does not survive
/// `encode`/`decode` and `to_bytes`/`from_bytes`.
pub fn invite_code(data: &[u8]) {
    let from_bytes = InviteCode::from_bytes(data);
    if let Ok(code) = &from_bytes {
        check_invite_code(code);
        let bytes = code
            .to_bytes()
            .unwrap_or_else(|e| panic!("a decoded invite code does not encode: {e}"));
        assert!(
            bytes == data,
            "from_bytes accepted bytes that to_bytes does not give back:\n{data:02x?}\n{bytes:02x?}"
        );
    }
    if !data.is_empty() {
        let text = group(&BASE32_NOPAD.encode(data));
        assert_eq!(
            InviteCode::decode(&text),
            from_bytes,
            "the text form decodes differently from the bytes: {text}"
        );
        let messy = format!(" {}\r\n", text.to_lowercase().replace('-', " -\t"));
        assert_eq!(
            InviteCode::decode(&messy),
            from_bytes,
            "case and whitespace changed the decoding: {messy:?}"
        );
    }
    if let Ok(text) = core::str::from_utf8(data)
        && let Ok(code) = InviteCode::decode(text)
    {
        check_invite_code(&code);
    }
}

fn check_invite_code(code: &InviteCode) {
    assert_ne!(code.relay_port, 0, "a code with relay port 0 decoded");
    let bytes = code
        .to_bytes()
        .unwrap_or_else(|e| panic!("a decoded invite code does not encode: {e}"));
    assert_eq!(
        InviteCode::from_bytes(&bytes).as_ref(),
        Ok(code),
        "from_bytes(to_bytes(c)) != c"
    );
    let text = code
        .encode()
        .unwrap_or_else(|e| panic!("a decoded invite code does not encode: {e}"));
    assert!(
        text.bytes()
            .all(|b| b == b'-' || b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)),
        "encode wrote a character outside A-Z, 2-7 and '-': {text}"
    );
    assert!(
        text.split('-').all(|g| (1..=GROUP).contains(&g.len())),
        "encode wrote a group longer than {GROUP}: {text}"
    );
    assert_eq!(
        InviteCode::decode(&text).as_ref(),
        Ok(code),
        "decode(encode(c)) != c"
    );
    // The relay address the joiner dials is a valid relay address, and
    // building a code from it gives the same code.
    let relay = RelayAddr::new(code.relay_addr())
        .unwrap_or_else(|e| panic!("a decoded code carries an unusable relay address: {e}"));
    assert_eq!(relay.peer_id(), code.relay_peer);
    let rebuilt = InviteCode::new(
        code.token.clone(),
        &relay,
        code.network.clone(),
        code.inviter,
    )
    .unwrap_or_else(|e| panic!("InviteCode::new refused a decoded code's relay: {e}"));
    assert_eq!(&rebuilt, code, "InviteCode::new built another code");
}

// ---------------------------------------------------------------------------
// sealed_frame

/// Sealed frames (WIRE.md §6). The whole input is decoded as a buffer;
/// then it is read as a key (32 bytes), a nonce (24), a selector (2) and a
/// plaintext (the rest, or the rest repeated to a chosen length, so both
/// sides of the 4,056-byte limit are reached).
///
/// # Panics
/// When `decode` takes a frame whose length is out of bounds, reports a
/// wrong `needed` count or a wrong error, when a sealed frame does not
/// decode and open to its plaintext, when a wrong key or a flipped bit
/// opens it, or when an opened frame does not re-seal to itself.
pub fn sealed_frame(data: &[u8]) {
    check_decode(data);
    let mut input = Input::new(data);
    let key = Key::from_bytes(input.array());
    let nonce: [u8; sealed::NONCE_LEN] = input.array();
    let selector = input.u16();
    let rest = input.rest();
    let plaintext: Vec<u8> = if selector & 1 == 0 || rest.is_empty() {
        rest.to_vec()
    } else {
        let len = usize::from(selector >> 1) % (sealed::MAX_PLAINTEXT + 64);
        rest.iter().copied().cycle().take(len).collect()
    };

    // Whatever frame the buffer holds: if it opens under the key, sealing
    // its plaintext with its nonce gives the same frame (the AEAD is
    // deterministic), so a frame has exactly one valid form.
    if let Ok(Decoded::Frame(frame, _)) = sealed::decode(data)
        && let Ok(opened) = sealed::open(&key, &frame)
    {
        let mut n = [0u8; sealed::NONCE_LEN];
        n.copy_from_slice(frame.nonce());
        assert_eq!(
            sealed::seal(&key, n, &opened).ok(),
            Some(frame),
            "an opened frame does not re-seal to itself"
        );
    }

    match sealed::seal(&key, nonce, &plaintext) {
        Err(e) => {
            assert!(
                plaintext.len() > sealed::MAX_PLAINTEXT && e.len == plaintext.len(),
                "seal refused {} bytes: {e}",
                plaintext.len()
            );
        }
        Ok(frame) => {
            assert!(
                plaintext.len() <= sealed::MAX_PLAINTEXT,
                "seal accepted {} bytes",
                plaintext.len()
            );
            assert_eq!(frame.len(), plaintext.len() + sealed::MIN_LEN);
            assert!(!frame.is_empty());
            assert_eq!(frame.nonce(), nonce.as_slice());
            let wire = frame.encode();
            assert_eq!(wire.len(), frame.encoded_len());
            match sealed::decode(&wire) {
                Ok(Decoded::Frame(back, used)) => {
                    assert_eq!(used, wire.len());
                    assert_eq!(back, frame, "decode(encode(f)) != f");
                }
                other => panic!("a sealed frame does not decode: {other:?}"),
            }
            // A prefix is incomplete, and says how much is missing: the
            // rest of the length prefix, then the rest of the frame.
            let cut = usize::from(selector) % wire.len();
            let needed = if cut < sealed::HEADER_LEN {
                sealed::HEADER_LEN - cut
            } else {
                wire.len() - cut
            };
            assert_eq!(
                sealed::decode(&wire[..cut]),
                Ok(Decoded::Incomplete { needed }),
                "prefix of {cut} bytes"
            );
            assert_eq!(
                sealed::open(&key, &frame).as_deref(),
                Ok(plaintext.as_slice()),
                "open(seal(p)) != p"
            );
            // A wrong key (one bit off) never opens.
            let bit = usize::from(selector) % 256;
            let mut wrong = *key.as_bytes();
            wrong[bit / 8] ^= 1 << (bit % 8);
            assert!(
                sealed::open(&Key::from_bytes(wrong), &frame).is_err(),
                "a frame opened under a wrong key"
            );
            // A flipped bit anywhere in the nonce, ciphertext or tag never
            // opens.
            let body_bits = (wire.len() - sealed::HEADER_LEN) * 8;
            let bit = usize::from(selector.rotate_left(5)) % body_bits;
            let mut tampered = wire.clone();
            tampered[sealed::HEADER_LEN + bit / 8] ^= 1 << (bit % 8);
            match sealed::decode(&tampered) {
                Ok(Decoded::Frame(t, _)) => assert!(
                    sealed::open(&key, &t).is_err(),
                    "a tampered frame opened (bit {bit})"
                ),
                other => panic!("a tampered body changed the framing: {other:?}"),
            }
        }
    }
}

/// `decode` on an arbitrary buffer, checked against the layout.
fn check_decode(buf: &[u8]) {
    let result = sealed::decode(buf);
    let (hi, lo) = match buf {
        [hi, lo, ..] => (*hi, *lo),
        _ => {
            assert_eq!(
                result,
                Ok(Decoded::Incomplete {
                    needed: sealed::HEADER_LEN - buf.len()
                }),
                "a buffer without a whole length prefix"
            );
            return;
        }
    };
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let expected_error = match len {
        0 => Some(FrameError::Empty),
        n if n < sealed::MIN_LEN => Some(FrameError::TooShort { len: n }),
        n if n > sealed::MAX_LEN => Some(FrameError::TooLong { len: n }),
        _ => None,
    };
    match (result, expected_error) {
        (Err(e), Some(expected)) => assert_eq!(e, expected),
        (Err(e), None) => panic!("decode refused a valid length {len}: {e}"),
        (Ok(d), Some(expected)) => panic!("decode accepted length {len} ({expected}): {d:?}"),
        (Ok(Decoded::Incomplete { needed }), None) => {
            assert!(
                buf.len() < sealed::HEADER_LEN + len,
                "incomplete though the frame is whole"
            );
            assert_eq!(needed, sealed::HEADER_LEN + len - buf.len());
        }
        (Ok(Decoded::Frame(frame, used)), None) => {
            assert_eq!(used, sealed::HEADER_LEN + len);
            assert_eq!(frame.len(), len);
            assert_eq!(
                frame.encode(),
                &buf[..used],
                "the frame is not the buffer's bytes"
            );
            assert_eq!(frame.nonce(), &buf[2..2 + sealed::NONCE_LEN]);
            assert_eq!(frame.ciphertext(), &buf[2 + sealed::NONCE_LEN..used]);
        }
    }
}
