//! The libp2p TLS handshake (`/tls/1.0.0`), offering AES-GCM first where
//! this CPU has AES instructions.
//!
//! libp2p-tls fixes its cipher suites with ChaCha20-Poly1305 first. On a
//! CPU with AES instructions, AES-128-GCM costs a fraction of ChaCha20's
//! cycles per byte (this project's machines: 4.4 against 2.8 GB/s in
//! `openssl speed`), and `peerup-bench` measured +35-40% throughput for a
//! proxied connection between two peerup peers, direct and relayed. This is
//! the same handshake with the same certificates (libp2p-tls's
//! [`certificate`] module makes and checks them) and the same rules:
//! TLS 1.3 only, exactly one self-signed certificate carrying the signed
//! libp2p public key, the `libp2p` ALPN, no SNI, mutual authentication
//! (the swarm then checks that a dialed peer is the peer ID it meant to
//! reach). Only the order of the cipher suites differs, and only where AES
//! is in hardware; a peer with other preferences (the Go version, a stock
//! rust-libp2p node) still negotiates with it as before.
//!
//! [`secure_tcp`](crate::runtime::secure_tcp) offers it before Noise; a peer
//! that does not speak TLS answers `na` and gets Noise.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use futures::future::{BoxFuture, Either, FutureExt, TryFutureExt};
use futures::io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsStream;
use libp2p::PeerId;
use libp2p::core::UpgradeInfo;
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade};
use libp2p::identity::Keypair;
use libp2p::tls::certificate;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::aws_lc_rs::cipher_suite::{
    TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, CommonState, DigitallySignedStruct, DistinguishedName, OtherError,
    SignatureScheme, SupportedCipherSuite,
};

/// The TLS protocol of libp2p.
pub const PROTOCOL: &str = "/tls/1.0.0";
/// The ALPN every libp2p TLS handshake carries.
const ALPN: &[u8] = b"libp2p";

/// Whether this CPU does AES-GCM in hardware.
fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The TLS 1.3 suites libp2p allows, in our order of preference: AES-GCM
/// first with AES instructions; without, libp2p-tls's own order
/// (ChaCha20-Poly1305 first), so such a peer's handshake is upstream's.
pub fn cipher_suites(aes: bool) -> Vec<SupportedCipherSuite> {
    if aes {
        vec![
            TLS13_AES_128_GCM_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS13_CHACHA20_POLY1305_SHA256,
        ]
    } else {
        vec![
            TLS13_CHACHA20_POLY1305_SHA256,
            TLS13_AES_256_GCM_SHA384,
            TLS13_AES_128_GCM_SHA256,
        ]
    }
}

/// Why a TLS handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate for our key could not be made.
    #[error("making the TLS certificate: {0}")]
    Certificate(#[from] certificate::GenError),
    /// rustls refused the configuration (or the certificate's key).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The handshake failed (I/O, or the peer's certificate was refused).
    #[error("TLS handshake: {0}")]
    Handshake(io::Error),
    /// The peer's certificate did not parse after the handshake.
    #[error("the peer's TLS certificate: {0}")]
    BadCertificate(#[from] certificate::ParseError),
}

/// The `/tls/1.0.0` upgrade, for dialing and listening.
#[derive(Clone)]
pub struct Config {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
}

impl Config {
    /// The upgrade for `keypair`, with the cipher order of this CPU.
    ///
    /// # Errors
    /// When the certificate cannot be made or rustls refuses it.
    pub fn new(keypair: &Keypair) -> Result<Config, TlsError> {
        Config::with_aes(keypair, aes_in_hardware())
    }

    /// The upgrade with AES-GCM first (`aes`) or ChaCha20-Poly1305 first.
    ///
    /// # Errors
    /// When the certificate cannot be made or rustls refuses it.
    pub fn with_aes(keypair: &Keypair, aes: bool) -> Result<Config, TlsError> {
        let (cert, key) = certificate::generate(keypair)?;
        let provider = Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: cipher_suites(aes),
            ..rustls::crypto::aws_lc_rs::default_provider()
        });
        // Our own certificate as it is: rustls's usual loading would refuse
        // the critical libp2p extension it does not know.
        let ours = Arc::new(AlwaysOurs(Arc::new(rustls::sign::CertifiedKey::new(
            vec![cert],
            rustls::crypto::aws_lc_rs::sign::any_ecdsa_type(&key)?,
        ))));
        let verifier = Arc::new(Verifier);
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(ours.clone());
        server.alpn_protocols = vec![ALPN.to_vec()];
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(ours);
        client.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Config {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The rustls configurations, for QUIC: its handshake is this one (the
    /// same certificate, verifier, ALPN and cipher order), carried in QUIC
    /// packets instead of a TCP stream.
    pub fn rustls(&self) -> (Arc<rustls::ClientConfig>, Arc<rustls::ServerConfig>) {
        (self.client.clone(), self.server.clone())
    }
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = std::iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        std::iter::once(PROTOCOL)
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, TlsStream<C>);
    type Error = TlsError;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, socket: C, _: Self::Info) -> Self::Future {
        async move {
            let stream = futures_rustls::TlsAcceptor::from(self.server)
                .accept(socket)
                .await
                .map_err(TlsError::Handshake)?;
            let peer = peer_of(stream.get_ref().1)?;
            Ok((peer, stream.into()))
        }
        .boxed()
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, TlsStream<C>);
    type Error = TlsError;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, socket: C, _: Self::Info) -> Self::Future {
        async move {
            // The libp2p TLS spec: no Server Name Indication (an unspecified
            // IP address turns it off).
            let name = ServerName::IpAddress(IpAddr::V4(Ipv4Addr::UNSPECIFIED).into());
            let stream = futures_rustls::TlsConnector::from(self.client)
                .connect(name, socket)
                .await
                .map_err(TlsError::Handshake)?;
            // The swarm compares this peer ID with the one dialed (a
            // `/p2p/` address) and drops the connection on a mismatch.
            let peer = peer_of(stream.get_ref().1)?;
            Ok((peer, stream.into()))
        }
        .boxed()
    }
}

/// Presents our one certificate, whatever the peer hints.
#[derive(Debug)]
struct AlwaysOurs(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for AlwaysOurs {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl rustls::server::ResolvesServerCert for AlwaysOurs {
    fn resolve(
        &self,
        _client_hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// The peer ID in the single certificate the verifier accepted.
fn peer_of(state: &CommonState) -> Result<PeerId, TlsError> {
    match state.peer_certificates() {
        Some([cert]) => Ok(certificate::parse(cert)?.peer_id()),
        _ => Err(TlsError::Handshake(io::Error::new(
            io::ErrorKind::InvalidData,
            "the peer presented no single TLS certificate",
        ))),
    }
}

/// Accepts exactly one certificate that libp2p-tls's [`certificate::parse`]
/// accepts (self-signed, in its validity period, carrying a libp2p public
/// key that signed the certificate's key), and handshake signatures made
/// with that certificate's key.
#[derive(Debug)]
struct Verifier;

fn verify_presented(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<(), rustls::Error> {
    if !intermediates.is_empty() {
        return Err(rustls::Error::General(
            "libp2p TLS requires exactly one certificate".into(),
        ));
    }
    certificate::parse(end_entity).map_err(other)?;
    Ok(())
}

fn verify_signature(
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    message: &[u8],
) -> Result<HandshakeSignatureValid, rustls::Error> {
    certificate::parse(cert)
        .map_err(other)?
        .verify_signature(dss.scheme, message, dss.signature())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

fn other(e: certificate::ParseError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(e))))
}

/// The schemes libp2p-tls verifies, in its order.
fn schemes() -> Vec<SignatureScheme> {
    vec![
        SignatureScheme::ECDSA_NISTP384_SHA384,
        SignatureScheme::ECDSA_NISTP256_SHA256,
        SignatureScheme::ED25519,
        SignatureScheme::RSA_PSS_SHA512,
        SignatureScheme::RSA_PSS_SHA384,
        SignatureScheme::RSA_PSS_SHA256,
        SignatureScheme::RSA_PKCS1_SHA512,
        SignatureScheme::RSA_PKCS1_SHA384,
        SignatureScheme::RSA_PKCS1_SHA256,
    ]
}

/// TLS 1.2 is never negotiated (the configurations allow 1.3 only).
fn no_tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::General("libp2p TLS is TLS 1.3 only".into()))
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        verify_presented(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(cert, dss, message)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes()
    }
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        verify_presented(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_signature(cert, dss, message)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes()
    }
}

/// TLS first, then Noise: the security upgrade every peerup connection
/// negotiates (multistream-select offers them in this order).
#[derive(Clone)]
pub struct TlsOrNoise {
    /// `/tls/1.0.0`.
    pub tls: Config,
    /// `/noise`.
    pub noise: libp2p::noise::Config,
}

impl UpgradeInfo for TlsOrNoise {
    type Info = &'static str;
    type InfoIter = std::vec::IntoIter<&'static str>;

    fn protocol_info(&self) -> Self::InfoIter {
        let mut v: Vec<&'static str> = vec![PROTOCOL];
        v.extend(self.noise.protocol_info());
        v.into_iter()
    }
}

/// Why the security handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The TLS handshake failed.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The Noise handshake failed.
    #[error("Noise handshake: {0}")]
    Noise(#[from] libp2p::noise::Error),
}

type NoiseOutput<C> = libp2p::noise::Output<C>;

impl<C> InboundConnectionUpgrade<C> for TlsOrNoise
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, Either<TlsStream<C>, NoiseOutput<C>>);
    type Error = SecurityError;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, socket: C, info: Self::Info) -> Self::Future {
        if info == PROTOCOL {
            self.tls
                .upgrade_inbound(socket, info)
                .map_ok(|(p, s)| (p, Either::Left(s)))
                .err_into()
                .boxed()
        } else {
            self.noise
                .upgrade_inbound(socket, info)
                .map_ok(|(p, s)| (p, Either::Right(s)))
                .err_into()
                .boxed()
        }
    }
}

impl<C> OutboundConnectionUpgrade<C> for TlsOrNoise
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = (PeerId, Either<TlsStream<C>, NoiseOutput<C>>);
    type Error = SecurityError;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, socket: C, info: Self::Info) -> Self::Future {
        if info == PROTOCOL {
            self.tls
                .upgrade_outbound(socket, info)
                .map_ok(|(p, s)| (p, Either::Left(s)))
                .err_into()
                .boxed()
        } else {
            self.noise
                .upgrade_outbound(socket, info)
                .map_ok(|(p, s)| (p, Either::Right(s)))
                .err_into()
                .boxed()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use futures::executor::block_on;
    use futures::future::{join, poll_fn};
    use futures::{AsyncReadExt, AsyncWriteExt};
    use libp2p::core::transport::{
        DialOpts, ListenerId, MemoryTransport, PortUse, Transport, TransportEvent,
    };
    use libp2p::core::upgrade::Version;
    use libp2p::core::{Endpoint, Multiaddr};

    use super::*;

    /// A connected pair of in-memory byte streams.
    fn pipe(
        port: u64,
    ) -> (
        impl AsyncRead + AsyncWrite + Send + Unpin,
        impl AsyncRead + AsyncWrite + Send + Unpin,
    ) {
        let addr: Multiaddr = format!("/memory/{port}").parse().unwrap();
        let mut listener = MemoryTransport::default();
        listener
            .listen_on(ListenerId::next(), addr.clone())
            .unwrap();
        let dial = MemoryTransport::default()
            .dial(
                addr,
                DialOpts {
                    role: Endpoint::Dialer,
                    port_use: PortUse::New,
                },
            )
            .unwrap();
        block_on(async move {
            let accept = async {
                loop {
                    let ev = poll_fn(|cx| Pin::new(&mut listener).poll(cx)).await;
                    if let TransportEvent::Incoming { upgrade, .. } = ev {
                        return upgrade.await.unwrap();
                    }
                }
            };
            let (a, b) = join(dial, accept).await;
            (a.unwrap(), b)
        })
    }

    fn handshake(
        client_aes: bool,
        server_aes: bool,
        port: u64,
    ) -> (SupportedCipherSuite, PeerId, PeerId) {
        let (ck, sk) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let client = Config::with_aes(&ck, client_aes).unwrap();
        let server = Config::with_aes(&sk, server_aes).unwrap();
        let (c, s) = pipe(port);
        block_on(async move {
            let (c, s) = join(
                client.upgrade_outbound(c, PROTOCOL),
                server.upgrade_inbound(s, PROTOCOL),
            )
            .await;
            let ((server_seen, mut c), (client_seen, mut s)) = (c.unwrap(), s.unwrap());
            assert_eq!(server_seen, sk.public().to_peer_id());
            assert_eq!(client_seen, ck.public().to_peer_id());
            // Bytes go both ways.
            let (w, r) = join(
                async {
                    c.write_all(b"ping").await.unwrap();
                    c.flush().await.unwrap();
                    let mut b = [0u8; 4];
                    c.read_exact(&mut b).await.unwrap();
                    b
                },
                async {
                    let mut b = [0u8; 4];
                    s.read_exact(&mut b).await.unwrap();
                    s.write_all(b"pong").await.unwrap();
                    s.flush().await.unwrap();
                    b
                },
            )
            .await;
            assert_eq!((&w, &r), (b"pong", b"ping"));
            let suite = c.get_ref().1.negotiated_cipher_suite().unwrap();
            (suite, server_seen, client_seen)
        })
    }

    #[test]
    fn aes_first_where_the_client_prefers_it() {
        let (suite, _, _) = handshake(true, true, 7_801);
        assert_eq!(suite.suite(), rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
        // The server follows the client's order: a ChaCha20-first client
        // (libp2p-tls, or a CPU without AES) keeps ChaCha20.
        let (suite, _, _) = handshake(false, true, 7_802);
        assert_eq!(
            suite.suite(),
            rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
        );
        let (suite, _, _) = handshake(true, false, 7_803);
        assert_eq!(suite.suite(), rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    }

    /// QUIC takes these configurations as they are (peerup-tokio): no
    /// early data (0-RTT data can be replayed), the libp2p ALPN, TLS 1.3
    /// only, AES-128-GCM present (QUIC's initial packets need it).
    #[test]
    fn the_configurations_quic_gets_allow_no_early_data() {
        let (client, server) = Config::with_aes(&Keypair::generate_ed25519(), true)
            .unwrap()
            .rustls();
        assert!(!client.enable_early_data);
        assert_eq!(server.max_early_data_size, 0);
        assert!(!server.send_half_rtt_data);
        assert_eq!(client.alpn_protocols, [ALPN.to_vec()]);
        assert_eq!(server.alpn_protocols, [ALPN.to_vec()]);
        for provider in [client.crypto_provider(), server.crypto_provider()] {
            assert_eq!(
                provider.cipher_suites[0].suite(),
                rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
            );
            assert!(
                provider
                    .cipher_suites
                    .iter()
                    .all(|s| s.version() == &rustls::version::TLS13)
            );
        }
    }

    #[test]
    fn tls_is_offered_before_noise() {
        let k = Keypair::generate_ed25519();
        let up = TlsOrNoise {
            tls: Config::new(&k).unwrap(),
            noise: libp2p::noise::Config::new(&k).unwrap(),
        };
        assert_eq!(
            up.protocol_info().collect::<Vec<_>>(),
            ["/tls/1.0.0", "/noise"]
        );
    }

    type Boxed = libp2p::core::transport::Boxed<(PeerId, libp2p::core::muxing::StreamMuxerBox)>;

    fn noise_only(k: &Keypair) -> Boxed {
        MemoryTransport::default()
            .upgrade(Version::V1Lazy)
            .authenticate(libp2p::noise::Config::new(k).unwrap())
            .multiplex(crate::runtime::yamux_config())
            .map(|(p, m), _| (p, libp2p::core::muxing::StreamMuxerBox::new(m)))
            .boxed()
    }

    fn peerup(k: &Keypair) -> Boxed {
        crate::runtime::secure_tcp(
            MemoryTransport::default(),
            k,
            &crate::runtime::TransportOptions::default(),
        )
        .unwrap()
    }

    /// Connects `dialer` to `listener` through multistream-select, as a
    /// connection does; returns the peer IDs each side saw.
    fn connect(mut dialer: Boxed, mut listener: Boxed, port: u64) -> (PeerId, PeerId) {
        let addr: Multiaddr = format!("/memory/{port}").parse().unwrap();
        listener
            .listen_on(ListenerId::next(), addr.clone())
            .unwrap();
        let dial = dialer
            .dial(
                addr,
                DialOpts {
                    role: Endpoint::Dialer,
                    port_use: PortUse::New,
                },
            )
            .unwrap();
        let dialed = std::rc::Rc::new(std::cell::Cell::new(None));
        let seen = dialed.clone();
        block_on(async move {
            let accept = std::pin::pin!(async {
                loop {
                    let ev = poll_fn(|cx| Pin::new(&mut listener).poll(cx)).await;
                    if let TransportEvent::Incoming { upgrade, .. } = ev {
                        return upgrade.await.unwrap().0;
                    }
                }
            });
            // The dialer's side completes first (multistream-select is
            // lazy about its last proposal): keep its connection polled so
            // what it still holds reaches the listener.
            let dial = std::pin::pin!(async move {
                let (peer, mut muxer) = dial.await.unwrap();
                seen.set(Some(peer));
                poll_fn(|cx| {
                    let _ = libp2p::core::muxing::StreamMuxerExt::poll_unpin(&mut muxer, cx);
                    std::task::Poll::<()>::Pending
                })
                .await
            });
            match futures::future::select(accept, dial).await {
                futures::future::Either::Left((accepted, _)) => {
                    (dialed.get().expect("the dialer finished first"), accepted)
                }
                futures::future::Either::Right(_) => unreachable!("driving never ends"),
            }
        })
    }

    #[test]
    fn noise_only_peers_still_connect_both_ways() {
        let (ours, theirs) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (ours_id, theirs_id) = (ours.public().to_peer_id(), theirs.public().to_peer_id());
        // We dial a Noise-only peer: it answers `na` to TLS, Noise follows.
        assert_eq!(
            connect(peerup(&ours), noise_only(&theirs), 7_811),
            (theirs_id, ours_id)
        );
        // A Noise-only peer dials us.
        assert_eq!(
            connect(noise_only(&theirs), peerup(&ours), 7_812),
            (ours_id, theirs_id)
        );
        // Two peerup peers (TLS).
        let other = Keypair::generate_ed25519();
        assert_eq!(
            connect(peerup(&ours), peerup(&other), 7_813),
            (other.public().to_peer_id(), ours_id)
        );
    }
}
