//! The listening socket: at most so many connections from one address at once, and so many
//! in all, so one client opening thousands cannot take the server's file descriptors from
//! everyone else. A connection over a limit is closed as soon as it is accepted, and one on
//! which nothing moves for `Config::idle_ms` is closed too (a client that connects and says
//! nothing would hold its slot for ever); one that trickles a request's header is closed by
//! hyper's header timer (`serve`), and one that trickles a request's body by
//! [`SteadyBody`].
//! With `--tls-cert` and `--tls-key` every connection is TLS (rustls), its handshake run off
//! the accept loop.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{rustls, TlsAcceptor};

/// The peer of a connection, for handlers (`ConnectInfo<Peer>`).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The connections open now, by the address they count against, and in all.
#[derive(Default)]
struct Open {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

type SharedOpen = Arc<Mutex<Open>>;

/// How many connections the listener keeps, and how long a quiet one lives.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_address: usize,
    pub total: usize,
    /// A connection on which no byte moves either way for this long is closed.
    pub idle: Duration,
}

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener that keeps at most so many connections open from one address and in all,
/// closes quiet ones, and speaks TLS on them when given a certificate.
pub struct LimitedListener {
    inner: TcpListener,
    limits: Limits,
    open: SharedOpen,
    tls: Option<TlsAcceptor>,
    /// Connections whose TLS handshake finished, from the tasks that ran them: a slow
    /// handshake never holds up the next accept.
    handshaken_tx: mpsc::Sender<(CountedStream, SocketAddr)>,
    handshaken: mpsc::Receiver<(CountedStream, SocketAddr)>,
}

impl LimitedListener {
    pub fn new(inner: TcpListener, limits: Limits) -> LimitedListener {
        let (handshaken_tx, handshaken) = mpsc::channel(64);
        LimitedListener {
            inner,
            limits,
            open: SharedOpen::default(),
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

    /// A slot for a connection from `address`, unless it or the server has too many open.
    fn slot(&self, address: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().expect("open connections");
        if open.total >= self.limits.total {
            return None;
        }
        let count = open.by_address.entry(address).or_default();
        if *count >= self.limits.per_address {
            return None;
        }
        *count += 1;
        open.total += 1;
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
                tracing::debug!(address = %peer.ip(), "too many connections");
                continue; // dropping the stream closes it
            };
            let idle = self.limits.idle;
            let Some(acceptor) = self.tls.clone() else {
                return (CountedStream::new(Stream::Plain(stream), slot, idle), peer);
            };
            let handshaken = self.handshaken_tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => {
                        let counted = CountedStream::new(Stream::Tls(Box::new(tls)), slot, idle);
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
    open: SharedOpen,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("open connections");
        open.total -= 1;
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// When a connection last moved a byte, and a timer for when it has been quiet too long.
struct Idle {
    after: Duration,
    last_moved: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Idle {
    fn new(after: Duration) -> Idle {
        let now = Instant::now();
        Idle {
            after,
            last_moved: now,
            timer: Box::pin(tokio::time::sleep_until(now + after)),
        }
    }

    /// The timer is moved only when it fires early, not at every byte.
    fn moved(&mut self) {
        self.last_moved = Instant::now();
    }

    /// An error once nothing has moved for `after`; otherwise wakes `cx` when that may be.
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            let due = self.last_moved + self.after;
            if self.timer.deadline() != due {
                self.timer.as_mut().reset(due);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Pending => return Ok(()),
                Poll::Ready(()) if self.last_moved + self.after == due => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "nothing moved on the connection for too long",
                    ))
                }
                Poll::Ready(()) => continue,
            }
        }
    }

    /// Notes progress of a read or write, or checks the timer when it is waiting.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
        moved: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match &poll {
            Poll::Ready(Ok(value)) if moved(value) => self.moved(),
            Poll::Pending => {
                if let Err(quiet) = self.check(cx) {
                    return Poll::Ready(Err(quiet));
                }
            }
            Poll::Ready(_) => {}
        }
        poll
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection, plain or TLS, counted against its address until it closes, and
/// closed when it stays quiet.
pub struct CountedStream {
    stream: Stream,
    idle: Idle,
    _slot: Slot,
}

impl CountedStream {
    fn new(stream: Stream, slot: Slot, idle: Duration) -> CountedStream {
        CountedStream {
            stream,
            idle: Idle::new(idle),
            _slot: slot,
        }
    }
}

/// Runs `$call` on the connection's stream, whichever it is.
macro_rules! on_stream {
    ($this:ident, $stream:ident => $call:expr) => {
        match &mut $this.stream {
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
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = on_stream!(this, stream => stream.poll_read(cx, buf));
        let grew = buf.filled().len() > before;
        this.idle.watch(cx, poll, |()| grew)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = on_stream!(this, stream => stream.poll_write(cx, buf));
        this.idle.watch(cx, poll, |written| *written > 0)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        on_stream!(this, stream => stream.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        on_stream!(this, stream => stream.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = on_stream!(this, stream => stream.poll_write_vectored(cx, bufs));
        this.idle.watch(cx, poll, |written| *written > 0)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(stream) => stream.is_write_vectored(),
            Stream::Tls(stream) => stream.is_write_vectored(),
        }
    }
}

/// The slowest a request's body may come on average, once the idle time has passed: a photo
/// of the largest size (10 MiB) takes about 21 minutes at this rate, a slow mobile link's
/// pace.
pub const MIN_BODY_BYTES_PER_SECOND: u64 = 8 * 1024;

/// A request's body that must keep coming: after the idle time, at least
/// [`MIN_BODY_BYTES_PER_SECOND`] on average since it was first asked for. A client that moves
/// a byte now and then, never quiet long enough to be closed as idle, would otherwise hold a
/// connection slot of its address for as long as it likes; this one is cut off, and the
/// request fails as a body that did not come. A timer runs while the body waits, so framing
/// that gives no data (a chunk size padded with spaces, byte by byte) is cut off too.
pub struct SteadyBody {
    inner: hyper::body::Incoming,
    grace: Duration,
    /// From the first time the handler asks for the body (time spent before that, e.g.
    /// looking up a session, is the server's, not the client's), with the deadline then.
    clock: Option<(Instant, Pin<Box<Sleep>>)>,
    received: u64,
}

impl SteadyBody {
    pub fn new(inner: hyper::body::Incoming, grace: Duration) -> SteadyBody {
        SteadyBody {
            inner,
            grace,
            clock: None,
            received: 0,
        }
    }

    fn deadline(&self, began: Instant) -> Instant {
        let earned = self.received as f64 / MIN_BODY_BYTES_PER_SECOND as f64;
        began + self.grace + Duration::from_secs_f64(earned)
    }
}

/// What a body that came too slowly fails with.
#[derive(Debug)]
pub struct BodyTooSlow;

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request's body came slower than {MIN_BODY_BYTES_PER_SECOND} bytes a second"
        )
    }
}

impl std::error::Error for BodyTooSlow {}

impl hyper::body::Body for SteadyBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.clock.is_none() {
            let began = Instant::now();
            let sleep = Box::pin(tokio::time::sleep_until(this.deadline(began)));
            this.clock = Some((began, sleep));
        }
        let poll = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &poll {
            let data = frame.data_ref().map_or(0, |data| data.len() as u64);
            if data > 0 {
                this.received += data;
                let (began, _) = this.clock.as_ref().expect("started above");
                let deadline = this.deadline(*began);
                this.clock
                    .as_mut()
                    .expect("started above")
                    .1
                    .as_mut()
                    .reset(deadline);
            }
        }
        if matches!(poll, Poll::Ready(None)) {
            return poll.map_err(Into::into);
        }
        // Polled on every wait, so the timer wakes this body even when no byte comes.
        let (_, sleep) = this.clock.as_mut().expect("started above");
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTooSlow.into())));
        }
        poll.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
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
