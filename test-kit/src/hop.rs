//! The circuit relay v2 hop protocol outside peerup, for reservations
//! without addresses (WIRE.md §17): [`BareRelay`], a plain libp2p relay
//! that knows no external address of its own (so it answers reservations
//! with an empty address list, as a go-libp2p relay without a public
//! address does), and [`reserve`], a client that sends RESERVE by hand and
//! returns the addresses of the answer, as any client would read them.

use std::sync::Arc;

use futures::channel::oneshot;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use futures::{FutureExt, StreamExt};
use peerup_net::libp2p::identity::Keypair;
use peerup_net::libp2p::multiaddr::Protocol;
use peerup_net::libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use peerup_net::libp2p::{Multiaddr, PeerId, StreamProtocol, Swarm, identify, relay};
use peerup_net::runtime::{Runtime, TransportOptions};

use super::{LIMIT, key};

/// The hop protocol (circuit relay v2, reservations and circuits).
const HOP: StreamProtocol = StreamProtocol::new("/libp2p/circuit/relay/0.2.0/hop");

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "peerup_net::libp2p::swarm::derive_prelude")]
struct Bare {
    relay: relay::Behaviour,
    identify: identify::Behaviour,
}

/// A plain libp2p relay on 127.0.0.1 (TCP) with no external address:
/// every reservation is accepted and answered with no address. No gating,
/// libp2p's default limits. Stops when dropped.
pub struct BareRelay {
    /// Its peer ID.
    pub peer_id: PeerId,
    /// `<listen addr>/p2p/<peer id>`.
    pub addr: Multiaddr,
    _stop: oneshot::Sender<()>,
}

impl BareRelay {
    /// Starts one; returns once it listens.
    pub async fn start(rt: &Arc<dyn Runtime>) -> BareRelay {
        let keypair = key();
        let peer_id = keypair.public().to_peer_id();
        let mut relay = relay::Behaviour::new(peer_id, relay::Config::default());
        // Serve without a confirmed external address (libp2p waits for
        // one otherwise), and never learn one: no address in the answers.
        relay.set_status(Some(relay::Status::Enable));
        let behaviour = Bare {
            relay,
            identify: identify::Behaviour::new(identify::Config::new(
                "/ipfs/id/1.0.0".to_owned(),
                keypair.public(),
            )),
        };
        let mut swarm = swarm(rt, &keypair, behaviour);
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
        let addr = rt
            .timeout(LIMIT, async {
                loop {
                    if let SwarmEvent::NewListenAddr { address, .. } =
                        swarm.select_next_some().await
                    {
                        return address;
                    }
                }
            })
            .await
            .expect("bare relay listens");
        assert_eq!(swarm.external_addresses().count(), 0);
        let (stop, stopped) = oneshot::channel::<()>();
        rt.spawn(Box::pin(async move {
            let mut stopped = stopped.fuse();
            loop {
                futures::select! {
                    _ = swarm.select_next_some() => {}
                    _ = stopped => return,
                }
            }
        }));
        BareRelay {
            peer_id,
            addr: addr.with(Protocol::P2p(peer_id)),
            _stop: stop,
        }
    }
}

/// A swarm on `rt`'s transport (TCP only) that keeps idle connections.
fn swarm<B: NetworkBehaviour>(rt: &Arc<dyn Runtime>, keypair: &Keypair, behaviour: B) -> Swarm<B> {
    let transport = rt
        .transport(
            keypair,
            &TransportOptions {
                quic: false,
                ..TransportOptions::default()
            },
        )
        .unwrap();
    let exec = rt.clone();
    let config = peerup_net::libp2p::swarm::Config::with_executor(move |f| exec.spawn(f))
        .with_idle_connection_timeout(LIMIT);
    Swarm::new(transport, behaviour, keypair.public().to_peer_id(), config)
}

/// Dials the relay at `relay` (`.../p2p/<relay>`) as `keypair`, sends a
/// RESERVE and returns the addresses of the relay's answer (an answer
/// other than OK fails the test).
pub async fn reserve(
    rt: &Arc<dyn Runtime>,
    keypair: &Keypair,
    relay: &Multiaddr,
) -> Vec<Multiaddr> {
    let Some(Protocol::P2p(relay_id)) = relay.iter().last() else {
        panic!("{relay} does not end in /p2p/<relay>");
    };
    let streams = peerup_net::streams::Behaviour::new();
    let control = streams.control();
    let mut swarm = swarm(rt, keypair, streams);
    swarm.dial(relay.clone()).unwrap();
    let (connected, is_connected) = oneshot::channel::<Result<(), String>>();
    let (stop, stopped) = oneshot::channel::<()>();
    rt.spawn(Box::pin(async move {
        let mut connected = Some(connected);
        let mut stopped = stopped.fuse();
        loop {
            futures::select! {
                e = swarm.select_next_some() => match e {
                    SwarmEvent::ConnectionEstablished { .. } => {
                        if let Some(c) = connected.take() {
                            let _ = c.send(Ok(()));
                        }
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        if let Some(c) = connected.take() {
                            let _ = c.send(Err(error.to_string()));
                        }
                    }
                    _ => {}
                },
                _ = stopped => return,
            }
        }
    }));
    let answer = rt
        .timeout(LIMIT, async {
            is_connected.await.unwrap().expect("dialing the relay");
            let mut stream = control.open(relay_id, HOP).await.unwrap().stream;
            // HopMessage { type: RESERVE (0) }, length-prefixed.
            stream.write_all(&[2, 0x08, 0x00]).await.unwrap();
            stream.close().await.unwrap();
            let len = read_varint(&mut stream).await;
            let mut msg = vec![0u8; usize::try_from(len).unwrap()];
            stream.read_exact(&mut msg).await.unwrap();
            msg
        })
        .await
        .expect("the relay answers RESERVE");
    drop(stop);
    let mut status = None;
    let mut addrs = Vec::new();
    for (field, value) in fields(&answer) {
        match (field, value) {
            // HopMessage.status
            (5, Value::Varint(v)) => status = Some(v),
            // HopMessage.reservation: Reservation.addrs is its field 2.
            (3, Value::Bytes(r)) => {
                for (f, v) in fields(&r) {
                    if let (2, Value::Bytes(a)) = (f, v) {
                        addrs.push(Multiaddr::try_from(a).unwrap());
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(status, Some(100), "the relay did not answer OK");
    addrs
}

async fn read_varint<R: futures::io::AsyncRead + Unpin>(r: &mut R) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let mut b = [0u8];
        r.read_exact(&mut b).await.unwrap();
        v |= u64::from(b[0] & 0x7f) << shift;
        if b[0] & 0x80 == 0 {
            return v;
        }
    }
    panic!("varint too long");
}

enum Value {
    Varint(u64),
    Bytes(Vec<u8>),
}

/// The fields of a protobuf message (varint and length-delimited ones; the
/// hop protocol has no other kind).
fn fields(mut buf: &[u8]) -> Vec<(u64, Value)> {
    fn varint(buf: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (b, rest) = buf.split_first().expect("truncated varint");
            *buf = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return v;
            }
        }
        panic!("varint too long");
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf);
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut buf)),
            2 => {
                let len = usize::try_from(varint(&mut buf)).unwrap();
                let (v, rest) = buf.split_at(len);
                buf = rest;
                Value::Bytes(v.to_vec())
            }
            t => panic!("unexpected protobuf wire type {t}"),
        };
        out.push((key >> 3, value));
    }
    out
}
