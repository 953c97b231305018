// Copyright 2017-2020 Parity Technologies (UK) Ltd.
//
// Permission is hereby granted, free of charge, to any person obtaining a
// copy of this software and associated documentation files (the "Software"),
// to deal in the Software without restriction, including without limitation
// the rights to use, copy, modify, merge, publish, distribute, sublicense,
// and/or sell copies of the Software, and to permit persons to whom the
// Software is furnished to do so, subject to the following conditions:
//
// The above copyright notice and this permission notice shall be included in
// all copies or substantial portions of the Software.
//
// THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS
// OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
// FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
// AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
// LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
// FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
// DEALINGS IN THE SOFTWARE.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use quinn::{
    MtuDiscoveryConfig, VarInt,
    crypto::rustls::{QuicClientConfig, QuicServerConfig},
};

/// Config for the transport.
#[derive(Clone)]
pub struct Config {
    /// Timeout for the initial handshake when establishing a connection.
    /// The actual timeout is the minimum of this and the [`Config::max_idle_timeout`].
    pub handshake_timeout: Duration,
    /// Maximum duration of inactivity in ms to accept before timing out the connection.
    pub max_idle_timeout: u32,
    /// Period of inactivity before sending a keep-alive packet.
    /// Must be set lower than the idle_timeout of both
    /// peers to be effective.
    ///
    /// See [`quinn::TransportConfig::keep_alive_interval`] for more
    /// info.
    pub keep_alive_interval: Duration,
    /// Maximum number of incoming bidirectional streams that may be open
    /// concurrently by the remote peer.
    pub max_concurrent_stream_limit: u32,

    /// Max unacknowledged data in bytes that may be sent on a single stream.
    pub max_stream_data: u32,

    /// Max unacknowledged data in bytes that may be sent in total on all streams
    /// of a connection.
    pub max_connection_data: u32,

    /// Support QUIC version draft-29 for dialing and listening.
    ///
    /// Per default only QUIC Version 1 / [`libp2p_core::multiaddr::Protocol::QuicV1`]
    /// is supported.
    ///
    /// If support for draft-29 is enabled servers support draft-29 and version 1 on all
    /// QUIC listening addresses.
    /// As client the version is chosen based on the remote's address.
    #[deprecated(note = "QUIC draft versions are no longer supported")]
    pub support_draft_29: bool,

    /// TLS client config for the inner [`quinn::ClientConfig`].
    client_tls_config: Arc<QuicClientConfig>,
    /// TLS server config for the inner [`quinn::ServerConfig`].
    server_tls_config: Arc<QuicServerConfig>,
    /// Libp2p identity of the node.
    keypair: libp2p_identity::Keypair,

    /// Parameters governing MTU discovery. See [`MtuDiscoveryConfig`] for details.
    mtu_discovery_config: Option<MtuDiscoveryConfig>,

    // PATCH(peerup): the send window (see peerup's patches/README.md).
    /// Max unacknowledged data in bytes this side keeps in flight on all
    /// streams of a connection; `None`: quinn's default (10 MB).
    pub max_connection_send_data: Option<u64>,

    // PATCH(peerup): the UDP sockets' buffers (see peerup's patches/README.md).
    /// `SO_RCVBUF` and `SO_SNDBUF` asked for on every UDP socket the
    /// transport opens (the kernel caps them at `net.core.rmem_max` and
    /// `net.core.wmem_max`); `None`: the system's defaults.
    pub udp_socket_buffer: Option<usize>,

    // PATCH(peerup): MTU discovery per path (see peerup's patches/README.md).
    /// Looks up the largest UDP payload the local route to an address
    /// carries (its interface's MTU less the IP and UDP headers), or
    /// `None` where it is not known. Where that is above MTU discovery's
    /// upper bound, a connection to or from that address searches up to
    /// it instead, and the endpoints accept datagrams up to 65,527 bytes.
    /// `None`: one upper bound for every path.
    pub path_max_udp_payload: Option<fn(SocketAddr) -> Option<u16>>,
    /// The upper bound [`Config::mtu_upper_bound`] set.
    mtu_upper_bound: u16,
}

#[expect(deprecated)]
impl Config {
    /// Creates a new configuration object with default values.
    pub fn new(keypair: &libp2p_identity::Keypair) -> Self {
        let client_tls_config = Arc::new(
            QuicClientConfig::try_from(libp2p_tls::make_client_config(keypair, None).unwrap())
                .unwrap(),
        );
        let server_tls_config = Arc::new(
            QuicServerConfig::try_from(libp2p_tls::make_server_config(keypair).unwrap()).unwrap(),
        );
        Self {
            client_tls_config,
            server_tls_config,
            support_draft_29: false,
            handshake_timeout: Duration::from_secs(5),
            max_idle_timeout: 10 * 1000,
            max_concurrent_stream_limit: 256,
            keep_alive_interval: Duration::from_secs(5),
            max_connection_data: 15_000_000,

            // Ensure that one stream is not consuming the whole connection.
            max_stream_data: 10_000_000,
            keypair: keypair.clone(),
            mtu_discovery_config: Some(Default::default()),
            max_connection_send_data: None,
            udp_socket_buffer: None,
            path_max_udp_payload: None,
            mtu_upper_bound: DEFAULT_MTU_UPPER_BOUND,
        }
    }

    // PATCH(peerup): TLS configurations of the caller's (see peerup's
    // patches/README.md).
    /// Uses these TLS configurations instead of libp2p-tls's: the same
    /// libp2p handshake with another choice of cipher suites. The caller
    /// keeps the rules of the libp2p TLS handshake (its certificate and
    /// verifier, the `libp2p` ALPN, TLS 1.3); the peer's certificate is
    /// parsed by libp2p-tls after the handshake, as before.
    pub fn with_tls_configs(
        mut self,
        client: Arc<QuicClientConfig>,
        server: Arc<QuicServerConfig>,
    ) -> Self {
        self.client_tls_config = client;
        self.server_tls_config = server;
        self
    }

    /// Set the upper bound to the max UDP payload size that MTU discovery will search for.
    pub fn mtu_upper_bound(mut self, value: u16) -> Self {
        self.mtu_discovery_config
            .get_or_insert_with(Default::default)
            .upper_bound(value);
        self.mtu_upper_bound = value;
        self
    }

    /// Disable MTU path discovery (it is enabled by default).
    pub fn disable_path_mtu_discovery(mut self) -> Self {
        self.mtu_discovery_config = None;
        self
    }
}

/// Represents the inner configuration for [`quinn`].
#[derive(Debug, Clone)]
pub(crate) struct QuinnConfig {
    pub(crate) client_config: quinn::ClientConfig,
    pub(crate) server_config: quinn::ServerConfig,
    pub(crate) endpoint_config: quinn::EndpointConfig,
    // PATCH(peerup): MTU discovery per path.
    paths: PathMtu,
}

// PATCH(peerup): MTU discovery per path (see peerup's patches/README.md).
/// quinn's default upper bound for MTU discovery.
const DEFAULT_MTU_UPPER_BOUND: u16 = 1452;

/// The largest UDP payload quinn accepts as `max_udp_payload_size`.
const MAX_UDP_PAYLOAD: u16 = 65_527;

/// What a connection's transport configuration is made of, to make one
/// with another MTU discovery bound for a path that carries more.
#[derive(Debug, Clone)]
struct TransportParams {
    max_concurrent_stream_limit: u32,
    keep_alive_interval: Duration,
    max_idle_timeout: u32,
    max_stream_data: u32,
    max_connection_data: u32,
    max_connection_send_data: Option<u64>,
}

impl TransportParams {
    fn transport(&self, mtu_discovery_config: Option<MtuDiscoveryConfig>) -> quinn::TransportConfig {
        let mut transport = quinn::TransportConfig::default();
        // Disable uni-directional streams.
        transport.max_concurrent_uni_streams(0u32.into());
        transport.max_concurrent_bidi_streams(self.max_concurrent_stream_limit.into());
        // Disable datagrams.
        transport.datagram_receive_buffer_size(None);
        transport.keep_alive_interval(Some(self.keep_alive_interval));
        transport.max_idle_timeout(Some(VarInt::from_u32(self.max_idle_timeout).into()));
        transport.allow_spin(false);
        transport.stream_receive_window(self.max_stream_data.into());
        transport.receive_window(self.max_connection_data.into());
        transport.mtu_discovery_config(mtu_discovery_config);
        if let Some(send_window) = self.max_connection_send_data {
            transport.send_window(send_window);
        }
        transport
    }
}

#[derive(Debug, Clone)]
struct PathMtu {
    lookup: Option<fn(SocketAddr) -> Option<u16>>,
    discovery: Option<MtuDiscoveryConfig>,
    upper_bound: u16,
    params: TransportParams,
}

impl PathMtu {
    /// A transport configuration whose MTU discovery searches up to what
    /// the route to `addr` carries, where that is above the bound set for
    /// every path; `None` where it is not (or discovery is off).
    fn transport_for(&self, addr: SocketAddr) -> Option<Arc<quinn::TransportConfig>> {
        let lookup = self.lookup?;
        let mut discovery = self.discovery.clone()?;
        let bound = lookup(addr)?.min(MAX_UDP_PAYLOAD);
        if bound <= self.upper_bound {
            return None;
        }
        discovery.upper_bound(bound);
        Some(Arc::new(self.params.transport(Some(discovery))))
    }
}

impl QuinnConfig {
    /// The client configuration for a connection to `addr`.
    pub(crate) fn client_config_for(&self, addr: SocketAddr) -> quinn::ClientConfig {
        let mut client_config = self.client_config.clone();
        if let Some(transport) = self.paths.transport_for(addr) {
            client_config.transport_config(transport);
        }
        client_config
    }

    /// The server configuration for a connection from `addr`, where it
    /// differs from the endpoint's.
    pub(crate) fn server_config_for(&self, addr: SocketAddr) -> Option<Arc<quinn::ServerConfig>> {
        let transport = self.paths.transport_for(addr)?;
        let mut server_config = self.server_config.clone();
        server_config.transport = transport;
        Some(Arc::new(server_config))
    }
}

#[expect(deprecated)]
impl From<Config> for QuinnConfig {
    fn from(config: Config) -> QuinnConfig {
        let Config {
            client_tls_config,
            server_tls_config,
            max_idle_timeout,
            max_concurrent_stream_limit,
            keep_alive_interval,
            max_connection_data,
            max_stream_data,
            support_draft_29,
            handshake_timeout: _,
            keypair,
            mtu_discovery_config,
            max_connection_send_data,
            udp_socket_buffer: _,
            path_max_udp_payload,
            mtu_upper_bound,
        } = config;
        // PATCH(peerup): the transport configuration is made by
        // `TransportParams`, for every path and again for a path that
        // carries more (`PathMtu`).
        let params = TransportParams {
            max_concurrent_stream_limit,
            keep_alive_interval,
            max_idle_timeout,
            max_stream_data,
            max_connection_data,
            max_connection_send_data,
        };
        let transport = Arc::new(params.transport(mtu_discovery_config.clone()));
        let paths = PathMtu {
            lookup: path_max_udp_payload,
            discovery: mtu_discovery_config,
            upper_bound: mtu_upper_bound,
            params,
        };

        let mut server_config = quinn::ServerConfig::with_crypto(server_tls_config);
        server_config.transport = Arc::clone(&transport);
        // Disables connection migration.
        // Long-term this should be enabled, however we then need to handle address change
        // on connections in the `Connection`.
        server_config.migration(false);

        let mut client_config = quinn::ClientConfig::new(client_tls_config);
        client_config.transport_config(transport);

        let mut endpoint_config = keypair
            .derive_secret(b"libp2p quic stateless reset key")
            .map(|secret| {
                let reset_key = Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret));
                quinn::EndpointConfig::new(reset_key)
            })
            .unwrap_or_default();

        if !support_draft_29 {
            endpoint_config.supported_versions(vec![1]);
        }
        // PATCH(peerup): a path that carries more may send us more.
        if paths.lookup.is_some() && paths.discovery.is_some() {
            endpoint_config
                .max_udp_payload_size(MAX_UDP_PAYLOAD)
                .expect("65,527 is quinn's largest max_udp_payload_size");
        }

        QuinnConfig {
            client_config,
            server_config,
            endpoint_config,
            paths,
        }
    }
}
