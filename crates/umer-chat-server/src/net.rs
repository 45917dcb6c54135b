//! The listening socket: at most so many connections from one address at once, so one
//! client opening thousands cannot take the server's file descriptors from everyone else.
//! A connection over the limit is closed as soon as it is accepted. With `--tls-cert` and
//! `--tls-key` every connection is TLS (rustls), its handshake run off the accept loop.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::{rustls, TlsAcceptor};

/// The peer of a connection, for handlers (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Connected<IncomingStream<'_, LimitedListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, LimitedListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

type OpenByAddress = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener that keeps at most `per_address` connections open from one address, and
/// speaks TLS on them when given a certificate.
pub struct LimitedListener {
    inner: TcpListener,
    per_address: usize,
    open: OpenByAddress,
    tls: Option<TlsAcceptor>,
    /// Connections whose TLS handshake finished, from the tasks that ran them: a slow
    /// handshake never holds up the next accept.
    handshaken_tx: mpsc::Sender<(CountedStream, SocketAddr)>,
    handshaken: mpsc::Receiver<(CountedStream, SocketAddr)>,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, per_address: usize) -> LimitedListener {
        let (handshaken_tx, handshaken) = mpsc::channel(64);
        LimitedListener {
            inner,
            per_address,
            open: OpenByAddress::default(),
            tls: None,
            handshaken_tx,
            handshaken,
        }
    }

    /// TLS on every connection, with this certificate chain and key.
    pub fn with_tls(mut self, config: Arc<rustls::ServerConfig>) -> LimitedListener {
        self.tls = Some(TlsAcceptor::from(config));
        self
    }

    /// A slot for a connection from `address`, unless it has too many open.
    fn slot(&self, address: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().expect("open connections");
        let count = open.entry(address).or_default();
        if *count >= self.per_address {
            return None;
        }
        *count += 1;
        Some(Slot {
            address,
            open: Arc::clone(&self.open),
        })
    }
}

impl Listener for LimitedListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CountedStream, SocketAddr) {
        loop {
            let accepted = tokio::select! {
                Some(done) = self.handshaken.recv() => return done,
                accepted = self.inner.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was taken:
                    // wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(slot) = self.slot(counted_as(peer.ip())) else {
                tracing::debug!(address = %peer.ip(), "too many connections from one address");
                continue; // dropping the stream closes it
            };
            let Some(acceptor) = self.tls.clone() else {
                let plain = CountedStream {
                    stream: Stream::Plain(stream),
                    _slot: slot,
                };
                return (plain, peer);
            };
            let handshaken = self.handshaken_tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let counted = CountedStream {
                            stream: Stream::Tls(Box::new(tls)),
                            _slot: slot,
                        };
                        let _ = handshaken.send((counted, peer)).await;
                    }
                    // Plain HTTP to a TLS port, a bad client hello, or too slow: closed.
                    Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake too slow"),
                }
            });
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// The address a connection counts against: an IPv6 client holds a whole /64 (one host
/// picks any address in it), so its connections count together.
fn counted_as(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// A connection counted against its address until it closes.
struct Slot {
    address: IpAddr,
    open: OpenByAddress,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("open connections");
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection, plain or TLS, counted against its address until it closes.
pub struct CountedStream {
    stream: Stream,
    _slot: Slot,
}

/// Runs `$call` on the connection's stream, whichever it is.
macro_rules! on_stream {
    ($self:ident, $stream:ident => $call:expr) => {
        match &mut $self.get_mut().stream {
            Stream::Plain($stream) => {
                let $stream = Pin::new($stream);
                $call
            }
            Stream::Tls($stream) => {
                let $stream = Pin::new($stream.as_mut());
                $call
            }
        }
    };
}

impl AsyncRead for CountedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_read(cx, buf))
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, stream => stream.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(self, stream => stream.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_stream!(self, stream => stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(stream) => stream.is_write_vectored(),
            Stream::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

/// The server's TLS configuration from PEM files: the certificate chain (the server's
/// first) and its private key. TLS 1.2 and 1.3, with rustls's safe defaults on ring.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    // ring, as the clients' rustls uses: rustls now nudges towards aws-lc-rs for its
    // post-quantum key exchange, whose C build this project does not take on.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not go together: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_counts_as_its_slash_64() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(counted_as(one), counted_as(other));
        assert_ne!(counted_as(one), counted_as(elsewhere));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(counted_as(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(counted_as(v4), v4);
    }
}
