//! The certificate DoT and DoH present, and its reload.
//!
//! The chain and key are read from the PEM files of `tls:` into one [`Certificates`], which
//! every TLS listener asks for the certificate at each handshake (rustls'
//! [`ResolvesServerCert`]). A reload (every `tls.reload_secs` when either file's modification
//! time or size changed, and on SIGHUP) builds the new certificate completely, checks that the
//! key belongs to it, and only then swaps it in: handshakes after the swap get the new one,
//! connections already open keep theirs. A missing or broken file leaves the old certificate
//! serving, logs an error naming the file and counts `fraudwall_tls_reload_failures_total`.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use arc_swap::ArcSwap;
use rustls::{
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use super::TlsConfig;

/// Why a certificate could not be loaded; names the file to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain file is unreadable or holds no certificate.
    #[error("{path}: cannot use as certificate chain: {reason}")]
    Cert { path: PathBuf, reason: String },
    /// The key file is unreadable, holds no key, or the key does not match the certificate.
    #[error("{path}: cannot use as private key: {reason}")]
    Key { path: PathBuf, reason: String },
}

impl TlsError {
    /// Whether the key file is at fault (else the certificate file).
    pub fn is_key(&self) -> bool {
        matches!(self, TlsError::Key { .. })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    // An explicit provider: the process links more than one, and picking by feature
    // unification would be luck.
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads and checks the chain and key of `cfg`.
pub fn load(cfg: &TlsConfig) -> Result<CertifiedKey, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let cert_err = |reason: String| TlsError::Cert {
        path: cfg.cert.clone(),
        reason,
    };
    let key_err = |reason: String| TlsError::Key {
        path: cfg.key.clone(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&cfg.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no CERTIFICATE block found".into()));
    }
    // Catches a truncated or garbled leaf now rather than at the first handshake.
    rustls::server::ParsedCertificate::try_from(&chain[0])
        .map_err(|e| cert_err(format!("the first certificate does not parse: {e}")))?;
    let key = PrivateKeyDer::from_pem_file(&cfg.key).map_err(|e| key_err(e.to_string()))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| key_err(format!("{e} (is it the key of {}?)", cfg.cert.display())))
}

/// Whether the leaf certificate of `key` is valid for `name` (the DDR TargetName).
pub fn covers(key: &CertifiedKey, name: &str) -> bool {
    let Ok(leaf) = key.end_entity_cert() else {
        return false;
    };
    let Ok(parsed) = rustls::server::ParsedCertificate::try_from(leaf) else {
        return false;
    };
    let Ok(name) = rustls_pki_types::ServerName::try_from(name.trim_end_matches('.')) else {
        return false;
    };
    rustls::client::verify_server_name(&parsed, &name).is_ok()
}

/// What identifies a version of a file on disk.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The live certificate; the only writer is [`Certificates::reload`].
#[derive(Debug)]
pub struct Certificates {
    cfg: TlsConfig,
    live: ArcSwap<CertifiedKey>,
    /// The files' stamps when the live certificate was read (or last failed to be).
    seen: Mutex<(Stamp, Stamp)>,
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.live.load_full())
    }
}

impl Certificates {
    /// Loads the certificate of `cfg`; an error names the file to fix.
    pub fn load(cfg: &TlsConfig) -> Result<Arc<Certificates>, TlsError> {
        let seen = (stamp(&cfg.cert), stamp(&cfg.key));
        let key = load(cfg)?;
        Ok(Arc::new(Certificates {
            cfg: cfg.clone(),
            live: ArcSwap::from_pointee(key),
            seen: Mutex::new(seen),
        }))
    }

    /// The certificate handshakes get now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.live.load_full()
    }

    /// Reads the files again if they changed since last time (or always, with `force`) and
    /// swaps the new certificate in. A failure keeps the old one and is logged and counted.
    pub fn reload(&self, force: bool) {
        let now = (stamp(&self.cfg.cert), stamp(&self.cfg.key));
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if !force && *seen == now {
                return;
            }
            // A failed version is reported once, not at every poll; the next change retries.
            *seen = now;
        }
        match load(&self.cfg) {
            Ok(key) => {
                self.live.store(Arc::new(key));
                info!(cert = %self.cfg.cert.display(), "tls certificate reloaded");
            }
            Err(e) => {
                error!("tls certificate reload failed, the previous one stays in service: {e}");
                crate::metrics::tls_reload_failed();
            }
        }
    }

    /// Polls the files every `tls.reload_secs` until `stop` is cancelled.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.reload);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let me = self.clone();
            // File reads and signature-key parsing are blocking work.
            let _ = tokio::task::spawn_blocking(move || me.reload(false)).await;
        }
    }

    /// An acceptor offering `alpn` (most preferred first), TLS 1.2 and 1.3, with the live
    /// certificate.
    pub fn acceptor(self: &Arc<Self>, alpn: &[&[u8]]) -> TlsAcceptor {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("the ring provider supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }

    /// Seconds a client has to finish its handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.cfg.handshake_timeout
    }
}

/// A TLS handshake on an accepted connection, bounded by the handshake timeout. `None`: it
/// failed or took too long (logged at debug: garbage from the Internet is routine).
pub async fn handshake<S>(
    acceptor: &TlsAcceptor,
    certs: &Certificates,
    stream: S,
    peer: std::net::SocketAddr,
) -> Option<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(certs.handshake_timeout(), acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::debug!(client = %peer, error = %e, "tls handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(client = %peer, "tls handshake timed out");
            None
        }
    }
}
