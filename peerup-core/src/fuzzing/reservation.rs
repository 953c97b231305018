//! Relay reservations: [`crate::reservation::Reservations`] against the
//! simulated swarm and reference model of `models::reservation` (the same
//! harness as its proptest).

use super::Input;
use crate::models::reservation::{Op, RELAYS, addr, run};
use crate::relay_addr::RelayAddr;

/// Relay reservations. The first byte picks 1-6 configured addresses (of
/// up to three relays, TCP or QUIC, so one relay may be listed twice);
/// then each byte is one swarm event, time step or timer (with a 16-bit
/// step in milliseconds for `Advance`), up to 256.
///
/// # Panics
/// When the machine dials a relay it is connected or dialing to, listens
/// before identify or twice, waits a back-off other than the model's (1 s
/// doubling to 30 s, reset by a reservation), acts before a retry is due
/// or not when it is, reports a deadline other than the model's earliest,
/// or does not hold every relay once the network behaves.
pub fn reservation(data: &[u8]) {
    let mut input = Input::new(data);
    let count = 1 + input.below(6);
    let config: Vec<RelayAddr> = (0..count)
        .map(|_| {
            let b = input.u8();
            addr(b % RELAYS, (b / 4) % 4)
        })
        .collect();
    let mut ops = Vec::new();
    while !input.is_empty() && ops.len() < 256 {
        let b = input.u8();
        let r = (b / 16) % RELAYS;
        ops.push(match b % 13 {
            0 => Op::Advance(u64::from(input.u16())),
            1 => Op::ToDeadline,
            2 => Op::Spurious,
            3 => Op::DialOk(r),
            4 => Op::DialErr(r),
            5 => Op::OtherConnect(r),
            6 => Op::OtherDialErr(r),
            7 => Op::Identify(r),
            8 => Op::Close(r),
            9 => Op::ListenAddr(r),
            10 => Op::ListenerClose(r),
            11 => Op::ToggleListenFail(r),
            _ => Op::Stranger,
        });
    }
    run(&config, &ops);
}
