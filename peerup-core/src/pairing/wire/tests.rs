use super::*;
use crate::identity::keypair_from_seed;
use proptest::prelude::*;
use sha2::Digest;

fn peer(seed: u8) -> PeerId {
    keypair_from_seed([seed; 32]).public().to_peer_id()
}

fn group() -> GroupId {
    GroupId::new("ab12cd34").unwrap()
}

fn token() -> PairingToken {
    PairingToken::from_bytes(core::array::from_fn(|i| 0xa0 + i as u8))
}

fn paired(peers: &[(u8, &str)]) -> Response {
    Response::Paired(Paired {
        group: group(),
        group_size: 3,
        peers: peers
            .iter()
            .map(|&(s, n)| PairedPeer {
                peer: peer(s),
                name: n.to_owned(),
            })
            .collect(),
    })
}

fn introduction(peers: &[(u8, &str, Option<[u8; 32]>)]) -> Introduction {
    Introduction {
        group: group(),
        group_size: 3,
        peers: peers
            .iter()
            .map(|&(s, n, p)| IntroducedPeer {
                peer: peer(s),
                name: n.to_owned(),
                proof: p.map(Proof::from_bytes),
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// Layouts, field by field

#[test]
fn request_layout() {
    let r = Request {
        token: token(),
        name: "laptop".into(),
    };
    let mut want: Vec<u8> = (0xa0..0xb0).collect();
    want.push(6);
    want.extend(b"laptop");
    assert_eq!(r.encode().unwrap(), want);
    assert_eq!(r.encoded_len(), want.len());
    assert_eq!(Request::decode(&want).unwrap(), r);
    let empty = Request {
        token: token(),
        name: String::new(),
    };
    assert_eq!(empty.encode().unwrap().len(), 17);
    assert_eq!(Request::decode(&empty.encode().unwrap()).unwrap(), empty);
    assert_eq!(Request::MAX_LEN, 81);
}

#[test]
fn failure_layout_is_gos_write_error() {
    let want = [&[0x00, 14][..], b"pairing failed"].concat();
    assert_eq!(Response::failed().encode().unwrap(), want);
    assert_eq!(Response::failed().encoded_len(), want.len());
    assert_eq!(Response::decode(&want).unwrap(), Response::failed());
}

#[test]
fn success_layout() {
    let r = paired(&[(1, "home"), (2, "")]);
    let mut want = vec![0x01, 8];
    want.extend(b"ab12cd34");
    want.extend([3, 2]);
    for (s, n) in [(1u8, &b"home"[..]), (2, b"")] {
        let id = peer(s).to_bytes();
        want.push(id.len() as u8);
        want.extend(id);
        want.push(n.len() as u8);
        want.extend(n);
    }
    assert_eq!(r.encode().unwrap(), want);
    assert_eq!(r.encoded_len(), want.len());
    assert_eq!(Response::decode(&want).unwrap(), r);
    // Go returns early on count 0 without reading further.
    let alone = Response::Paired(Paired {
        group: group(),
        group_size: 1,
        peers: vec![],
    });
    let bytes = alone.encode().unwrap();
    assert_eq!(bytes, [&[1, 8][..], b"ab12cd34", &[1, 0]].concat());
    assert_eq!(Response::decode(&bytes).unwrap(), alone);
}

#[test]
fn introduction_layout() {
    let i = introduction(&[(1, "home", Some([7; 32])), (2, "", None)]);
    let mut want = vec![0x01, 8];
    want.extend(b"ab12cd34");
    want.extend([3, 2]);
    for (s, n, p) in [(1u8, &b"home"[..], [7u8; 32]), (2, b"", [0; 32])] {
        let id = peer(s).to_base58();
        want.extend((id.len() as u16).to_be_bytes());
        want.extend(id.as_bytes());
        want.push(n.len() as u8);
        want.extend(n);
        want.extend(p);
    }
    assert_eq!(i.encode().unwrap(), want);
    assert_eq!(i.encoded_len(), want.len());
    assert_eq!(Introduction::decode(&want).unwrap(), i);
    assert_eq!(Introduction::MAX_LEN, 106_658);
}

/// Go's `TestEncodePeerNotify_WireFormat` (group "g1", size 2, one peer
/// "AB" named "x", no proof): the framing is the same, and the decoder gets
/// as far as the peer ID, which is not a real one. With a real peer ID in
/// its place the message decodes.
#[test]
fn go_notify_wire_format_vector() {
    let mut go = vec![
        0x01, 0x02, b'g', b'1', 0x02, 0x01, 0x00, 0x02, b'A', b'B', 0x01, b'x',
    ];
    go.extend([0; 32]);
    assert_eq!(
        Introduction::decode(&go),
        Err(IntroductionError::Peer {
            index: 0,
            error: PeerError::InvalidPeerId
        })
    );
    let real = Introduction {
        group: GroupId::new("g1").unwrap(),
        group_size: 2,
        peers: vec![IntroducedPeer {
            peer: peer(1),
            name: "x".into(),
            proof: None,
        }],
    };
    let bytes = real.encode().unwrap();
    let id = peer(1).to_base58();
    let mut want = go[..6].to_vec();
    want.extend((id.len() as u16).to_be_bytes());
    want.extend(id.as_bytes());
    want.extend(&go[10..]);
    assert_eq!(bytes, want);
    assert_eq!(Introduction::decode(&bytes).unwrap(), real);
    // Go's TestReadPeerNotify_BadVersion and _Truncated.
    let bad = [
        0x99, 0x08, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', 2, 0,
    ];
    assert_eq!(
        Introduction::decode(&bad),
        Err(IntroductionError::UnsupportedVersion { version: 0x99 })
    );
    assert_eq!(
        Introduction::decode(&[0x01]),
        Err(IntroductionError::Truncated {
            field: "group ID length"
        })
    );
    // Go's TestReadPeerNotify_TruncatedPeerData.
    assert_eq!(
        Introduction::decode(&[0x01, 0x02, b'g', b'1', 0x02, 0x01]),
        Err(IntroductionError::Peer {
            index: 0,
            error: PeerError::Truncated {
                field: "peer ID length"
            }
        })
    );
}

// ---------------------------------------------------------------------------
// Group IDs and proofs

#[test]
fn group_ids() {
    assert_eq!(
        GroupId::from_random([0xab, 0x12, 0xcd, 0x34]).as_str(),
        "ab12cd34"
    );
    assert_eq!(GroupId::from_random([0, 0, 0, 1]).as_str(), "00000001");
    assert!(GroupId::new("family.2026_a-b").is_ok());
    assert_eq!(GroupId::new(""), Err(GroupIdError::Empty));
    assert_eq!(
        GroupId::new(&"a".repeat(65)),
        Err(GroupIdError::TooLong { len: 65 })
    );
    assert!(GroupId::new(&"a".repeat(64)).is_ok());
    for (text, byte, position) in [
        ("ab cd", b' ', 3),
        ("ab#cd", b'#', 3),
        ("x\n", b'\n', 2),
        ("é", 0xc3, 1),
        ("a=b", b'=', 2),
    ] {
        assert_eq!(
            GroupId::new(text),
            Err(GroupIdError::InvalidByte { byte, position }),
            "{text:?}"
        );
    }
    // Every group ID is a valid `group=` value.
    let attrs = crate::authorized_keys::Attributes::new()
        .with("group", GroupId::new("family.2026_a-b").unwrap().as_str())
        .unwrap();
    assert_eq!(attrs.group(), Some("family.2026_a-b"));
    assert_eq!("ab12cd34".parse::<GroupId>().unwrap(), group());
    assert_eq!(
        format!("{} {:?}", group(), group()),
        "ab12cd34 \"ab12cd34\""
    );
}

#[test]
fn proof_is_hmac_sha256_of_the_group_id_under_the_token() {
    // RFC 4231 test case 2 has a 4-byte key; here: an independent HMAC
    // written out from its definition (RFC 2104) over sha2.
    let key = token();
    let mut k = [0u8; 64];
    k[..16].copy_from_slice(key.as_bytes());
    let inner: Vec<u8> = k.iter().map(|b| b ^ 0x36).chain(*b"ab12cd34").collect();
    let inner = Sha256::digest(&inner);
    let outer: Vec<u8> = k.iter().map(|b| b ^ 0x5c).chain(inner).collect();
    let want: [u8; 32] = Sha256::digest(&outer).into();
    let proof = Proof::compute(&key, &group());
    assert_eq!(proof.as_bytes(), &want);
    assert!(proof.is_proof_of(&key, &group()));
    assert!(!proof.is_proof_of(&key, &GroupId::new("ab12cd35").unwrap()));
    assert!(!proof.is_proof_of(&PairingToken::from_bytes([0; 16]), &group()));
    let hex = proof.to_hex();
    assert_eq!(hex.len(), 64);
    assert_eq!(Proof::from_hex(&hex), Ok(proof));
    assert_eq!(Proof::from_hex(&hex.to_uppercase()), Ok(proof));
    assert!(Proof::from_hex(&hex[1..]).is_err());
    assert!(Proof::from_hex(&format!("{}g", &hex[1..])).is_err());
    assert!(Proof::from_hex("é").is_err());
    // Every proof is a valid `hmac_proof=` value.
    let attrs = crate::authorized_keys::Attributes::new()
        .with("hmac_proof", &hex)
        .unwrap();
    assert_eq!(attrs.hmac_proof(), Some(hex.as_str()));
    assert_eq!(proof.to_string(), hex);
    assert_eq!(format!("{proof:?}"), format!("Proof({hex})"));
}

// ---------------------------------------------------------------------------
// What a hostile joiner can send to the relay

#[test]
fn request_rejections() {
    let ok = Request {
        token: token(),
        name: "laptop".into(),
    }
    .encode()
    .unwrap();
    for cut in 0..16 {
        assert_eq!(
            Request::decode(&ok[..cut]),
            Err(RequestError::Truncated { field: "token" })
        );
    }
    assert_eq!(
        Request::decode(&ok[..16]),
        Err(RequestError::Truncated {
            field: "name length"
        })
    );
    for cut in 17..ok.len() {
        let e = Request::decode(&ok[..cut]).unwrap_err();
        assert_eq!(e, RequestError::Truncated { field: "name" });
        assert!(e.is_truncated());
    }
    let mut long = ok[..16].to_vec();
    long.push(65);
    long.extend([b'a'; 65]);
    let e = Request::decode(&long).unwrap_err();
    assert_eq!(
        e,
        RequestError::InvalidName(TextError::TooLong { len: 65, max: 64 })
    );
    assert!(!e.is_truncated());
    // The longest name is fine.
    let mut max = ok[..16].to_vec();
    max.push(64);
    max.extend([b'a'; 64]);
    assert_eq!(max.len(), Request::MAX_LEN);
    assert_eq!(Request::decode(&max).unwrap().name, "a".repeat(64));
    let with = |name: &[u8]| [&ok[..16], &[name.len() as u8][..], name].concat();
    assert_eq!(
        Request::decode(&with(&[0xff, 0xfe])),
        Err(RequestError::InvalidName(TextError::NotUtf8))
    );
    // A line break would forge a line of relay_authorized_keys.
    assert_eq!(
        Request::decode(&with(b"a\n12D3KooW")),
        Err(RequestError::InvalidName(TextError::ControlCharacter {
            found: '\n',
            position: 2
        }))
    );
    for bad in [
        "\t",
        "\u{1b}[31m",
        "\u{7f}",
        "\u{85}",
        "a\u{202e}b",
        "\u{2028}",
    ] {
        assert!(
            matches!(
                Request::decode(&with(bad.as_bytes())),
                Err(RequestError::InvalidName(
                    TextError::ControlCharacter { .. }
                ))
            ),
            "{bad:?}"
        );
    }
    // Spaces, '#' and other scripts are display text.
    assert_eq!(
        Request::decode(&with("My Laptop #2 ノート".as_bytes()))
            .unwrap()
            .name,
        "My Laptop #2 ノート"
    );
    let mut trailing = ok.clone();
    trailing.push(0);
    assert_eq!(
        Request::decode(&trailing),
        Err(RequestError::TrailingBytes { len: 1 })
    );
}

#[test]
fn request_encoding_refuses_what_decoding_would() {
    let long = Request {
        token: token(),
        name: "a".repeat(65),
    };
    assert_eq!(
        long.encode(),
        Err(EncodeError::InvalidName(TextError::TooLong {
            len: 65,
            max: 64
        }))
    );
    let line = Request {
        token: token(),
        name: "a\nb".into(),
    };
    assert!(matches!(
        line.encode(),
        Err(EncodeError::InvalidName(TextError::ControlCharacter { .. }))
    ));
}

#[test]
fn request_debug_redacts_the_token() {
    let d = format!(
        "{:?}",
        Request {
            token: token(),
            name: "x".into()
        }
    );
    assert!(d.contains("<redacted>") && !d.contains("160"), "{d}");
}

// ---------------------------------------------------------------------------
// What a hostile relay can send to a joiner

#[test]
fn response_rejections() {
    use ResponseError::*;
    assert_eq!(Response::decode(&[]), Err(Truncated { field: "status" }));
    assert_eq!(
        Response::decode(&[0x02]),
        Err(UnknownStatus { status: 0x02 })
    );
    assert_eq!(
        Response::decode(&[0xff, 0]),
        Err(UnknownStatus { status: 0xff })
    );
    // Failure answers.
    assert_eq!(
        Response::decode(&[0]),
        Err(Truncated {
            field: "message length"
        })
    );
    assert_eq!(
        Response::decode(&[0, 3, b'a']),
        Err(Truncated { field: "message" })
    );
    assert_eq!(Response::decode(&[0, 2, b'a', 0x1b]), Err(InvalidMessage));
    assert_eq!(Response::decode(&[0, 1, 0xc3]), Err(InvalidMessage));
    assert_eq!(
        Response::decode(&[0, 1, b'a', b'b']),
        Err(TrailingBytes { len: 1 })
    );
    assert_eq!(
        Response::decode(&[0, 0]),
        Ok(Response::Failed {
            message: String::new()
        })
    );

    let ok = paired(&[(1, "home"), (2, "nas")]).encode().unwrap();
    // Every cut is truncated somewhere, and says so.
    for cut in 1..ok.len() {
        let e = Response::decode(&ok[..cut]).unwrap_err();
        assert!(e.is_truncated(), "{cut}: {e}");
    }
    // Count says 2 but 1 follows; count says 1 but 2 follow.
    let one = paired(&[(1, "home")]).encode().unwrap();
    let mut more = one.clone();
    more[11] = 2;
    assert_eq!(
        Response::decode(&more),
        Err(Peer {
            index: 1,
            error: PeerError::Truncated {
                field: "peer ID length"
            }
        })
    );
    let mut fewer = ok.clone();
    fewer[11] = 1;
    assert!(matches!(
        Response::decode(&fewer),
        Err(TrailingBytes { len }) if len == ok.len() - one.len()
    ));
    // Group ID.
    let mut bad = ok.clone();
    bad[2] = b' ';
    assert_eq!(
        Response::decode(&bad),
        Err(InvalidGroupId(GroupIdError::InvalidByte {
            byte: b' ',
            position: 1
        }))
    );
    assert_eq!(
        Response::decode(&[1, 0, 1, 0]),
        Err(InvalidGroupId(GroupIdError::Empty))
    );
    let mut long = vec![1, 65];
    long.extend([b'a'; 65]);
    long.extend([2, 0]);
    assert_eq!(
        Response::decode(&long),
        Err(InvalidGroupId(GroupIdError::TooLong { len: 65 }))
    );
    // Sizes.
    let mut zero = ok.clone();
    zero[10] = 0;
    assert_eq!(Response::decode(&zero), Err(GroupSizeZero));
    let mut full = ok.clone();
    full[10] = 2;
    assert_eq!(
        Response::decode(&full),
        Err(TooManyPeers {
            count: 2,
            group_size: 2
        })
    );
    // Peer IDs: garbage, one byte short, a trailing byte inside the length.
    let mut garbage = ok.clone();
    garbage[13] = 0x55;
    assert_eq!(
        Response::decode(&garbage),
        Err(Peer {
            index: 0,
            error: PeerError::InvalidPeerId
        })
    );
    let id = peer(1).to_bytes();
    let entry = |id: &[u8], name: &[u8]| {
        let mut v = vec![1, 8];
        v.extend(b"ab12cd34");
        v.extend([3, 1, id.len() as u8]);
        v.extend(id);
        v.push(name.len() as u8);
        v.extend(name);
        v
    };
    assert!(Response::decode(&entry(&id, b"x")).is_ok());
    assert_eq!(
        Response::decode(&entry(&id[..id.len() - 1], b"x")),
        Err(Peer {
            index: 0,
            error: PeerError::InvalidPeerId
        })
    );
    assert_eq!(
        Response::decode(&entry(&[&id[..], &[0]].concat(), b"x")),
        Err(Peer {
            index: 0,
            error: PeerError::InvalidPeerId
        })
    );
    assert_eq!(
        Response::decode(&entry(&[], b"x")),
        Err(Peer {
            index: 0,
            error: PeerError::InvalidPeerId
        })
    );
    // Names.
    assert_eq!(
        Response::decode(&entry(&id, &[0xff])),
        Err(Peer {
            index: 0,
            error: PeerError::InvalidName(TextError::NotUtf8)
        })
    );
    assert_eq!(
        Response::decode(&entry(&id, b"\x1b]0;pwned\x07")),
        Err(Peer {
            index: 0,
            error: PeerError::InvalidName(TextError::ControlCharacter {
                found: '\u{1b}',
                position: 1
            })
        })
    );
    assert_eq!(
        Response::decode(&entry(&id, &[b'a'; 65])),
        Err(Peer {
            index: 0,
            error: PeerError::InvalidName(TextError::TooLong { len: 65, max: 64 })
        })
    );
    // The same peer twice.
    let twice = Response::Paired(Paired {
        group: group(),
        group_size: 3,
        peers: vec![
            PairedPeer {
                peer: peer(1),
                name: "a".into(),
            },
            PairedPeer {
                peer: peer(1),
                name: "b".into(),
            },
        ],
    });
    assert_eq!(
        twice.encode(),
        Err(EncodeError::DuplicatePeer { peer: peer(1) })
    );
    let mut dup = paired(&[(1, "a")]).encode().unwrap();
    dup[11] = 2;
    let tail = dup[12..].to_vec();
    dup.extend(tail);
    assert_eq!(
        Response::decode(&dup),
        Err(Peer {
            index: 1,
            error: PeerError::Duplicate { peer: peer(1) }
        })
    );
    // Over the reading limit, whatever it holds.
    let mut huge = ok.clone();
    huge.resize(Response::MAX_LEN + 1, 0);
    assert_eq!(
        Response::decode(&huge),
        Err(TooLong {
            len: Response::MAX_LEN + 1
        })
    );
    assert_eq!(Response::MAX_LEN, 76_500);
}

#[test]
fn response_encoding_refuses_what_decoding_would() {
    assert!(matches!(
        Response::Failed {
            message: "bad\n".into()
        }
        .encode(),
        Err(EncodeError::InvalidMessage { .. })
    ));
    assert!(matches!(
        Response::Failed {
            message: "a".repeat(256)
        }
        .encode(),
        Err(EncodeError::InvalidMessage { .. })
    ));
    let mut r = paired(&[(1, "a"), (2, "b")]);
    let Response::Paired(p) = &mut r else {
        unreachable!()
    };
    p.group_size = 2;
    assert_eq!(
        r.encode(),
        Err(EncodeError::TooManyPeers {
            count: 2,
            group_size: 2
        })
    );
    let Response::Paired(p) = &mut r else {
        unreachable!()
    };
    p.group_size = 0;
    assert_eq!(r.encode(), Err(EncodeError::GroupSizeZero));
    let Response::Paired(p) = &mut r else {
        unreachable!()
    };
    p.group_size = 3;
    p.peers[1].name = "b".repeat(65);
    assert!(matches!(
        r.encode(),
        Err(EncodeError::InvalidPeerName { index: 1, .. })
    ));
}

/// The largest answer a relay can give still fits the joiner's limit.
#[test]
fn largest_answer_fits() {
    let peers: Vec<PairedPeer> = (0..254u8)
        .map(|i| PairedPeer {
            peer: peer(i),
            name: "n".repeat(64),
        })
        .collect();
    let r = Response::Paired(Paired {
        group: GroupId::new(&"g".repeat(64)).unwrap(),
        group_size: 255,
        peers,
    });
    let bytes = r.encode().unwrap();
    assert!(bytes.len() < Response::MAX_LEN, "{}", bytes.len());
    assert_eq!(Response::decode(&bytes).unwrap(), r);
}

// ---------------------------------------------------------------------------
// What a hostile relay can send to a node

#[test]
fn introduction_rejections() {
    use IntroductionError::*;
    assert_eq!(
        Introduction::decode(&[]),
        Err(Truncated { field: "version" })
    );
    assert_eq!(
        Introduction::decode(&[2]),
        Err(UnsupportedVersion { version: 2 })
    );
    let ok = introduction(&[(1, "home", Some([7; 32])), (2, "", None)])
        .encode()
        .unwrap();
    for cut in 1..ok.len() {
        let e = Introduction::decode(&ok[..cut]).unwrap_err();
        assert!(e.is_truncated(), "{cut}: {e}");
    }
    let mut trailing = ok.clone();
    trailing.push(0);
    assert_eq!(
        Introduction::decode(&trailing),
        Err(TrailingBytes { len: 1 })
    );
    let mut fewer = ok.clone();
    fewer[11] = 1;
    assert!(matches!(
        Introduction::decode(&fewer),
        Err(TrailingBytes { .. })
    ));
    let mut zero = ok.clone();
    zero[10] = 0;
    assert_eq!(Introduction::decode(&zero), Err(GroupSizeZero));
    let mut full = ok.clone();
    full[10] = 1;
    assert_eq!(
        Introduction::decode(&full),
        Err(TooManyPeers {
            count: 2,
            group_size: 1
        })
    );
    let mut gid = ok.clone();
    gid[3] = b'#';
    assert!(matches!(
        Introduction::decode(&gid),
        Err(InvalidGroupId(GroupIdError::InvalidByte { byte: b'#', .. }))
    ));

    let entry = |id: &[u8], id_len: u16, name: &[u8]| {
        let mut v = vec![1, 8];
        v.extend(b"ab12cd34");
        v.extend([3, 1]);
        v.extend(id_len.to_be_bytes());
        v.extend(id);
        v.push(name.len() as u8);
        v.extend(name);
        v.extend([0; 32]);
        v
    };
    let text = peer(1).to_base58();
    let good = entry(text.as_bytes(), text.len() as u16, b"x");
    assert_eq!(Introduction::decode(&good).unwrap().peers[0].peer, peer(1));
    // A huge length is refused before anything is read.
    assert_eq!(
        Introduction::decode(&entry(b"", u16::MAX, b"x")),
        Err(Peer {
            index: 0,
            error: PeerError::PeerIdTooLong { len: 65535 }
        })
    );
    assert_eq!(
        Introduction::decode(&entry(&[b'1'; 129], 129, b"x")),
        Err(Peer {
            index: 0,
            error: PeerError::PeerIdTooLong { len: 129 }
        })
    );
    // Not base58, not a peer ID, not UTF-8, raw bytes instead of text,
    // another spelling.
    let raw = peer(1).to_bytes();
    for bad in [
        b"12D3KooW0000".to_vec(),
        b"AB".to_vec(),
        vec![0xff; 52],
        raw.clone(),
        format!(" {text}").into_bytes(),
        text.as_bytes()[..text.len() - 1].to_vec(),
    ] {
        assert_eq!(
            Introduction::decode(&entry(&bad, bad.len() as u16, b"x")),
            Err(Peer {
                index: 0,
                error: PeerError::InvalidPeerId
            }),
            "{bad:?}"
        );
    }
    // Names: over 64 bytes is fine here (an authorized_keys comment), a
    // control character is not.
    let long = "n".repeat(255);
    assert_eq!(
        Introduction::decode(&entry(text.as_bytes(), text.len() as u16, long.as_bytes()))
            .unwrap()
            .peers[0]
            .name,
        long
    );
    assert_eq!(
        Introduction::decode(&entry(text.as_bytes(), text.len() as u16, b"a\r")),
        Err(Peer {
            index: 0,
            error: PeerError::InvalidName(TextError::ControlCharacter {
                found: '\r',
                position: 2
            })
        })
    );
    // Duplicates.
    let mut dup = introduction(&[(1, "a", None)]).encode().unwrap();
    dup[11] = 2;
    let tail = dup[12..].to_vec();
    dup.extend(tail);
    assert_eq!(
        Introduction::decode(&dup),
        Err(Peer {
            index: 1,
            error: PeerError::Duplicate { peer: peer(1) }
        })
    );
    let mut huge = ok.clone();
    huge.resize(Introduction::MAX_LEN + 1, 0);
    assert!(matches!(Introduction::decode(&huge), Err(TooLong { .. })));
}

#[test]
fn largest_introduction_fits() {
    let peers: Vec<IntroducedPeer> = (0..254u8)
        .map(|i| IntroducedPeer {
            peer: peer(i),
            name: "n".repeat(255),
            proof: Some(Proof::from_bytes([i | 1; 32])),
        })
        .collect();
    let i = Introduction {
        group: GroupId::new(&"g".repeat(64)).unwrap(),
        group_size: 255,
        peers,
    };
    let bytes = i.encode().unwrap();
    assert!(bytes.len() <= Introduction::MAX_LEN);
    assert_eq!(Introduction::decode(&bytes).unwrap(), i);
}

#[test]
fn introduction_encoding_refuses_what_decoding_would() {
    let mut i = introduction(&[(1, "a", None), (1, "b", None)]);
    assert_eq!(
        i.encode(),
        Err(EncodeError::DuplicatePeer { peer: peer(1) })
    );
    i.peers[1].peer = peer(2);
    i.peers[1].name = "b\n".into();
    assert!(matches!(
        i.encode(),
        Err(EncodeError::InvalidPeerName { index: 1, .. })
    ));
    i.peers[1].name = "n".repeat(256);
    assert!(matches!(
        i.encode(),
        Err(EncodeError::InvalidPeerName { index: 1, .. })
    ));
    i.peers[1].name = "b".into();
    i.group_size = 2;
    assert_eq!(
        i.encode(),
        Err(EncodeError::TooManyPeers {
            count: 2,
            group_size: 2
        })
    );
    let many = Introduction {
        group: group(),
        group_size: 255,
        peers: (0..=255u8)
            .map(|s| IntroducedPeer {
                peer: peer(s),
                name: String::new(),
                proof: None,
            })
            .collect(),
    };
    assert_eq!(
        many.encode(),
        Err(EncodeError::TooManyPeers {
            count: 256,
            group_size: 255
        })
    );
}

// ---------------------------------------------------------------------------
// Properties

fn arb_peer() -> impl Strategy<Value = PeerId> {
    prop_oneof![
        4 => any::<[u8; 32]>().prop_map(|s| keypair_from_seed(s).public().to_peer_id()),
        // SHA-256 peer IDs (RSA keys): `Qm...`, 34 bytes.
        1 => any::<[u8; 32]>().prop_map(|d| PeerId::from_bytes(&[&[0x12, 0x20][..], &d].concat()).unwrap()),
    ]
}

fn arb_name(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 ._#é-]{0,40}")
        .unwrap()
        .prop_map(move |s| {
            let mut s = s;
            while s.len() > max {
                s.pop();
            }
            s
        })
}

fn arb_group() -> impl Strategy<Value = GroupId> {
    "[a-zA-Z0-9._-]{1,64}".prop_map(|s| GroupId::new(&s).unwrap())
}

fn dedup(peers: Vec<PeerId>) -> Vec<PeerId> {
    let mut seen = BTreeSet::new();
    peers.into_iter().filter(|p| seen.insert(*p)).collect()
}

proptest! {
    #[test]
    fn request_round_trip(token in any::<[u8; 16]>(), name in arb_name(MAX_NAME_LEN)) {
        let r = Request { token: PairingToken::from_bytes(token), name };
        let bytes = r.encode().unwrap();
        prop_assert_eq!(bytes.len(), r.encoded_len());
        prop_assert!(bytes.len() <= Request::MAX_LEN);
        prop_assert_eq!(Request::decode(&bytes).unwrap(), r);
    }

    #[test]
    fn response_round_trip(
        group in arb_group(), extra in 1u8..=20,
        peers in proptest::collection::vec((arb_peer(), arb_name(MAX_NAME_LEN)), 0..12),
        failed in any::<bool>(), message in "[ -~]{0,60}",
    ) {
        let r = if failed {
            Response::Failed { message }
        } else {
            let ids = dedup(peers.iter().map(|(p, _)| *p).collect());
            let peers: Vec<PairedPeer> = ids.into_iter().zip(peers.into_iter().map(|(_, n)| n))
                .map(|(peer, name)| PairedPeer { peer, name }).collect();
            Response::Paired(Paired { group, group_size: peers.len() as u8 + extra, peers })
        };
        let bytes = r.encode().unwrap();
        prop_assert_eq!(bytes.len(), r.encoded_len());
        prop_assert!(bytes.len() <= Response::MAX_LEN);
        prop_assert_eq!(Response::decode(&bytes).unwrap(), r);
        // Every strict prefix reads as truncated.
        let cut = bytes.len() / 2;
        prop_assert!(Response::decode(&bytes[..cut]).unwrap_err().is_truncated());
    }

    #[test]
    fn introduction_round_trip(
        group in arb_group(), extra in 1u8..=20,
        peers in proptest::collection::vec(
            (arb_peer(), arb_name(MAX_INTRODUCED_NAME_LEN), proptest::option::of(any::<[u8; 32]>())), 0..12),
    ) {
        let ids = dedup(peers.iter().map(|(p, _, _)| *p).collect());
        let peers: Vec<IntroducedPeer> = ids.into_iter().zip(peers)
            .map(|(peer, (_, name, proof))| IntroducedPeer {
                peer, name,
                proof: proof.filter(|p| *p != [0; 32]).map(Proof::from_bytes),
            })
            .collect();
        let i = Introduction { group, group_size: peers.len() as u8 + extra, peers };
        let bytes = i.encode().unwrap();
        prop_assert_eq!(bytes.len(), i.encoded_len());
        prop_assert!(bytes.len() <= Introduction::MAX_LEN);
        prop_assert_eq!(Introduction::decode(&bytes).unwrap(), i);
        let cut = bytes.len() / 2;
        prop_assert!(Introduction::decode(&bytes[..cut]).unwrap_err().is_truncated());
    }

    #[test]
    fn proof_hex_round_trip(bytes in any::<[u8; 32]>()) {
        let p = Proof::from_bytes(bytes);
        prop_assert_eq!(Proof::from_hex(&p.to_hex()), Ok(p));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
        let _ = Introduction::decode(&bytes);
        if let Ok(text) = core::str::from_utf8(&bytes) {
            let _ = GroupId::new(text);
            let _ = Proof::from_hex(text);
        }
    }

    /// Accepted bytes are canonical: encoding the decoded message gives
    /// them back (structured inputs reach far deeper than random bytes).
    #[test]
    fn decoders_accept_only_canonical_bytes(
        peers in proptest::collection::vec((arb_peer(), arb_name(64)), 1..4),
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let ids = dedup(peers.iter().map(|(p, _)| *p).collect());
        let r = Response::Paired(Paired {
            group: group(), group_size: 10,
            peers: ids.iter().map(|p| PairedPeer { peer: *p, name: "x".into() }).collect(),
        });
        let i = Introduction {
            group: group(), group_size: 10,
            peers: ids.iter().map(|p| IntroducedPeer { peer: *p, name: "y".into(), proof: None }).collect(),
        };
        let mut rb = r.encode().unwrap();
        let mut ib = i.encode().unwrap();
        for (at, byte) in &flips {
            let n = at.index(rb.len());
            rb[n] = *byte;
            let n = at.index(ib.len());
            ib[n] = *byte;
        }
        if let Ok(back) = Response::decode(&rb) {
            prop_assert_eq!(back.encode().unwrap(), rb);
        }
        if let Ok(back) = Introduction::decode(&ib) {
            prop_assert_eq!(back.encode().unwrap(), ib);
        }
    }
}
