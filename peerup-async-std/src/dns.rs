//! Name resolution for `/dns`, `/dns4` and `/dns6` multiaddrs.
//!
//! `libp2p-dns` 0.45 resolves with hickory on tokio only, so this wrapper
//! resolves with the system resolver through async-std's `ToSocketAddrs`
//! (`getaddrinfo` on async-std's blocking pool, off the executor), which
//! also honours `/etc/hosts` and the system's resolver configuration.
//!
//! A dial to an address holding a name (`/dns4/relay.example.com/tcp/7777/p2p/<id>`)
//! resolves the first `/dns*` component when the dial future is first
//! polled, keeps the addresses of the family it asks for (`/dns4`: IPv4,
//! `/dns6`: IPv6, `/dns`: both, in the resolver's order), and dials the
//! inner transport with each in turn until one connects (at most
//! [`MAX_ADDRESSES`]). Every other address, and listening, go to the inner
//! transport unchanged. `/dnsaddr` (TXT records) is not supported.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::future::BoxFuture;
use libp2p::core::multiaddr::{Multiaddr, Protocol};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};

/// How many resolved addresses one dial tries.
pub const MAX_ADDRESSES: usize = 8;

/// Wraps a transport so that it can dial names (see the [module
/// docs](self)).
pub struct Transport<T> {
    /// Shared with the dial futures, which dial the inner transport once
    /// the name is resolved. Only held for synchronous calls.
    inner: Arc<Mutex<T>>,
}

impl<T> fmt::Debug for Transport<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("dns::Transport").finish_non_exhaustive()
    }
}

impl<T> Transport<T> {
    /// Wraps `inner`. Does no I/O.
    pub fn new(inner: T) -> Self {
        Transport {
            inner: Arc::new(Mutex::new(inner)),
        }
    }
}

fn lock<T>(inner: &Mutex<T>) -> MutexGuard<'_, T> {
    // The inner transport holds no invariant a panic elsewhere could break.
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> libp2p::core::Transport for Transport<T>
where
    T: libp2p::core::Transport<Error = io::Error> + Send + Unpin + 'static,
    T::Dial: Send + 'static,
    T::Output: Send + 'static,
{
    type Output = T::Output;
    type Error = io::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = BoxFuture<'static, io::Result<T::Output>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<io::Error>> {
        lock(&self.inner).listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        lock(&self.inner).remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<io::Error>> {
        let Some(name) = Name::find(&addr) else {
            return Ok(lock(&self.inner).dial(addr, opts)?.boxed());
        };
        let inner = self.inner.clone();
        Ok(async move {
            let ips = name.resolve().await?;
            let mut last = None;
            for ip in ips.into_iter().take(MAX_ADDRESSES) {
                let target = name.replace(&addr, ip);
                let dial = lock(&inner).dial(target.clone(), opts);
                let result = match dial {
                    Ok(dial) => dial.await,
                    Err(TransportError::MultiaddrNotSupported(a)) => Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("cannot dial {a}"),
                    )),
                    Err(TransportError::Other(e)) => Err(e),
                };
                match result {
                    Ok(out) => return Ok(out),
                    Err(error) => {
                        tracing::debug!(%target, %error, "dial of a resolved address failed");
                        last = Some(error);
                    }
                }
            }
            Err(last.unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{}: no {} address", name.host, name.family),
                )
            }))
        }
        .boxed())
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, io::Error>> {
        Pin::new(&mut *lock(&self.inner)).poll(cx)
    }
}

/// Which addresses a name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Any,
    V4,
    V6,
}

impl Family {
    fn matches(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Any => "IP",
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// The first `/dns*` component of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    /// Its position among the address's components.
    index: usize,
    host: String,
    family: Family,
}

impl Name {
    fn find(addr: &Multiaddr) -> Option<Name> {
        addr.iter().enumerate().find_map(|(index, p)| {
            let (host, family) = match p {
                Protocol::Dns(h) => (h, Family::Any),
                Protocol::Dns4(h) => (h, Family::V4),
                Protocol::Dns6(h) => (h, Family::V6),
                _ => return None,
            };
            Some(Name {
                index,
                host: host.into_owned(),
                family,
            })
        })
    }

    /// The addresses of the name, of its family, without duplicates, in
    /// the resolver's order.
    async fn resolve(&self) -> io::Result<Vec<IpAddr>> {
        use async_std::net::ToSocketAddrs;
        let mut ips: Vec<IpAddr> = Vec::new();
        for a in (self.host.as_str(), 0).to_socket_addrs().await? {
            let ip = a.ip();
            if self.family.matches(&ip) && !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        tracing::trace!(host = %self.host, ?ips, "resolved");
        Ok(ips)
    }

    /// `addr` with this name replaced by `ip`.
    fn replace(&self, addr: &Multiaddr, ip: IpAddr) -> Multiaddr {
        addr.iter()
            .enumerate()
            .map(|(i, p)| if i == self.index { ip.into() } else { p })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use futures::future::Ready;
    use libp2p::core::Endpoint;
    use libp2p::core::Transport as _;
    use libp2p::core::transport::PortUse;

    use super::*;

    const DIAL: DialOpts = DialOpts {
        role: Endpoint::Dialer,
        port_use: PortUse::Reuse,
    };

    /// Records what it is asked to dial and "connects" to it.
    #[derive(Default)]
    struct Recorder {
        dialed: Arc<Mutex<Vec<Multiaddr>>>,
    }

    impl libp2p::core::Transport for Recorder {
        type Output = Multiaddr;
        type Error = io::Error;
        type ListenerUpgrade = Ready<io::Result<Multiaddr>>;
        type Dial = Ready<io::Result<Multiaddr>>;
        fn listen_on(
            &mut self,
            _: ListenerId,
            a: Multiaddr,
        ) -> Result<(), TransportError<io::Error>> {
            Err(TransportError::MultiaddrNotSupported(a))
        }
        fn remove_listener(&mut self, _: ListenerId) -> bool {
            false
        }
        fn dial(
            &mut self,
            a: Multiaddr,
            _: DialOpts,
        ) -> Result<Self::Dial, TransportError<io::Error>> {
            self.dialed.lock().unwrap().push(a.clone());
            Ok(futures::future::ok(a))
        }
        fn poll(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<TransportEvent<Self::ListenerUpgrade, io::Error>> {
            Poll::Pending
        }
    }

    #[test]
    fn finds_and_replaces_the_name() {
        let a: Multiaddr = "/dns4/relay.example.com/tcp/7777/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
            .parse()
            .unwrap();
        let n = Name::find(&a).unwrap();
        assert_eq!(
            (n.index, n.host.as_str(), n.family),
            (0, "relay.example.com", Family::V4)
        );
        assert_eq!(
            n.replace(&a, "192.0.2.1".parse().unwrap()).to_string(),
            "/ip4/192.0.2.1/tcp/7777/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
        );
        assert_eq!(Name::find(&"/ip4/1.2.3.4/tcp/1".parse().unwrap()), None);
    }

    #[test]
    fn resolves_localhost_by_family() {
        async_std::task::block_on(async {
            let rec = Recorder::default();
            let dialed = rec.dialed.clone();
            let mut t = Transport::new(rec);
            let out = t
                .dial("/dns4/localhost/tcp/4001".parse().unwrap(), DIAL)
                .unwrap()
                .await
                .unwrap();
            assert_eq!(out.to_string(), "/ip4/127.0.0.1/tcp/4001");
            // An IP address is passed through untouched, synchronously.
            let ip: Multiaddr = "/ip6/::1/tcp/1".parse().unwrap();
            assert_eq!(t.dial(ip.clone(), DIAL).unwrap().await.unwrap(), ip);
            assert_eq!(dialed.lock().unwrap().len(), 2);
        });
    }

    #[test]
    fn name_without_an_address_of_its_family_fails_the_dial() {
        async_std::task::block_on(async {
            let rec = Recorder::default();
            let dialed = rec.dialed.clone();
            let mut t = Transport::new(rec);
            // An address literal resolves without asking the network.
            let dial = t
                .dial("/dns6/127.0.0.1/tcp/1".parse().unwrap(), DIAL)
                .unwrap();
            let e = dial.await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound);
            assert!(e.to_string().contains("no IPv6 address"), "{e}");
            assert!(dialed.lock().unwrap().is_empty());
        });
    }
}
