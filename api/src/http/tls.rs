//! HTTPS served by the hub itself (`KUTANGA_TLS_CERT` and `KUTANGA_TLS_KEY`): rustls with the
//! ring provider, TLS 1.2 and 1.3, HTTP/1.1. SIGHUP reads both files again; a pair that does not
//! load leaves the one in use. Handshakes run on tasks of their own, each within
//! [`HANDSHAKE_TIMEOUT`]: at most [`MAX_HANDSHAKES`] at once, and [`PER_ADDRESS`] from one address
//! (an IPv6 client by its /64). A connection over either cap is closed at once rather than left
//! waiting, so clients that open connections and never finish a handshake hold up only
//! themselves.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use axum::serve::Listener;
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Semaphore, mpsc},
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::{either::Either, task::AbortOnDropHandle};

/// Handshakes in progress at once.
const MAX_HANDSHAKES: usize = 1024;
/// Handshakes in progress from one address.
const PER_ADDRESS: usize = 8;
/// A handshake not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The certificate in use, and where to read it again.
pub struct Tls {
    cert: PathBuf,
    key: PathBuf,
    config: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Reads the certificate chain and its key; the error names the file and what is wrong.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        let config = server_config(cert, key)?;
        Ok(Arc::new(Self { cert: cert.to_owned(), key: key.to_owned(), config: RwLock::new(Arc::new(config)) }))
    }

    /// Reads both files again: new connections use them, open ones keep theirs. On an error the
    /// certificate in use stays.
    pub fn reload(&self) -> anyhow::Result<()> {
        let config = server_config(&self.cert, &self.key)?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        Ok(())
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.read().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Reloads on every SIGHUP until `stop`.
    pub fn reload_on_sighup(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP: the TLS certificate will not be reloaded");
                return;
            }
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hangups.recv() => if got.is_none() { break },
                    () = stop.cancelled() => break,
                }
                let tls = self.clone();
                match tokio::task::spawn_blocking(move || tls.reload()).await {
                    Ok(Ok(())) => tracing::info!(cert = %self.cert.display(), "SIGHUP: reloaded the TLS certificate"),
                    Ok(Err(e)) => tracing::error!(error = %e, "SIGHUP: kept the TLS certificate in use"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: the TLS reload failed"),
                }
            }
        });
    }
}

fn server_config(cert: &Path, key: &Path) -> anyhow::Result<ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| anyhow::anyhow!("KUTANGA_TLS_CERT: cannot read certificates from {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("KUTANGA_TLS_CERT: {} holds no PEM certificate", cert.display());
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("KUTANGA_TLS_KEY: cannot read a private key from {}: {e}", key.display()))?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            anyhow::anyhow!("KUTANGA_TLS_KEY: {} does not fit the certificate {}: {e}", key.display(), cert.display())
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// What the hub serves on: plain TCP, or TLS over it.
pub enum HubListener {
    Plain(TcpListener),
    Tls {
        local: SocketAddr,
        ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
        _accepting: AbortOnDropHandle<()>,
    },
}

impl HubListener {
    pub fn new(tcp: TcpListener, tls: Option<Arc<Tls>>) -> std::io::Result<Self> {
        let Some(tls) = tls else { return Ok(Self::Plain(tcp)) };
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let accepting = AbortOnDropHandle::new(tokio::spawn(handshakes(tcp, tls, tx)));
        Ok(Self::Tls { local, ready, _accepting: accepting })
    }
}

/// Accepts connections and finishes their handshakes concurrently; the finished ones go to `ready`.
async fn handshakes(mut tcp: TcpListener, tls: Arc<Tls>, ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let busy = InFlight::default();
    loop {
        let (stream, peer) = Listener::accept(&mut tcp).await;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many TLS handshakes in progress; connection closed");
            continue;
        };
        let Some(mine) = busy.enter(crate::auth::limits::address(&peer.ip().to_string())) else {
            tracing::debug!(%peer, "too many TLS handshakes from this address; connection closed");
            continue;
        };
        let (acceptor, ready) = (tls.acceptor(), ready.clone());
        tokio::spawn(async move {
            let _held = (slot, mine);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let _ = ready.send((stream, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Handshakes in progress per address.
#[derive(Clone, Default)]
struct InFlight(Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>);

/// One handshake of an address, given back when dropped.
struct Entered(InFlight, String);

impl InFlight {
    fn enter(&self, address: String) -> Option<Entered> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(address.clone()).or_insert(0);
        if *n >= PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(Entered(self.clone(), address))
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let mut map = (self.0).0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.1);
            }
        }
    }
}

impl Listener for HubListener {
    type Io = Either<TcpStream, TlsStream<TcpStream>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self {
            Self::Plain(tcp) => {
                let (stream, peer) = Listener::accept(tcp).await;
                (Either::Left(stream), peer)
            }
            Self::Tls { ready, .. } => match ready.recv().await {
                Some((stream, peer)) => (Either::Right(stream), peer),
                // The accepting task ended (it does not, but for its runtime shutting down).
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        match self {
            Self::Plain(tcp) => tcp.local_addr(),
            Self::Tls { local, .. } => Ok(*local),
        }
    }
}
