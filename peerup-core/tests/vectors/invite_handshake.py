#!/usr/bin/env python3
"""Independent implementation of the peerup invite handshake (WIRE.md §6).

Computes every byte of a handshake for fixed keys, token, nonces and names
with PyNaCl (XChaCha20-Poly1305) and cryptography (X25519, HKDF-SHA256), and
writes invite_handshake.json beside this file. The Rust test
`peerup-core/tests/invite_vectors.rs` checks that the state machines produce
and accept exactly these bytes.

    pip install pynacl cryptography
    python3 peerup-core/tests/vectors/invite_handshake.py
"""
import json
import os
import struct

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

RAW = serialization.Encoding.Raw


def public(secret: bytes) -> bytes:
    key = X25519PrivateKey.from_private_bytes(secret).public_key()
    return key.public_bytes(RAW, serialization.PublicFormat.Raw)


def session_key(secret: bytes, their_public: bytes, token: bytes) -> bytes:
    shared = X25519PrivateKey.from_private_bytes(secret).exchange(
        X25519PublicKey.from_public_bytes(their_public))
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"peerup-invite-v1")
    return hkdf.derive(shared + token)


def sealed(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    ct = crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, None, nonce, key)
    body = nonce + ct
    assert 40 <= len(body) <= 4096
    return struct.pack(">H", len(body)) + body


def case(name, joiner_secret, inviter_secret, token, joiner_nonce, inviter_nonce,
         joiner_name, reply, joiner_token=None):
    """One handshake. `joiner_token` differs from `token` for a wrong code."""
    joiner_token = token if joiner_token is None else joiner_token
    jpub, ipub = public(joiner_secret), public(inviter_secret)
    jkey = session_key(joiner_secret, ipub, joiner_token)
    ikey = session_key(inviter_secret, jpub, token)
    out = {
        "name": name,
        "token": token.hex(),
        "joiner_token": joiner_token.hex(),
        "joiner_secret": joiner_secret.hex(),
        "inviter_secret": inviter_secret.hex(),
        "joiner_nonce": joiner_nonce.hex(),
        "inviter_nonce": inviter_nonce.hex(),
        "joiner_name": joiner_name,
        "hello": (b"\x01" + jpub).hex(),
        "inviter_public": ipub.hex(),
        "key": ikey.hex(),
        "joiner_key": jkey.hex(),
        "name_frame": sealed(jkey, joiner_nonce, joiner_name.encode()).hex(),
    }
    if reply is not None:
        out["reply"] = reply
        out["reply_frame"] = sealed(ikey, inviter_nonce, reply.encode()).hex()
    return out


def main():
    js = bytes(range(1, 33))
    is_ = bytes(range(101, 133))
    token = bytes.fromhex("0123456789abcdef")
    jn = bytes(range(201, 225))
    inn = bytes(range(31, 55))
    cases = [
        case("ok_named", js, is_, token, jn, inn, "laptop", "OK home"),
        case("ok_unnamed", js, is_, token, jn, inn, "", "OK "),
        case("refused", js, is_, token, jn, inn, "laptop", "ERR invite already used"),
        case("wrong_token", js, is_, token, jn, inn, "laptop", None,
             joiner_token=bytes.fromhex("0123456789abcdee")),
    ]
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "invite_handshake.json")
    with open(path, "w") as f:
        json.dump({"generator": "invite_handshake.py", "cases": cases}, f, indent=2)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
