//! The application ping (WIRE.md §3): one stream per ping, `ping\n` ->
//! `pong\n`, RTT from the write to the reply line.

use std::time::Duration;

use futures::StreamExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};
use libp2p::{PeerId, StreamProtocol};
use peerup_core::authz::{Decision, Direction, StreamKind};
use peerup_core::wire::ConnectionPath;
use peerup_core::wire::pingpong::{self, Line, Reply};

use super::{ConnectError, Event, Node, ServiceError, StartError};

/// One reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingReply {
    /// Write to reply line.
    pub rtt: Duration,
    /// The path the stream took.
    pub path: ConnectionPath,
}

/// Why a ping failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PingError {
    /// The peer could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The peer does not answer ping-pong (disabled, or not peerup).
    #[error("peer does not answer {0} (ping-pong disabled on it?)")]
    Unsupported(String),
    /// No reply within 15 s.
    #[error("no reply within {}s", pingpong::CLIENT_TIMEOUT.as_secs())]
    Timeout,
    /// An answer other than `pong`.
    #[error("unexpected reply `{0}`")]
    Unexpected(String),
    /// The stream failed (the peer may have refused us).
    #[error("ping stream failed: {0} (is this machine in the peer's authorized_keys?)")]
    Stream(String),
}

async fn read_line<R: futures::io::AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(pingpong::MAX_LINE);
    let mut chunk = [0u8; pingpong::MAX_LINE];
    loop {
        match pingpong::line(&buf) {
            Line::Complete(l, _) => return Ok(l.to_vec()),
            Line::TooLong => return Ok(buf),
            Line::Incomplete => {}
        }
        let n = r.read(&mut chunk[..pingpong::MAX_LINE - buf.len()]).await?;
        if n == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

impl Node {
    /// One application ping to `peer` on the configured ping-pong protocol.
    ///
    /// # Errors
    /// [`PingError`].
    pub async fn ping(&self, peer: PeerId) -> Result<PingReply, PingError> {
        let id = self
            .options()
            .ping_pong
            .clone()
            .unwrap_or_else(|| peerup_core::wire::protocol::PING_PONG.to_owned());
        let proto = StreamProtocol::try_from_owned(id.clone())
            .map_err(|_| PingError::Unsupported(id.clone()))?;
        self.connect(peer).await?;
        let rt = self.runtime();
        let out = match rt
            .timeout(
                pingpong::CLIENT_TIMEOUT,
                self.inner().control.open(peer, proto),
            )
            .await
        {
            None => return Err(PingError::Timeout),
            Some(Err(crate::streams::OpenError::Unsupported(_))) => {
                return Err(PingError::Unsupported(id));
            }
            Some(Err(e)) => return Err(PingError::Stream(e.to_string())),
            Some(Ok(out)) => out,
        };
        let mut stream = out.stream;
        let start = rt.now();
        let exchange = async {
            stream.write_all(pingpong::PING).await?;
            stream.flush().await?;
            read_line(&mut stream).await
        };
        let line = match rt.timeout(pingpong::CLIENT_TIMEOUT, exchange).await {
            None => return Err(PingError::Timeout),
            Some(Err(e)) => return Err(PingError::Stream(e.to_string())),
            Some(Ok(line)) => line,
        };
        let rtt = rt.now().saturating_duration_since(start);
        let _ = stream.close().await;
        if line.is_empty() {
            return Err(PingError::Stream(
                "the peer closed the stream without answering".into(),
            ));
        }
        match pingpong::classify(&line) {
            Reply::Pong => Ok(PingReply {
                rtt,
                path: out.path,
            }),
            Reply::Unexpected(s) => Err(PingError::Unexpected(s)),
        }
    }

    /// The last RTT libp2p's own ping measured to `peer`.
    pub fn libp2p_rtt(&self, peer: PeerId) -> Option<Duration> {
        self.inner()
            .snapshot(|s| s.peers.get(&peer).and_then(|p| p.rtt))
    }

    pub(super) fn serve_ping(&self, id: &str) -> Result<(), StartError> {
        let proto =
            StreamProtocol::try_from_owned(id.to_owned()).map_err(|e| StartError::Service {
                name: id.to_owned(),
                source: ServiceError::Protocol(e),
            })?;
        let mut incoming = self
            .inner()
            .control
            .accept(proto)
            .map_err(|_| StartError::Service {
                name: id.to_owned(),
                source: ServiceError::AlreadyExposed,
            })?;
        let inner = self.inner().clone();
        let rt = self.runtime();
        self.inner().spawn_tracked(
            Some("ping".into()),
            Box::pin(async move {
                while let Some(inbound) = incoming.next().await {
                    let decision = inner.policy().decide_stream(
                        &inbound.peer,
                        StreamKind::Ping,
                        Direction::Inbound,
                        inbound.path,
                        inner.wall_clock(),
                    );
                    if let Decision::Deny(reason) = &decision {
                        inner.metrics.stream("ping", "", Some(reason));
                        tracing::warn!(peer = %inbound.peer, %reason, "DENIED ping");
                        inner.publish(Event::Denied {
                            peer: inbound.peer,
                            reason: reason.to_string(),
                        });
                        continue;
                    }
                    inner.metrics.stream("ping", "", None);
                    let rt2 = rt.clone();
                    inner.spawn_tracked(
                        None,
                        Box::pin(async move {
                            let mut stream = inbound.stream;
                            let answer = async {
                                let line = read_line(&mut stream).await?;
                                stream.write_all(pingpong::respond(&line)).await?;
                                stream.close().await
                            };
                            let _ = rt2.timeout(pingpong::CLIENT_TIMEOUT, answer).await;
                        }),
                    );
                }
            }),
        );
        Ok(())
    }
}
