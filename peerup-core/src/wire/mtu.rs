//! How large a QUIC packet a link may carry: the largest UDP payload of
//! a link's MTU, for QUIC's MTU discovery (ARCHITECTURE.md, "QUIC packet
//! size").
//!
//! quinn's MTU discovery searches up to 1,452 bytes on every path: what
//! an Ethernet frame carries over IPv4 and IPv6 alike. A path whose first
//! link is larger than Ethernet (jumbo frames on a LAN, the loopback
//! interface) carries more, and TCP uses it (its segment size follows the
//! link). [`max_udp_payload`] says how far discovery may search on such a
//! link; on a link of Ethernet's size or less it says nothing, so
//! discovery keeps quinn's bound there. [`may_carry_more_than_ethernet`]
//! says which addresses may be reached over such a link at all: loopback
//! and private networks, never the internet, whose paths are
//! Ethernet-sized or smaller whatever the first link is.

use core::net::IpAddr;

/// The IPv4 header (without options) and the UDP header.
const IPV4_HEADERS: u32 = 20 + 8;

/// The IPv6 header (without extension headers) and the UDP header.
const IPV6_HEADERS: u32 = 40 + 8;

/// The largest UDP payload of an IPv4 datagram: its total length is 16
/// bits, headers included.
const IPV4_MAX_PAYLOAD: u32 = 65_535 - IPV4_HEADERS;

/// The largest UDP payload of an IPv6 packet (without jumbograms): its
/// payload length is 16 bits, the UDP header included.
const IPV6_MAX_PAYLOAD: u32 = 65_535 - 8;

/// Ethernet's MTU: links up to this size keep quinn's bound.
pub const ETHERNET_MTU: u32 = 1_500;

/// The largest UDP payload a link of MTU `link_mtu` carries for an
/// address of this family, where the link is larger than Ethernet;
/// `None` for a link of Ethernet's size or less (discovery then keeps
/// quinn's own bound, 1,452 bytes).
pub fn max_udp_payload(link_mtu: u32, ipv6: bool) -> Option<u16> {
    if link_mtu <= ETHERNET_MTU {
        return None;
    }
    let (headers, most) = if ipv6 {
        (IPV6_HEADERS, IPV6_MAX_PAYLOAD)
    } else {
        (IPV4_HEADERS, IPV4_MAX_PAYLOAD)
    };
    u16::try_from(link_mtu.saturating_sub(headers).min(most)).ok()
}

/// Whether a path to `ip` may carry more than Ethernet: a loopback
/// address, or one of a private network (RFC 1918, RFC 4193's unique
/// local, link-local), whose larger link is the network's own (a LAN
/// with jumbo frames, a cloud's VPC). A public address is reached over
/// the internet, whose paths carry Ethernet's size or less even where
/// the first link is larger (a cloud machine's 9,001-byte interface):
/// searching past 1,452 bytes there would only lose probes, for seconds
/// after every handshake.
pub fn may_carry_more_than_ethernet(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => may_carry_more_than_ethernet(IpAddr::V4(v4)),
            None => v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ethernet_and_smaller_links_keep_quinns_bound() {
        for mtu in [0, 576, 1_280, 1_420, 1_492, 1_500] {
            assert_eq!(max_udp_payload(mtu, false), None, "{mtu}");
            assert_eq!(max_udp_payload(mtu, true), None, "{mtu}");
        }
    }

    #[test]
    fn a_larger_link_carries_its_mtu_less_the_headers() {
        assert_eq!(max_udp_payload(1_501, false), Some(1_473));
        assert_eq!(max_udp_payload(9_000, false), Some(8_972));
        assert_eq!(max_udp_payload(9_000, true), Some(8_952));
    }

    #[test]
    fn loopback_is_bounded_by_the_largest_datagram() {
        // Linux's loopback: 65,536 bytes, more than one datagram holds.
        assert_eq!(max_udp_payload(65_536, false), Some(65_507));
        assert_eq!(max_udp_payload(65_536, true), Some(65_488));
        assert_eq!(max_udp_payload(u32::MAX, false), Some(65_507));
        assert_eq!(max_udp_payload(u32::MAX, true), Some(65_527));
    }

    #[test]
    fn loopback_and_private_networks_may_carry_more_the_internet_never() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.7",
            "172.16.0.1",
            "172.31.255.254",
            "192.168.1.20",
            "169.254.3.4",
            "::1",
            "fd12:3456::1",
            "fc00::1",
            "fe80::1",
            "::ffff:192.168.1.20",
        ] {
            assert!(may_carry_more_than_ethernet(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.64.0.1",
            "192.0.2.1",
            "0.0.0.0",
            "255.255.255.255",
            "2001:db8::1",
            "2606:4700::1111",
            "fec0::1",
            "::",
            "::ffff:8.8.8.8",
        ] {
            assert!(!may_carry_more_than_ethernet(ip.parse().unwrap()), "{ip}");
        }
    }

    proptest! {
        #[test]
        fn never_more_than_the_link_or_a_datagram_carries(mtu in any::<u32>(), ipv6 in any::<bool>()) {
            match max_udp_payload(mtu, ipv6) {
                None => prop_assert!(mtu <= ETHERNET_MTU),
                Some(payload) => {
                    let payload = u32::from(payload);
                    let headers = if ipv6 { IPV6_HEADERS } else { IPV4_HEADERS };
                    prop_assert!(mtu > ETHERNET_MTU);
                    prop_assert!(payload + headers <= mtu);
                    prop_assert!(payload <= 65_527);
                    // Above what discovery searches by default (1,452).
                    prop_assert!(payload > 1_452);
                }
            }
        }
    }
}
