//! What the `peerup` binary tests share: a relay in the test process.

use std::sync::Arc;

use peerup_core::PeerId;
use peerup_core::authorized_keys::{Attributes, Document};
use peerup_relay::{Relay, RelayOptions};

/// A relay address that is never dialed: `init` needs one before the test
/// relay (which must know the machines' keys) exists.
#[allow(dead_code)] // each test binary uses its part
pub(crate) const PLACEHOLDER: &str =
    "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWLCavCP1Pma9NGJQnGDQhgwSjgQgupWprZJH4w1P3HCVL";

/// A relay in the test process on 127.0.0.1 (its own tokio runtime
/// thread), authorizing the given peers.
#[allow(dead_code)] // each test binary uses its part
pub(crate) struct TestRelay {
    /// Its full addresses (`.../p2p/<id>`), in the order of `listen`.
    pub(crate) addrs: Vec<String>,
    /// The first of them.
    pub(crate) addr: String,
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) relay: Relay,
}

impl TestRelay {
    /// Listening on TCP only.
    #[allow(dead_code)] // not every test binary uses both
    pub(crate) fn start(authorized: &[PeerId]) -> TestRelay {
        Self::start_on(authorized, &["/ip4/127.0.0.1/tcp/0"])
    }

    /// Listening on `listen`.
    pub(crate) fn start_on(authorized: &[PeerId], listen: &[&str]) -> TestRelay {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut doc = Document::new();
        for p in authorized {
            doc.add(*p, Attributes::new(), Some("test")).unwrap();
        }
        let relay = rt.block_on(async {
            let mut o = RelayOptions::new(peerup_net::node::generate_identity().unwrap());
            o.listen = listen.iter().map(|a| a.parse().unwrap()).collect();
            o.authorized_keys = doc;
            let runtime: Arc<dyn peerup_net::Runtime> =
                Arc::new(peerup_tokio::TokioRuntime::current());
            Relay::start(runtime, o).await.unwrap()
        });
        let addrs: Vec<String> = relay.full_addrs().iter().map(ToString::to_string).collect();
        let addr = addrs[0].clone();
        TestRelay {
            addrs,
            addr,
            rt,
            relay,
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.rt.block_on(self.relay.shutdown());
    }
}
