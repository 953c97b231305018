//! Exposing local TCP services, and reaching a peer's (WIRE.md §4).
//!
//! Server: every inbound stream on `/peerup/<service>/1.0.0` is checked
//! against the policy (authorized, unexpired, in `allowed_peers`), then the
//! local address is dialed with a 10 s timeout (the stream is reset if that
//! fails) and the two are spliced with half-close.
//!
//! Client: [`Node::open_service`] connects (relays, DHT) and opens a stream
//! with a 30 s timeout, retrying after 1, 2 and 4 s; [`Node::forward`]
//! listens on a local TCP port and does that for every accepted
//! connection, within [`FORWARD_DEADLINE`] in all: a peer that is down or
//! unreachable costs a local client at most that long, then its socket is
//! reset and the reason logged (`cannot reach the remote service`), instead
//! of the two minutes the retries could add up to. Nothing is retried in
//! the background: each accepted connection makes its own attempt, so a
//! forward whose peer comes back works again at the next connection, and a
//! forward nobody uses costs nothing while its peer is away.
//!
//! Live changes: [`Node::expose_service`], [`Node::unexpose_service`],
//! [`Node::set_service_rule`] and [`Node::apply_services`] (the daemon's
//! reload) change what is served while the node runs. A service that is
//! removed stops being negotiated at once (a peer opening it hears "not
//! supported", as for a name never exposed); one that is disabled is still
//! negotiated and every stream is refused by the policy (logged as
//! `DENIED`, as at start). In both cases, and when a service's
//! `allowed_peers` no longer lists a peer, the proxied connections that
//! the change no longer allows are cut on both sides (the local TCP side
//! sees a reset, the peer's stream ends), as a revocation cuts a peer's:
//! a change that takes access away takes it away now, not at the next
//! connection. A service whose local address changes is removed and
//! exposed again, so its open connections (to the old address) are cut
//! too.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use std::collections::BTreeMap;

use futures::StreamExt;
use futures::channel::oneshot;
use futures::future::{AbortHandle, Abortable};
use futures::io::{AsyncRead, AsyncWrite};
use libp2p::swarm::ConnectionId;
use libp2p::{PeerId, Stream, StreamProtocol};
use peerup_core::authz::{Decision, Direction, ServiceRule, StreamKind};
use peerup_core::config::node::{Host, LocalAddress};
use peerup_core::time::Backoff;
use peerup_core::wire::ConnectionPath;
use peerup_core::wire::label::DnsLabel;
use peerup_core::wire::protocol;

use super::{
    ConnectError, Event, Inner, IntoServiceName, InvalidServiceName, Node, ProxyState,
    ServiceError, ServiceSpec, StartError,
};
use crate::runtime::{Runtime, TcpStream};
use crate::splice::{Counters, Splice};
use crate::streams::{Inbound, OpenError};

/// Why a proxied connection was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The peer's authorization was revoked or expired.
    Revoked,
    /// The service was removed or disabled, or no longer lets the peer in.
    ServiceChanged,
}

/// What cuts one proxied connection, and what it carries.
pub(crate) struct ProxyCancel {
    /// The peer on the other side.
    pub peer: PeerId,
    /// The service this node serves on it; `None` when it is a forwarded
    /// connection to a peer's service.
    pub served: Option<DnsLabel>,
    /// Its path, for the policy's decision.
    pub path: ConnectionPath,
    /// Cuts it.
    pub cancel: oneshot::Sender<Cut>,
}

/// What [`Node::apply_services`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServicesChange {
    /// Services exposed that were not.
    pub added: Vec<DnsLabel>,
    /// Services no longer exposed.
    pub removed: Vec<DnsLabel>,
    /// Services whose local address, `enabled` or `allowed_peers`
    /// changed.
    pub changed: Vec<DnsLabel>,
    /// Proxied connections cut because the change no longer allows them.
    pub cut: usize,
}

impl ServicesChange {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Why [`Node::set_service_rule`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceRuleError {
    /// The name is not a DNS label.
    #[error(transparent)]
    InvalidName(#[from] InvalidServiceName),
    /// No service of that name is exposed.
    #[error("service `{name}` is not exposed (expose it first)")]
    NotExposed {
        /// The service.
        name: String,
    },
}

/// Connections one forwarded port carries at once; more are refused.
pub const MAX_FORWARDED: usize = 4096;

/// Time to dial the local service.
pub const LOCAL_DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for one attempt to open a stream to a peer's service.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// The most time a forwarded connection ([`Node::forward`]) spends reaching
/// the peer's service (connecting, retries included) before its local
/// socket is reset.
pub const FORWARD_DEADLINE: Duration = Duration::from_secs(15);
/// Waits before the retries of [`Node::open_service`].
pub const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// A stream to a peer's service: raw TCP bytes both ways; closing it
/// half-closes (the peer's service sees EOF and can still answer).
pub struct ServiceStream {
    stream: Stream,
    peer: PeerId,
    connection: ConnectionId,
    path: ConnectionPath,
}

impl std::fmt::Debug for ServiceStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceStream")
            .field("peer", &self.peer)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl ServiceStream {
    /// The peer.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Direct or relayed.
    pub fn path(&self) -> ConnectionPath {
        self.path
    }

    /// The connection it runs on.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }

    /// The libp2p stream.
    pub fn into_inner(self) -> Stream {
        self.stream
    }
}

impl AsyncRead for ServiceStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServiceStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}

/// Why a peer's service could not be reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenServiceError {
    /// The peer could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The peer does not expose the service.
    #[error("peer {peer} does not expose a service `{service}` (check the name in its config)")]
    UnknownService {
        /// The peer.
        peer: PeerId,
        /// The service.
        service: String,
    },
    /// The service name is not a DNS label.
    #[error(transparent)]
    InvalidName(#[from] InvalidServiceName),
    /// Every attempt failed.
    #[error("cannot open service `{service}` on {peer} after {attempts} attempts: {last}")]
    Failed {
        /// The peer.
        peer: PeerId,
        /// The service.
        service: String,
        /// Attempts made.
        attempts: usize,
        /// The last error.
        last: String,
    },
}

/// A TCP port that forwards every connection to a peer's service.
#[derive(Debug)]
pub struct Forwarder {
    local_addr: SocketAddr,
    abort: AbortHandle,
    open: Arc<std::sync::atomic::AtomicUsize>,
    /// Ends (cancelled) once the listening socket is closed.
    closed: Option<oneshot::Receiver<()>>,
}

/// A forwarder's listening socket, and what tells [`Forwarder::close`]
/// it is closed: fields drop in order, the socket first.
struct Listening {
    listener: Box<dyn crate::runtime::TcpListener>,
    _closed: oneshot::Sender<()>,
}

impl Forwarder {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Local connections accepted and not yet ended (those still reaching
    /// the peer included).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Stops accepting (connections in progress continue). The socket is
    /// closed shortly after, by the task that accepted on it; see
    /// [`Forwarder::close`] to wait for that.
    pub fn stop(&self) {
        self.abort.abort();
    }

    /// Stops accepting and returns once the listening socket is closed,
    /// so that its port can be bound again at once (a forward moved or
    /// changed in place). Connections in progress continue.
    pub async fn close(mut self) {
        self.abort.abort();
        if let Some(closed) = self.closed.take() {
            let _ = closed.await;
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

impl Node {
    /// Exposes a local TCP service to authorized peers as
    /// `/peerup/<name>/1.0.0`.
    ///
    /// # Errors
    /// [`StartError::Service`] for a name that is not a DNS label, a
    /// reserved name, an invalid address, or a service already exposed.
    pub fn expose_service(
        &self,
        name: impl IntoServiceName,
        local: &str,
        rule: ServiceRule,
    ) -> Result<(), StartError> {
        let name = name.into_service_name().map_err(|e| StartError::Service {
            name: e.name().to_owned(),
            source: ServiceError::InvalidName(e.reason().clone()),
        })?;
        let local: LocalAddress = local.parse().map_err(|e| StartError::Service {
            name: name.to_string(),
            source: ServiceError::LocalAddress(e),
        })?;
        self.expose(name, ServiceSpec { local, rule })
    }

    /// Exposes a service already checked and typed (the config's and
    /// [`NodeOptions::with_service`](super::NodeOptions::with_service)'s).
    pub(crate) fn expose(&self, name: DnsLabel, spec: ServiceSpec) -> Result<(), StartError> {
        let mut services = self
            .inner()
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.expose_locked(&mut services, name, spec)
    }

    /// [`Node::expose`] with the live service map locked (one change at a
    /// time: [`Node::apply_services`] makes several under one lock).
    fn expose_locked(
        &self,
        services: &mut BTreeMap<DnsLabel, ServiceSpec>,
        name: DnsLabel,
        spec: ServiceSpec,
    ) -> Result<(), StartError> {
        let err = |source| StartError::Service {
            name: name.to_string(),
            source,
        };
        if protocol::is_reserved_service_name(name.as_str()) {
            return Err(err(ServiceError::Reserved));
        }
        if services.contains_key(&name) {
            return Err(err(ServiceError::AlreadyExposed));
        }
        let proto = StreamProtocol::try_from_owned(protocol::service(&name))
            .map_err(|e| err(ServiceError::Protocol(e)))?;
        let incoming = self
            .inner()
            .control
            .accept(proto)
            .map_err(|_| err(ServiceError::AlreadyExposed))?;
        let ServiceSpec { local, rule } = spec.clone();
        let enabled = rule.enabled;
        self.inner()
            .policy
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .set_service(name.clone(), rule);
        services.insert(name.clone(), spec);
        if enabled {
            self.inner().update(|s| {
                s.services.insert(name.to_string(), local.to_string());
            });
        }
        let inner = self.inner().clone();
        let node = self.clone();
        let service = name.clone();
        self.inner().spawn_tracked(
            Some(service_task(&name)),
            Box::pin(async move {
                let mut incoming = incoming;
                while let Some(inbound) = incoming.next().await {
                    serve_stream(&node, &inner, &service, &local, inbound);
                }
            }),
        );
        tracing::info!(service = %name, %enabled, "exposing service");
        Ok(())
    }

    /// Stops exposing a service, at once: its protocol is no longer
    /// negotiated (a peer opening it hears "not supported"), its rule
    /// leaves the policy and its entry `status`, and its proxied
    /// connections are cut on both sides (the local side sees a reset), as
    /// a revocation cuts a peer's. Returns whether it was exposed (a name
    /// that is not a DNS label names no exposed service).
    pub fn unexpose_service(&self, name: impl IntoServiceName) -> bool {
        let Ok(name) = name.into_service_name() else {
            return false;
        };
        let mut services = self
            .inner()
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.unexpose_locked(&mut services, &name).is_some()
    }

    /// [`Node::unexpose_service`] with the map locked; the number of
    /// proxied connections cut, `None` when it was not exposed.
    fn unexpose_locked(
        &self,
        services: &mut BTreeMap<DnsLabel, ServiceSpec>,
        name: &DnsLabel,
    ) -> Option<usize> {
        services.remove(name)?;
        if let Ok(proto) = StreamProtocol::try_from_owned(protocol::service(name)) {
            self.inner().control.stop_accepting(&proto);
        }
        if let Some(h) = self
            .inner()
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&service_task(name))
        {
            h.abort();
        }
        self.inner()
            .policy
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove_service(name);
        self.inner().update(|s| {
            s.services.remove(name.as_str());
        });
        let cut = self
            .inner()
            .cut_proxies_where(Cut::ServiceChanged, |_, c| c.served.as_ref() == Some(name));
        tracing::info!(service = %name, cut, "service no longer exposed");
        Some(cut)
    }

    /// Changes an exposed service's rule live: `enabled`, and who may use
    /// it (`allowed_peers`). Its proxied connections that the new rule no
    /// longer allows are cut on both sides (all of them when it is
    /// disabled); the others go on. Returns how many were cut.
    ///
    /// # Errors
    /// [`ServiceRuleError`]: a name that is not a DNS label, or a service
    /// that is not exposed.
    pub fn set_service_rule(
        &self,
        name: impl IntoServiceName,
        rule: ServiceRule,
    ) -> Result<usize, ServiceRuleError> {
        let name = name.into_service_name()?;
        let mut services = self
            .inner()
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.set_rule_locked(&mut services, &name, rule)
            .ok_or_else(|| ServiceRuleError::NotExposed {
                name: name.to_string(),
            })
    }

    /// [`Node::set_service_rule`] with the map locked; `None` when the
    /// service is not exposed.
    fn set_rule_locked(
        &self,
        services: &mut BTreeMap<DnsLabel, ServiceSpec>,
        name: &DnsLabel,
        rule: ServiceRule,
    ) -> Option<usize> {
        let spec = services.get_mut(name)?;
        spec.rule = rule.clone();
        let local = spec.local.to_string();
        let enabled = rule.enabled;
        self.inner()
            .policy
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .set_service(name.clone(), rule);
        self.inner().update(|s| {
            if enabled {
                s.services.insert(name.to_string(), local);
            } else {
                s.services.remove(name.as_str());
            }
        });
        // Decide each of its proxied connections again, under the new rule.
        let served: Vec<(u64, PeerId, ConnectionPath)> = self
            .inner()
            .proxy_cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, c)| c.served.as_ref() == Some(name))
            .map(|(id, c)| (*id, c.peer, c.path))
            .collect();
        let now = self.inner().wall_clock();
        let denied: Vec<u64> = {
            let policy = self.inner().policy();
            served
                .into_iter()
                .filter(|(_, peer, path)| {
                    !policy
                        .decide_stream(
                            peer,
                            StreamKind::Service(name),
                            Direction::Inbound,
                            *path,
                            now,
                        )
                        .is_allowed()
                })
                .map(|(id, _, _)| id)
                .collect()
        };
        let cut = self
            .inner()
            .cut_proxies_where(Cut::ServiceChanged, |id, _| denied.contains(&id));
        tracing::info!(service = %name, %enabled, cut, "service rule changed");
        Some(cut)
    }

    /// Makes the exposed services exactly `wanted` (what the daemon does
    /// when its config changes): services not in it are removed, new ones
    /// exposed, and existing ones changed in place (a new rule) or removed
    /// and exposed again (a new local address). Proxied connections the
    /// result no longer allows are cut; see the [module docs](self).
    /// Changes are made one service at a time, removals first; other
    /// callers' changes wait until all are made.
    ///
    /// # Errors
    /// [`StartError::Service`] for the first service that could not be
    /// exposed (its protocol is taken by something else); the changes
    /// before it stay made, and [`Node::service_specs`] shows what is
    /// exposed.
    pub fn apply_services(
        &self,
        wanted: BTreeMap<DnsLabel, ServiceSpec>,
    ) -> Result<ServicesChange, StartError> {
        let mut services = self
            .inner()
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut change = ServicesChange::default();
        let gone: Vec<DnsLabel> = services
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            change.cut += self.unexpose_locked(&mut services, &name).unwrap_or(0);
            change.removed.push(name);
        }
        for (name, spec) in wanted {
            match services.get(&name) {
                None => {
                    self.expose_locked(&mut services, name.clone(), spec)?;
                    change.added.push(name);
                }
                Some(current) if current.local != spec.local => {
                    change.cut += self.unexpose_locked(&mut services, &name).unwrap_or(0);
                    self.expose_locked(&mut services, name.clone(), spec)?;
                    change.changed.push(name);
                }
                Some(current) if current.rule != spec.rule => {
                    change.cut += self
                        .set_rule_locked(&mut services, &name, spec.rule)
                        .unwrap_or(0);
                    change.changed.push(name);
                }
                Some(_) => {}
            }
        }
        Ok(change)
    }

    /// Opens a stream to `service` on `peer`: connects if needed, 30 s per
    /// attempt, retried after 1, 2 and 4 s.
    ///
    /// # Errors
    /// [`OpenServiceError`]: an invalid name or an unknown service fails
    /// at once.
    pub async fn open_service(
        &self,
        peer: PeerId,
        service: impl IntoServiceName,
    ) -> Result<ServiceStream, OpenServiceError> {
        let name = service.into_service_name()?;
        self.open_service_until(peer, &name, None).await
    }

    /// [`Node::open_service`] that gives up `within` this time, retries
    /// included, saying so in [`OpenServiceError::Failed`].
    ///
    /// # Errors
    /// As [`Node::open_service`].
    pub async fn open_service_within(
        &self,
        peer: PeerId,
        service: impl IntoServiceName,
        within: Duration,
    ) -> Result<ServiceStream, OpenServiceError> {
        let name = service.into_service_name()?;
        self.open_service_until(peer, &name, Some(within)).await
    }

    async fn open_service_until(
        &self,
        peer: PeerId,
        name: &DnsLabel,
        within: Option<Duration>,
    ) -> Result<ServiceStream, OpenServiceError> {
        let deadline = within.map(|w| self.runtime().now() + w);
        let service = name.as_str();
        let proto = StreamProtocol::try_from_owned(protocol::service(name)).map_err(|e| {
            OpenServiceError::Failed {
                peer,
                service: service.to_owned(),
                attempts: 0,
                last: e.to_string(),
            }
        })?;
        let rt = self.runtime();
        let mut last = String::new();
        let mut attempts = 0;
        // Attempts in a row where the connection came up and the peer then
        // closed it under the stream: what a peer's gate does to a machine
        // not in its authorized_keys. Twice is an answer, not bad luck.
        let mut closed_in_a_row = 0;
        // Time left before the deadline; `None` once it has passed.
        let left = |rt: &Arc<dyn Runtime>| match deadline {
            None => Some(OPEN_TIMEOUT),
            Some(d) => d
                .checked_duration_since(rt.now())
                .filter(|l| !l.is_zero())
                .map(|l| l.min(OPEN_TIMEOUT)),
        };
        let mut out_of_time = false;
        for attempt in 0..=RETRY_DELAYS.len() {
            if closed_in_a_row >= 2 {
                break;
            }
            if attempt > 0 {
                let wait = RETRY_DELAYS[attempt - 1];
                if left(&rt).is_none_or(|l| l <= wait) {
                    out_of_time = deadline.is_some();
                    break;
                }
                rt.sleep(wait).await;
            }
            let Some(limit) = left(&rt) else {
                out_of_time = true;
                break;
            };
            attempts = attempt + 1;
            let once = async {
                self.connect(peer)
                    .await
                    .map_err(OpenServiceError::Connect)?;
                self.inner()
                    .control
                    .open(peer, proto.clone())
                    .await
                    .map_err(|e| match e {
                        OpenError::Unsupported(_) => OpenServiceError::UnknownService {
                            peer,
                            service: service.to_owned(),
                        },
                        other => OpenServiceError::Failed {
                            peer,
                            service: service.to_owned(),
                            attempts: attempt + 1,
                            last: other.to_string(),
                        },
                    })
            };
            match rt.timeout(limit, once).await {
                Some(Ok(out)) => {
                    return Ok(ServiceStream {
                        stream: out.stream,
                        peer,
                        connection: out.connection,
                        path: out.path,
                    });
                }
                Some(Err(e @ OpenServiceError::UnknownService { .. })) => return Err(e),
                Some(Err(OpenServiceError::Connect(ConnectError::Stopped))) => {
                    return Err(OpenServiceError::Connect(ConnectError::Stopped));
                }
                Some(Err(e)) => {
                    tracing::debug!(%peer, %service, attempt, error = %crate::error::chain(&e), "opening service failed");
                    last = match e {
                        OpenServiceError::Failed { last, .. } => {
                            if last.contains("timed out") {
                                closed_in_a_row = 0;
                            } else {
                                closed_in_a_row += 1;
                            }
                            last
                        }
                        other => {
                            closed_in_a_row = 0;
                            crate::error::chain(&other)
                        }
                    };
                }
                None if limit < OPEN_TIMEOUT => {
                    // The deadline, not the attempt's own timeout.
                    out_of_time = true;
                    if last.is_empty() {
                        last = "the peer was not reached (is it running, and reachable through a relay or directly?)".to_owned();
                    }
                    break;
                }
                None => {
                    closed_in_a_row = 0;
                    last = format!("timed out after {}s", OPEN_TIMEOUT.as_secs());
                }
            }
        }
        if out_of_time && let Some(within) = within {
            if last.is_empty() {
                last = "the peer was not reached".to_owned();
            }
            last = format!("gave up after {}s: {last}", within.as_secs());
        }
        if last.contains("connection") {
            // A peer's gate closes an unauthorized connection right after
            // the handshake, without saying why.
            last.push_str(
                " (the peer closed the connection: is this machine in its authorized_keys?)",
            );
        }
        Err(OpenServiceError::Failed {
            peer,
            service: service.to_owned(),
            attempts,
            last,
        })
    }

    /// Listens on `bind` and forwards every accepted TCP connection to
    /// `service` on `peer` (`peerup proxy`, and the daemon's `forwards:`).
    ///
    /// Each connection reaches the peer on its own (connecting when there
    /// is no connection, through the relays or the DHT), within
    /// [`FORWARD_DEADLINE`]; when that fails, its socket is reset and the
    /// reason logged. So a forward keeps working across the peer's
    /// restarts and path changes without a retry loop of its own.
    ///
    /// # Errors
    /// `InvalidInput` for a name that is not a DNS label (its source is the
    /// [`InvalidServiceName`]); the bind error (port in use, permission).
    pub async fn forward(
        &self,
        bind: SocketAddr,
        peer: PeerId,
        service: impl IntoServiceName,
    ) -> io::Result<Forwarder> {
        let service = service
            .into_service_name()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let rt = self.runtime();
        let listener = rt.tcp_listen(bind).await?;
        let local_addr = listener.local_addr()?;
        let node = self.clone();
        let (abort, reg) = AbortHandle::new_pair();
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = open.clone();
        let (closed_tx, closed_rx) = oneshot::channel::<()>();
        let socket = Listening {
            listener,
            _closed: closed_tx,
        };
        let task = Abortable::new(
            async move {
                // The whole struct into the task: an `async move` block
                // captures only the fields it uses, which would drop
                // `_closed` (telling `close` the socket is closed) when
                // this function returns.
                let mut socket = socket;
                // Out of descriptors, accept fails at once, every time.
                let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
                let what = format!("forward {local_addr}");
                loop {
                    let (tcp, from) = rt
                        .accept_backing_off(socket.listener.as_mut(), &mut backoff, &what)
                        .await;
                    if open.load(Ordering::Acquire) >= MAX_FORWARDED {
                        tracing::warn!(%from, limit = MAX_FORWARDED, "too many forwarded connections at once; refusing one");
                        let _ = tcp.set_abort_on_close();
                        continue;
                    }
                    tracing::debug!(%from, %peer, %service, "forwarding a connection");
                    let slot = crate::limits::Slot::take(&open);
                    let node2 = node.clone();
                    let service = service.clone();
                    let id = node.next_id();
                    let inner = node.inner().clone();
                    let fut = async move {
                        let _slot = slot;
                        let node = node2;
                        let _ = tcp.set_nodelay(true);
                        match node
                            .open_service_until(peer, &service, Some(FORWARD_DEADLINE))
                            .await
                        {
                            Ok(stream) => {
                                let path = stream.path();
                                splice_tracked(
                                    &inner, id, tcp, stream, peer, &service, false, path,
                                )
                                .await;
                            }
                            Err(e) => {
                                tracing::warn!(%peer, %service, error = %crate::error::chain(&e), "cannot reach the remote service");
                                let _ = tcp.set_abort_on_close();
                            }
                        }
                    };
                    node.inner().spawn_tracked(None, Box::pin(fut));
                }
            },
            reg,
        );
        self.inner().spawn_tracked(
            None,
            Box::pin(async move {
                let _ = task.await;
            }),
        );
        Ok(Forwarder {
            local_addr,
            abort,
            open: counted,
            closed: Some(closed_rx),
        })
    }
}

/// The key of a service's accept loop in [`Inner::tasks`].
fn service_task(name: &DnsLabel) -> String {
    format!("service:{name}")
}

fn serve_stream(
    node: &Node,
    inner: &Arc<Inner>,
    service: &DnsLabel,
    local: &LocalAddress,
    inbound: Inbound,
) {
    let Inbound {
        peer, path, stream, ..
    } = inbound;
    let decision = inner.policy().decide_stream(
        &peer,
        StreamKind::Service(service),
        Direction::Inbound,
        path,
        inner.wall_clock(),
    );
    match decision {
        Decision::Deny(reason) => {
            inner
                .metrics
                .stream("service", service.as_str(), Some(&reason));
            tracing::warn!(%peer, %service, %reason, "DENIED service stream");
            inner.publish(Event::Denied {
                peer,
                reason: reason.to_string(),
            });
            drop(stream); // reset
            return;
        }
        Decision::AllowUngated => {
            tracing::warn!(%peer, %service, "gating disabled: serving an unauthenticated peer")
        }
        Decision::Allow | Decision::AllowPairingOnly => {}
    }
    inner.metrics.stream("service", service.as_str(), None);
    let rt = node.runtime();
    let id = node.next_id();
    let inner2 = inner.clone();
    let local = local.clone();
    let service = service.clone();
    inner.spawn_tracked(
        None,
        Box::pin(async move {
            match rt.timeout(LOCAL_DIAL_TIMEOUT, dial_local(&rt, &local)).await {
                Some(Ok(tcp)) => {
                    let _ = tcp.set_nodelay(true);
                    splice_tracked(&inner2, id, tcp, stream, peer, &service, true, path).await;
                }
                Some(Err(e)) => {
                    tracing::warn!(%peer, %service, %local, error = %e, "cannot reach the local service; resetting the stream");
                }
                None => {
                    tracing::warn!(%peer, %service, %local, "timed out dialing the local service; resetting the stream");
                }
            }
        }),
    );
}

async fn dial_local(rt: &Arc<dyn Runtime>, local: &LocalAddress) -> io::Result<Box<dyn TcpStream>> {
    let addrs: Vec<SocketAddr> = match local.host() {
        Host::Ipv4(ip) => vec![SocketAddr::new((*ip).into(), local.port())],
        Host::Ipv6(ip) => vec![SocketAddr::new((*ip).into(), local.port())],
        Host::Name(name) => rt.resolve(name.clone(), local.port()).await?,
    };
    let mut last = io::Error::new(
        io::ErrorKind::NotFound,
        format!("{local} resolves to no address"),
    );
    for addr in addrs {
        match rt.tcp_connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Removes a proxied connection from `status` and from the revocable
/// ones however its task ends (finished, revoked, or aborted by shutdown).
struct ProxyGuard {
    inner: Arc<Inner>,
    id: u64,
    counters: Arc<Counters>,
    /// Its place in `peerup_proxies`.
    open: prometheus_client::metrics::gauge::Gauge,
}

impl Drop for ProxyGuard {
    fn drop(&mut self) {
        self.inner.publish(Event::ProxyClosed {
            id: self.id,
            sent: self.counters.sent.load(Ordering::Relaxed),
            received: self.counters.received.load(Ordering::Relaxed),
        });
        let mut idle = false;
        self.inner.update(|s| {
            s.proxies.remove(&self.id);
            idle = s.proxies.is_empty();
        });
        self.inner
            .proxy_cancels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        self.open.dec();
        if idle {
            crate::memory::release_free_memory();
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn splice_tracked<R>(
    inner: &Arc<Inner>,
    id: u64,
    tcp: Box<dyn TcpStream>,
    remote: R,
    peer: PeerId,
    service: &DnsLabel,
    inbound: bool,
    path: ConnectionPath,
) where
    R: AsyncRead + AsyncWrite + Unpin,
{
    use futures::FutureExt;
    let (sent, received, open) = inner.metrics.proxy(service.as_str(), inbound);
    let counters = Arc::new(Counters::with_totals(sent, received));
    let (cancel_tx, cancel_rx) = oneshot::channel::<Cut>();
    inner
        .proxy_cancels
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(
            id,
            ProxyCancel {
                peer,
                served: inbound.then(|| service.clone()),
                path,
                cancel: cancel_tx,
            },
        );
    inner.update(|s| {
        s.proxies.insert(
            id,
            ProxyState {
                peer,
                service: service.to_string(),
                inbound,
                path,
                counters: counters.clone(),
            },
        );
    });
    open.inc();
    let _guard = ProxyGuard {
        inner: inner.clone(),
        id,
        counters: counters.clone(),
        open,
    };
    inner.publish(Event::ProxyOpened {
        id,
        peer,
        service: service.to_string(),
        inbound,
        path,
    });
    let label = service;
    let service = label.as_str();
    // Decided again now that the connection is recorded: a peer whose
    // authorization was revoked (or expired), or a service removed,
    // disabled or narrowed, while the local service was being dialed
    // loses the connection here; a change after this point cuts it
    // through the cancel handle recorded above. (The connection close we
    // start does not always reach a stream that is idle, so both sides
    // are cut by hand.)
    if inbound {
        let decision = inner.policy().decide_stream(
            &peer,
            StreamKind::Service(label),
            Direction::Inbound,
            path,
            inner.wall_clock(),
        );
        if let Decision::Deny(reason) = decision {
            tracing::warn!(%peer, service, %reason, "no longer allowed: not serving");
            let _ = tcp.set_abort_on_close();
            return;
        }
    }
    let mut splice = Splice::new(tcp, remote, counters);
    let mut cancelled = cancel_rx.fuse();
    let (outcome, cut) = futures::select_biased! {
        why = cancelled => (None, why.ok()),
        outcome = (&mut splice).fuse() => (Some(outcome), None),
    };
    let (tcp, remote) = splice.into_inner();
    if outcome.is_none() || outcome.as_ref().is_some_and(|o| o.reset) {
        let _ = tcp.set_abort_on_close();
    }
    drop(remote);
    drop(tcp);
    match (outcome, cut) {
        (Some(o), _) => {
            tracing::debug!(%peer, service, sent = o.sent, received = o.received, reset = o.reset, "proxied connection ended")
        }
        (None, Some(Cut::ServiceChanged)) => {
            tracing::warn!(%peer, service, "proxied connection cut: the service was removed, disabled or no longer allows the peer")
        }
        (None, _) => {
            tracing::warn!(%peer, service, "proxied connection cut: the peer's authorization was revoked")
        }
    }
}
