//! Umer Chat's server (issue 19, `docs/server.md`): a store-and-forward of the folder's own
//! signed, encrypted bytes, on SQLite or PostgreSQL, over HTTP. It checks at the door what
//! a folder can only skip afterwards (who wrote a line, into which chat, whether they are
//! in it) with the core's checks, and can read none of it.
//!
//! Floors: `error` and `db` know nothing of HTTP routes; `auth` and `api` are the handlers;
//! this file puts them together.

pub mod api;
pub mod auth;
pub mod db;
pub mod error;
pub mod import;
pub mod net;
pub mod push;
mod recent;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use rand::RngCore;
use umer_chat_core::MAX_SEALED_IMAGE_BYTES;

use crate::auth::AddressFailures;
use crate::db::Database;

/// How the server runs, from its command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a session lasts.
    pub session_lifetime_ms: i64,
    /// The largest request body: a page of lines or a record.
    pub max_body_bytes: usize,
    /// Connections one address may hold open at once (raise it behind a reverse proxy,
    /// whose one address carries everyone).
    pub connections_per_address: usize,
    /// Connections open at once, from everyone (each is a file descriptor).
    pub max_connections: usize,
    /// A connection on which nothing moves for this long is closed. A push socket is
    /// pinged at a third of it, and closed when its client has not answered within it.
    pub idle_ms: u64,
    /// A push socket that does not take a message within this long is closed.
    pub slow_client_ms: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            session_lifetime_ms: 90 * 24 * 60 * 60 * 1000,
            max_body_bytes: 2 << 20,
            connections_per_address: 512,
            max_connections: 10_000,
            idle_ms: 60_000,
            slow_client_ms: 10_000,
        }
    }
}

/// What every handler shares.
pub struct Server<D> {
    pub db: D,
    pub config: Config,
    /// Makes the pre-login answer for names nobody has.
    secret: Vec<u8>,
    /// A hash checked when a name is unknown, so that costs as long as a wrong password.
    decoy_hash: String,
    address_failures: AddressFailures,
    pub hub: push::Hub,
    /// Each chat's newest lines, shared by the process's sockets.
    recent: recent::RecentLines,
    sockets: push::SocketCounts,
    /// Turns at Argon2id, one per core.
    hashing: tokio::sync::Semaphore,
}

impl<D: Database> Server<D> {
    pub async fn new(db: D, config: Config) -> Result<Server<D>, sqlx::Error> {
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let secret = db.server_secret(&fresh).await?;
        let decoy_hash = tokio::task::spawn_blocking(|| {
            umer_chat_core::password::hash("a sign-in key nobody has")
        })
        .await
        .expect("hashing does not panic");
        let hub = push::Hub::default();
        db.listen(hub.clone());
        Ok(Server {
            db,
            config,
            secret,
            decoy_hash,
            address_failures: AddressFailures::default(),
            hub,
            recent: recent::RecentLines::default(),
            sockets: push::SocketCounts::default(),
            hashing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            ),
        })
    }

    fn address_failures(&self, address: IpAddr, now: i64) -> u32 {
        self.address_failures.count(address, now)
    }

    fn add_address_failure(&self, address: IpAddr, now: i64) {
        self.address_failures.add(address, now)
    }
}

/// Every route of the server.
pub fn router<D: Database>(server: Arc<Server<D>>) -> Router {
    let max_body = server.config.max_body_bytes;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/prelogin/{user}", get(auth::prelogin::<D>))
        .route(
            "/v1/users",
            post(auth::sign_up::<D>).get(api::directory::<D>),
        )
        .route(
            "/v1/sessions",
            post(auth::sign_in::<D>).get(auth::sessions::<D>),
        )
        .route("/v1/sessions/{id}", delete(auth::revoke::<D>))
        .route("/v1/users/{user}/unclaimed", get(auth::unclaimed::<D>))
        .route("/v1/users/{user}/recovery", get(auth::recovery::<D>))
        .route("/v1/claims", post(auth::claim::<D>))
        .route("/v1/users/{user}/password", post(auth::set_password::<D>))
        .route("/v1/chats", get(api::chats::<D>))
        .route("/v1/chats/{id}", put(api::put_chat::<D>))
        .route(
            "/v1/chats/{id}/lines",
            post(api::append::<D>).get(api::lines::<D>),
        )
        .route(
            "/v1/chats/{id}/members",
            post(api::change_members::<D>).get(api::membership::<D>),
        )
        .route("/v1/chats/{id}/keys", get(api::key_epochs::<D>))
        .route("/v1/chats/{id}/keys/{name}", put(api::put_key_epoch::<D>))
        .route("/v1/chats/{id}/images", get(api::image_names::<D>))
        .route(
            "/v1/chats/{id}/images/{name}",
            put(api::put_image::<D>)
                .get(api::image::<D>)
                .layer(DefaultBodyLimit::max(MAX_SEALED_IMAGE_BYTES as usize)),
        )
        .route("/v1/chats/{id}/reads", get(api::read_markers::<D>))
        .route("/v1/reads/{device}", put(api::put_read_markers::<D>))
        .route("/v1/push", get(push::socket::<D>))
        .fallback(error::no_such_route)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(server)
}

/// Serves `server` on `listener` until the process is stopped: over TLS with `tls`.
pub async fn serve<D: Database>(
    server: Server<D>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
) -> std::io::Result<()> {
    let limits = net::Limits {
        per_address: server.config.connections_per_address,
        total: server.config.max_connections,
        idle: std::time::Duration::from_millis(server.config.idle_ms),
    };
    let mut listener = net::LimitedListener::new(listener, limits);
    if let Some(tls) = tls {
        listener = listener.with_tls(tls);
    }
    // The idle time, also between requests: as long as a kept-alive connection lived before.
    let header_timeout = limits.idle;
    let app = router(Arc::new(server));
    loop {
        let (stream, peer) = axum::serve::Listener::accept(&mut listener).await;
        let app = app.clone();
        tokio::spawn(async move {
            // Handlers learn the peer as axum's `ConnectInfo` tells it, and read a body that
            // must keep coming (`SteadyBody`).
            let service = tower::ServiceExt::map_request(
                app,
                move |request: axum::extract::Request<hyper::body::Incoming>| {
                    let mut request =
                        request.map(|body| net::SteadyBody::new(body, header_timeout));
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(net::Peer(peer)));
                    request
                },
            );
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = http
                .serve_connection(
                    hyper_util::rt::TokioIo::new(stream),
                    hyper_util::service::TowerToHyperService::new(service),
                )
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended");
            }
        });
    }
}
