#!/usr/bin/env python3
"""Independent implementation of the relay pairing formats (WIRE.md §13-§15).

Computes, with the Python 3 standard library only (hashlib, hmac, base64,
struct), every byte of:

- pairing codes (invite code version 2) and their base32 text form;
- the `/peerup/relay-pair/1.0.0` request, failure answer and success answer;
- a `/peerup/peer-notify/1.0.0` introduction;
- HMAC group proofs, HMAC-SHA256(key = token, msg = group ID);
- verification codes (emoji indices and emoji, number, verified= value).

Peer IDs are built by hand: the Ed25519 public key of a fixed seed (RFC 8032
section 6 reference arithmetic, below), its libp2p protobuf encoding
(08 01 12 20 || key), the identity multihash (00 24 || protobuf) and base58btc.
No libp2p, no peerup code. The emoji table is Go peer-up's `emojiTable`
(pkg/p2pnet/verify.go), copied with every code point written out.

Writes relay_pairing.json beside this file. The Rust test
`peerup-core/tests/relay_pairing_vectors.rs` checks that the encoders
produce and the decoders accept exactly these bytes.

    python3 peerup-core/tests/vectors/relay_pairing.py
"""
import base64
import hashlib
import hmac
import json
import os
import struct

# ---------------------------------------------------------------------------
# Ed25519 public keys (RFC 8032 section 6)

P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _inv(x):
    return pow(x, P - 2, P)


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, point):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, point)
        point = _add(point, point)
        s >>= 1
    return q


def _recover_x(y, sign):
    x2 = (y * y - 1) * _inv(D * y * y + 1) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P != 0:
        x = x * SQRT_M1 % P
    assert (x * x - x2) % P == 0
    if (x & 1) != sign:
        x = P - x
    return x


_GY = 4 * _inv(5) % P
_GX = _recover_x(_GY, 0)
G = (_GX, _GY, 1, _GX * _GY % P)


def ed25519_public(seed: bytes) -> bytes:
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    x, y, z, _ = _mul(a, G)
    zi = _inv(z)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


# ---------------------------------------------------------------------------
# Peer IDs

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(raw: bytes) -> str:
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * zeros + out


def b58decode(text: str) -> bytes:
    n = 0
    for c in text:
        n = n * 58 + B58.index(c)
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * zeros + body


def ed25519_peer(seed_byte: int) -> dict:
    seed = bytes([seed_byte]) * 32
    key = ed25519_public(seed)
    protobuf = b"\x08\x01\x12\x20" + key
    mh = b"\x00" + bytes([len(protobuf)]) + protobuf
    return {"seed": seed_byte, "public_key": key.hex(), "bytes": mh.hex(), "text": b58encode(mh)}


def sha256_peer(label: bytes) -> dict:
    """A SHA-256 peer ID (as an RSA key's is): 12 20 || digest."""
    mh = b"\x12\x20" + hashlib.sha256(label).digest()
    return {"label": label.decode(), "bytes": mh.hex(), "text": b58encode(mh)}


def text_peer(text: str) -> dict:
    mh = b58decode(text)
    assert b58encode(mh) == text
    return {"bytes": mh.hex(), "text": text}


# ---------------------------------------------------------------------------
# Pairing code (invite code version 2)


def code_text(raw: bytes) -> str:
    b32 = base64.b32encode(raw).decode().rstrip("=")
    return "-".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def pairing_code(token: bytes, ip: str, port: int, relay: dict, network: str) -> dict:
    relay_raw = bytes.fromhex(relay["bytes"])
    net = network.encode()
    assert len(token) == 16 and len(net) <= 63
    raw = (b"\x02" + token + bytes(int(x) for x in ip.split(".")) + struct.pack(">H", port)
           + bytes([len(relay_raw)]) + relay_raw + bytes([len(net)]) + net)
    assert len(raw) >= 24
    return {
        "token": token.hex(), "ip": ip, "port": port, "relay": relay["text"],
        "network": network, "bytes": raw.hex(), "text": code_text(raw),
        "relay_addr": f"/ip4/{ip}/tcp/{port}/p2p/{relay['text']}",
    }


# ---------------------------------------------------------------------------
# /peerup/relay-pair/1.0.0 and /peerup/peer-notify/1.0.0


def request(token: bytes, name: str) -> dict:
    n = name.encode()
    assert len(n) <= 64
    return {"token": token.hex(), "name": name, "bytes": (token + bytes([len(n)]) + n).hex()}


def failure() -> dict:
    msg = b"pairing failed"
    return {"message": msg.decode(), "bytes": (b"\x00" + bytes([len(msg)]) + msg).hex()}


def success(group: str, size: int, peers: list) -> dict:
    g = group.encode()
    out = b"\x01" + bytes([len(g)]) + g + bytes([size, len(peers)])
    for p, name in peers:
        raw = bytes.fromhex(p["bytes"])
        n = name.encode()
        out += bytes([len(raw)]) + raw + bytes([len(n)]) + n
    assert len(out) <= 255 * 300
    return {
        "group": group, "group_size": size,
        "peers": [{"peer": p["text"], "name": name} for p, name in peers],
        "bytes": out.hex(),
    }


def introduction(group: str, size: int, peers: list) -> dict:
    g = group.encode()
    out = b"\x01" + bytes([len(g)]) + g + bytes([size, len(peers)])
    for p, name, proof in peers:
        text = p["text"].encode()
        n = name.encode()
        out += struct.pack(">H", len(text)) + text + bytes([len(n)]) + n
        out += (proof or b"").ljust(32, b"\0")
    return {
        "group": group, "group_size": size,
        "peers": [{"peer": p["text"], "name": name, "proof": proof.hex() if proof else None}
                  for p, name, proof in peers],
        "bytes": out.hex(),
    }


def proof(token: bytes, group: str) -> bytes:
    return hmac.new(token, group.encode(), hashlib.sha256).digest()


# ---------------------------------------------------------------------------
# Verification code (WIRE.md §15)

EMOJI = [
    # Animals
    "\U0001f436", "\U0001f431", "\U0001f42d", "\U0001f439", "\U0001f430", "\U0001f98a", "\U0001f43b", "\U0001f43c",
    "\U0001f428", "\U0001f42f", "\U0001f981", "\U0001f42e", "\U0001f437", "\U0001f438", "\U0001f435", "\U0001f414",
    "\U0001f427", "\U0001f426", "\U0001f424", "\U0001f986", "\U0001f985", "\U0001f989", "\U0001f987", "\U0001f43a",
    "\U0001f417", "\U0001f434", "\U0001f984", "\U0001f41d", "\U0001f41b", "\U0001f98b", "\U0001f40c", "\U0001f41e",
    # Sea creatures
    "\U0001f419", "\U0001f991", "\U0001f990", "\U0001f980", "\U0001f421", "\U0001f420", "\U0001f41f", "\U0001f42c",
    "\U0001f433", "\U0001f40b", "\U0001f988", "\U0001f40a", "\U0001f405", "\U0001f406", "\U0001f993", "\U0001f98d",
    # More animals
    "\U0001f418", "\U0001f99b", "\U0001f98f", "\U0001f42a", "\U0001f42b", "\U0001f992", "\U0001f998", "\U0001f403",
    "\U0001f402", "\U0001f404", "\U0001f40e", "\U0001f416", "\U0001f40f", "\U0001f411", "\U0001f999", "\U0001f410",
    # Nature
    "\U0001f335", "\U0001f384", "\U0001f332", "\U0001f333", "\U0001f334", "\U0001f331", "\U0001f33f", "\U0001f340",
    "\U0001f341", "\U0001f342", "\U0001f343", "\U0001f33a", "\U0001f33b", "\U0001f339", "\U0001f940", "\U0001f337",
    "\U0001f33c", "\U0001f338", "\U0001f490", "\U0001f344", "\U0001f330", "\U0001f383", "\U0001f311", "\U0001f312",
    "\U0001f313", "\U0001f314", "\U0001f315", "\U0001f316", "\U0001f317", "\U0001f318", "\U0001f319", "\U0001f31a",
    # Weather
    "\u2b50", "\U0001f31f", "\U0001f4ab", "\u2728", "\u2604\ufe0f", "\U0001f324\ufe0f", "\u26c5", "\U0001f325\ufe0f",
    "\U0001f326\ufe0f", "\U0001f327\ufe0f", "\u26c8\ufe0f", "\U0001f329\ufe0f", "\U0001f32a\ufe0f", "\U0001f308", "\u2600\ufe0f", "\U0001f30a",
    # Food
    "\U0001f34e", "\U0001f34a", "\U0001f34b", "\U0001f34c", "\U0001f349", "\U0001f347", "\U0001f353", "\U0001f348",
    "\U0001f352", "\U0001f351", "\U0001f96d", "\U0001f34d", "\U0001f965", "\U0001f95d", "\U0001f345", "\U0001f951",
    "\U0001f336\ufe0f", "\U0001f955", "\U0001f954", "\U0001f9c5", "\U0001f33d", "\U0001f966", "\U0001f952", "\U0001f96c",
    "\U0001f346", "\U0001f95c", "\U0001fad8", "\U0001f35e", "\U0001f950", "\U0001f956", "\U0001f9c0", "\U0001f95a",
    # Objects
    "\U0001f511", "\U0001f5dd\ufe0f", "\U0001f512", "\U0001f513", "\U0001f528", "\U0001fa93", "\u26cf\ufe0f", "\U0001f527",
    "\U0001f529", "\u2699\ufe0f", "\U0001f9f2", "\U0001f52b", "\U0001f4a3", "\U0001f9e8", "\U0001fa9a", "\U0001f52a",
    "\U0001f5e1\ufe0f", "\U0001f6e1\ufe0f", "\U0001f3f9", "\U0001f3af", "\U0001fa83", "\U0001f9f0", "\U0001f52c", "\U0001f52d",
    "\U0001f4e1", "\U0001f489", "\U0001fa78", "\U0001f48a", "\U0001fa79", "\U0001f9ec", "\U0001f9a0", "\U0001f9eb",
    # Musical
    "\U0001f3b8", "\U0001f3b9", "\U0001f941", "\U0001f3ba", "\U0001f3b7", "\U0001fa97", "\U0001f3bb", "\U0001fa95",
    "\U0001f3b5", "\U0001f3b6", "\U0001f3bc", "\U0001f3a4", "\U0001f3a7", "\U0001f4fb", "\U0001f399\ufe0f", "\U0001f4ef",
    # Transport
    "\U0001f680", "\U0001f6f8", "\U0001f681", "\u26f5", "\U0001f682", "\U0001f697", "\U0001f695", "\U0001f3ce\ufe0f",
    "\U0001f68c", "\U0001f68e", "\U0001f691", "\U0001f692", "\U0001f6fb", "\U0001f69c", "\U0001f6f5", "\U0001f3cd\ufe0f",
    # Sports/Games
    "\u26bd", "\U0001f3c0", "\U0001f3c8", "\u26be", "\U0001f94e", "\U0001f3be", "\U0001f3d0", "\U0001f3c9",
    "\U0001f3b1", "\U0001f3d3", "\U0001f3f8", "\U0001f94a", "\U0001f3bf", "\u26f7\ufe0f", "\U0001f3c2", "\U0001fa82",
    # Symbols
    "\u2764\ufe0f", "\U0001f9e1", "\U0001f49b", "\U0001f49a", "\U0001f499", "\U0001f49c", "\U0001f90e", "\U0001f5a4",
    "\U0001f48e", "\U0001f525", "\U0001f4a7", "\U0001f300", "\U0001f3aa", "\U0001f3ad", "\U0001f3a8", "\U0001f9e9",
    "\u265f\ufe0f", "\U0001f3b2", "\U0001f9f8", "\U0001fa86", "\U0001fa84", "\U0001f3a9", "\U0001f451", "\U0001f48d",
    "\U0001f3c6", "\U0001f947", "\U0001f948", "\U0001f949", "\U0001f3c5", "\U0001f396\ufe0f", "\U0001f3f5\ufe0f", "\U0001f397\ufe0f",

]
# SHA-256 of the entries joined by "\n", computed from the Go source.
GO_TABLE_SHA256 = "98d47310f038b57bad561c5a26eb54ee2ae5d67a57412fa6a2854021373a1269"
assert len(EMOJI) == 256 and len(set(EMOJI)) == 256
assert hashlib.sha256("\n".join(EMOJI).encode()).hexdigest() == GO_TABLE_SHA256


def verification(a: dict, b: dict) -> dict:
    x, y = bytes.fromhex(a["bytes"]), bytes.fromhex(b["bytes"])
    lower, upper = (x, y) if x <= y else (y, x)
    h = hashlib.sha256(lower + upper).digest()
    indices = [h[0], h[2], h[4], h[6]]
    number = (h[8] << 16 | h[9] << 8 | h[10]) % 1_000_000
    return {
        "a": a["text"], "b": b["text"],
        "lower": a["text"] if lower == x else b["text"],
        "hash": h.hex(),
        "emoji_indices": indices,
        "emoji": [EMOJI[i] for i in indices],
        "emoji_text": " ".join(EMOJI[i] for i in indices),
        "number": number,
        "number_text": f"{number // 1000:03d}-{number % 1000:03d}",
        "verified": "sha256:" + h[:4].hex(),
    }


def main():
    peers = [ed25519_peer(n) for n in (1, 2, 3, 4)]
    rsa = sha256_peer(b"peerup relay pairing vectors: an RSA key stand-in")
    # The relay of Go peer-up's internal/invite/code_test.go.
    go_relay = text_peer("12D3KooWRzaGMTqQbRHNMZkAYj8ALUXoK99qSjhiFLanDoVWK9An")

    token_a = bytes(range(1, 17))
    token_b = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
    group = "ab12cd34"

    codes = [
        dict(name="plain", **pairing_code(token_a, "203.0.113.7", 7777, peers[0], "")),
        dict(name="network", **pairing_code(token_b, "198.51.100.20", 443, peers[0], "family")),
        # Go's TestV2EncodeDecodeRoundTrip inputs.
        dict(name="go_test", **pairing_code(token_a, "203.0.113.50", 7777, go_relay, "")),
    ]
    proofs = [
        {"token": t.hex(), "group": g, "proof": proof(t, g).hex()}
        for t, g in [(token_a, group), (token_b, group), (token_a, "00000000"), (token_b, "family-net.1")]
    ]
    out = {
        "generator": "relay_pairing.py",
        "peers": peers + [rsa, go_relay],
        "codes": codes,
        "requests": [
            request(token_a, "laptop"),
            request(token_b, ""),
            request(token_a, "My Laptop #2 \u30ce\u30fc\u30c8"),
            request(token_b, "n" * 64),
        ],
        "failure": failure(),
        "success": [
            success(group, 3, [(peers[1], "home"), (peers[2], "")]),
            success(group, 1, []),
            success("family.2026", 5, [(rsa, "nas.garage"), (peers[3], "phone")]),
        ],
        "introductions": [
            introduction(group, 3, [(peers[1], "home", proof(token_a, group)), (rsa, "paired-2026-01-01", None)]),
            introduction(group, 2, []),
        ],
        "proofs": proofs,
        "verification": [
            verification(peers[0], peers[1]),
            verification(peers[3], peers[2]),
            verification(peers[0], rsa),
            verification(go_relay, peers[1]),
            verification(peers[0], peers[0]),
        ],
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay_pairing.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
