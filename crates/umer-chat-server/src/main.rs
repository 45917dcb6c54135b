//! `umer-chat-server`: see `docs/server.md` and README's "Running a server".

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use umer_chat_server::db::{Postgres, Sqlite};
use umer_chat_server::{serve, Config, Server};

/// Umer Chat's server: stores and forwards the signed, encrypted events of its users' chats,
/// which it cannot read, on SQLite (one file, the default) or PostgreSQL.
#[derive(Parser, Debug)]
#[command(name = "umer-chat-server", version)]
struct Args {
    /// Address and port to listen on.
    #[arg(
        long,
        default_value = "127.0.0.1:8470",
        env = "UMER_CHAT_SERVER_LISTEN"
    )]
    listen: String,
    /// Folder for the SQLite database (`umer-chat-server.sqlite3`); made if missing.
    #[arg(
        long,
        default_value = "umer-chat-server-data",
        env = "UMER_CHAT_SERVER_DATA"
    )]
    data: PathBuf,
    /// A PostgreSQL database (`postgres://user:password@host/db`) in place of SQLite, for
    /// several server processes on one database.
    #[arg(long, env = "UMER_CHAT_DATABASE_URL")]
    database_url: Option<String>,
    /// How long a session lasts, in seconds (90 days by default).
    #[arg(long, default_value_t = 90 * 24 * 60 * 60)]
    session_seconds: i64,
    /// Connections one address may hold open at once. Raise it behind a reverse proxy,
    /// whose one address carries everyone.
    #[arg(long, default_value_t = 512)]
    connections_per_address: usize,
    /// Connections open at once, from everyone. The process raises its file-descriptor
    /// limit to fit, or lowers this to fit the limit.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Seconds a connection may stay quiet before it is closed (push connections are
    /// pinged, so a client that is there stays connected). A request's header must also
    /// come whole within this time, however it trickles.
    #[arg(long, default_value_t = 60.0)]
    idle_seconds: f64,
    /// Seconds a push connection may leave a message untaken before it is closed (its
    /// client then resumes from where it was).
    #[arg(long, default_value_t = 10.0)]
    slow_client_seconds: f64,
    /// TLS without a reverse proxy: the certificate chain (PEM, the server's first), with
    /// `--tls-key`. Clients then use `https://`.
    #[arg(long, env = "UMER_CHAT_SERVER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM), with `--tls-cert`.
    #[arg(long, env = "UMER_CHAT_SERVER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Copy a shared data folder onto the server (its database, as the options above
    /// name it), byte for byte: users, chats, changes, key epochs, lines, photos and read
    /// markers. Run it again to copy what is new. Prints what it copied (JSON).
    Import { folder: PathBuf },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // glibc raises its mmap threshold after each large free, after which Argon2id's 19 MiB
    // come from arenas that never give them back: 200 sign-ups left 1 GB resident. A fixed
    // threshold keeps such blocks mmapped, returned on free.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator, under its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("umer-chat-server: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if let Some(Command::Import { folder }) = &args.command {
        let report = match &args.database_url {
            Some(url) => {
                let db = Postgres::connect(url)
                    .await
                    .map_err(|e| format!("cannot use the PostgreSQL database: {e}"))?;
                umer_chat_server::import::import(&db, folder).await?
            }
            None => {
                let (db, _) = open_sqlite(&args.data).await?;
                umer_chat_server::import::import(&db, folder).await?
            }
        };
        println!(
            "{}",
            serde_json::to_string(&report).expect("reports serialise")
        );
        return Ok(());
    }
    let config = Config {
        session_lifetime_ms: args.session_seconds.saturating_mul(1000),
        connections_per_address: args.connections_per_address,
        max_connections: fit_file_limit(args.max_connections),
        // Between 10 ms and a day (an endless one would overflow the timer).
        idle_ms: (args.idle_seconds * 1000.0).clamp(10.0, 86_400_000.0) as u64,
        slow_client_ms: (args.slow_client_seconds * 1000.0) as u64,
        ..Config::default()
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(umer_chat_server::net::tls_config(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    match args.database_url {
        Some(url) => {
            let db = Postgres::connect(&url)
                .await
                .map_err(|e| format!("cannot use the PostgreSQL database: {e}"))?;
            let server = Server::new(db, config)
                .await
                .map_err(|e| format!("cannot start: {e}"))?;
            announce(scheme, address);
            tracing::info!(%address, database = "postgres", "listening");
            serve(server, listener, tls).await
        }
        None => {
            let (db, file) = open_sqlite(&args.data).await?;
            let server = Server::new(db, config)
                .await
                .map_err(|e| format!("cannot start: {e}"))?;
            announce(scheme, address);
            tracing::info!(%address, database = %file.display(), "listening");
            serve(server, listener, tls).await
        }
    }
    .map_err(|e| format!("stopped: {e}"))
}

/// Descriptors kept for the database, the listening socket and files, beside connections.
const SPARE_FILES: u64 = 256;

/// `wanted` connections, if the process's file-descriptor limit can be raised to fit them
/// (up to its hard limit); otherwise as many as fit, with a warning.
fn fit_file_limit(wanted: usize) -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct given.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return wanted;
            }
            let needed = (wanted as u64).saturating_add(SPARE_FILES);
            if limit.rlim_cur < needed {
                let raised = libc::rlimit {
                    rlim_cur: needed.min(limit.rlim_max),
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        let fits = limit.rlim_cur.saturating_sub(SPARE_FILES).max(1) as usize;
        if fits < wanted {
            tracing::warn!(
                wanted,
                fits,
                "the file-descriptor limit allows fewer connections than --max-connections; raise LimitNOFILE"
            );
            return fits;
        }
    }
    wanted
}

/// The SQLite database in the folder `data` (made if missing), and its file.
async fn open_sqlite(data: &std::path::Path) -> Result<(Sqlite, PathBuf), String> {
    std::fs::create_dir_all(data).map_err(|e| format!("cannot make {}: {e}", data.display()))?;
    let file = data.join("umer-chat-server.sqlite3");
    let db = Sqlite::open(&file)
        .await
        .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    Ok((db, file))
}

/// The one line on standard output: where to reach the server (the port, when 0 was asked).
fn announce(scheme: &str, address: std::net::SocketAddr) {
    println!("listening on {scheme}://{address}");
}
