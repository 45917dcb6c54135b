//! The server's push socket (issue 19): each member's device is sent new lines, changes and
//! typing claims as they commit, from its own cursor; nobody else is; a slow reader is
//! closed without holding anyone up; and one client cannot hold the server's connections.

use std::time::{Duration, Instant};

use serde_json::json;
use umer_chat_core::ids::now_ms;
use umer_chat_tests::support::server::{
    account_in, chat_record, dm_on, log_lines, on_each_database, Pushed, TestServer,
};
use umer_chat_tests::support::{key, message, open_signed_in, open_store, sign_up};

const SOON: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(400);

#[test]
fn members_are_pushed_lines_changes_and_typing_as_they_commit_and_nobody_else() {
    on_each_database(|backend| {
        let server = TestServer::start(backend);
        let d = dm_on(&server);
        let root = d.folder.path();
        let chat = d.path();
        d.store_record();
        d.alice_sends("before");
        sign_up(&open_store(root), &["carol"]);
        let carol = server
            .client()
            .sign_up(&account_in(root, "carol"), "0000000000000003");

        // bob catches up from nothing, then is told he is up to date.
        let mut bob = d.bob.push(json!({})).unwrap();
        let caught_up = bob.until_ready();
        assert_eq!(caught_up.len(), 1);
        assert_eq!(caught_up[0]["type"], "lines");
        assert_eq!(caught_up[0]["chat"], d.dm.as_str());
        assert_eq!(caught_up[0]["next"], 1);
        let mut carol_push = carol.push(json!({})).unwrap();
        assert!(carol_push.until_ready().is_empty());
        let mut alice = d.alice.push(json!({ d.dm.as_str(): 1 })).unwrap();
        assert!(
            alice.until_ready().is_empty(),
            "alice's cursor is at the end"
        );

        // A new line reaches bob (and alice's other socket) at once; carol hears nothing.
        d.alice_store
            .append_message(&key("alice"), d.dm.as_str(), Some("after"), None)
            .unwrap();
        let lines = log_lines(root, &d.dm, "alice");
        let sent = Instant::now();
        d.alice
            .post(&format!("{chat}/lines"), json!({"lines": lines}))
            .ok();
        let pushed = bob.expect(SOON);
        eprintln!("pushed after {:?}", sent.elapsed());
        assert_eq!(pushed["type"], "lines");
        assert_eq!(pushed["next"], 2);
        assert_eq!(pushed["lines"][0]["line"], lines[1].as_str());
        assert_eq!(alice.expect(SOON)["next"], 2);
        assert!(matches!(carol_push.next(QUIET), Pushed::Nothing));

        // A new chat with bob in it: bob is told; carol is not.
        let group = d
            .alice_store
            .create_group_chat(&key("alice"), "Plans", &["bob"])
            .unwrap()
            .id
            .clone();
        d.alice
            .put(
                &format!("/v1/chats/{group}"),
                json!({"record": chat_record(root, &group)}),
            )
            .ok();
        assert_eq!(
            bob.expect(SOON),
            json!({"type": "changed", "chat": group.as_str()})
        );
        assert!(matches!(carol_push.next(QUIET), Pushed::Nothing));

        // alice types: her device's signed claim reaches bob, as it is.
        d.alice_store
            .set_typing(&key("alice"), Some(d.dm.as_str()))
            .unwrap();
        let claim = std::fs::read_to_string(
            root.join("presence")
                .join(format!("{}.json", d.alice_store.device().as_str())),
        )
        .unwrap();
        alice.send(json!({"type": "typing", "claim": claim}));
        let typing = bob.expect(SOON);
        assert_eq!(typing["type"], "typing");
        assert_eq!(typing["chat"], d.dm.as_str());
        assert_eq!(typing["claim"], claim.as_str());
        assert!(matches!(carol_push.next(QUIET), Pushed::Nothing));
        // bob passing on alice's claim as his own is refused, and his socket closed.
        bob.send(json!({"type": "typing", "claim": claim}));
        loop {
            match bob.next(SOON) {
                Pushed::Message(m) if m["type"] == "typing" => continue, // alice's echo
                Pushed::Closed(code) => {
                    assert_eq!(code, Some(4422));
                    break;
                }
                other => panic!("expected bob's socket closed, got {other:?}"),
            }
        }
        // A socket that does not say hello first is closed.
        let mut rude = d.bob.push(json!({})).unwrap();
        rude.until_ready();
        rude.send(json!({"type": "hello", "cursors": {}}));
        assert!(matches!(rude.next(SOON), Pushed::Closed(Some(4400))));
        // No session, no socket.
        let refused = server.client().push(json!({})).err().expect("refused");
        refused.refused(401, "not_signed_in");
    });
}

#[test]
fn a_slow_reader_is_closed_and_holds_up_nobody() {
    on_each_database(|backend| {
        let server = TestServer::start_with(backend, &["--slow-client-seconds", "1"]);
        let d = dm_on(&server);
        let root = d.folder.path();
        let chat = d.path();
        d.store_record();
        // bob's phone reads nothing after hello; his laptop reads everything.
        let mut slow = d.bob.push(json!({})).unwrap();
        slow.until_ready();
        let laptop_store = open_signed_in(root, &["bob"]);
        let laptop = server
            .client()
            .sign_in(
                "bob",
                &account_in(root, "bob").auth_key,
                laptop_store.device().as_str(),
            )
            .ok();
        let laptop = server
            .client()
            .with_token(laptop["session"].as_str().unwrap());
        let mut fast = laptop.push(json!({})).unwrap();
        fast.until_ready();

        // 2,000 lines of 9,000 characters each: more than the sockets' buffers hold.
        let text = "x".repeat(9_000);
        let device = d.alice_store.device().clone();
        let start = now_ms() - 10_000;
        let events: Vec<_> = (0..2_000)
            .map(|i| message(&d.dm, &key("alice"), &device, i, start + i as i64, &text))
            .collect();
        let lines: Vec<String> = d
            .alice_store
            .event_lines(&events)
            .unwrap()
            .into_iter()
            .map(|(_, line)| line)
            .collect();
        let reader = std::thread::spawn(move || {
            let mut got = 0;
            while got < 2_000 {
                let message = fast.expect(Duration::from_secs(30));
                got += message["lines"].as_array().map_or(0, Vec::len);
            }
            got
        });
        let began = Instant::now();
        for batch in lines.chunks(100) {
            d.alice
                .post(&format!("{chat}/lines"), json!({"lines": batch}))
                .ok();
        }
        assert_eq!(reader.join().unwrap(), 2_000);
        eprintln!("the fast reader had all 2,000 after {:?}", began.elapsed());
        // The server still answers at once.
        let asked = Instant::now();
        server.client().get("/healthz");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "took {:?}",
            asked.elapsed()
        );
        // The slow one was closed: what it reads now ends before all 2,000 lines.
        std::thread::sleep(Duration::from_secs(2));
        let mut got = 0;
        loop {
            match slow.next(Duration::from_secs(5)) {
                Pushed::Message(message) => got += message["lines"].as_array().map_or(0, Vec::len),
                Pushed::Closed(_) => break,
                Pushed::Nothing => panic!("the slow socket was left open ({got} lines read)"),
            }
        }
        assert!(
            got < 2_000,
            "the slow socket got everything ({got}): not closed for it"
        );
        eprintln!("the slow reader was closed after {got} lines");
        // It resumes from its cursor on a new socket.
        let mut again = d.bob.push(json!({ d.dm.as_str(): got })).unwrap();
        let rest: usize = again
            .until_ready()
            .iter()
            .map(|m| m["lines"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(got + rest, 2_000);
    });
}

/// A TCP connection to `url`'s port from the loopback address `from` (not 127.0.0.1).
#[cfg(unix)]
fn connect_from(from: [u8; 4], port: u16) -> Option<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        if fd < 0 {
            return None;
        }
        let mut address: libc::sockaddr_in = std::mem::zeroed();
        address.sin_family = libc::AF_INET as libc::sa_family_t;
        address.sin_addr.s_addr = u32::from_ne_bytes(from);
        let size = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &address as *const _ as *const libc::sockaddr, size) != 0 {
            libc::close(fd);
            return None;
        }
        address.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        address.sin_port = port.to_be();
        if libc::connect(fd, &address as *const _ as *const libc::sockaddr, size) != 0 {
            libc::close(fd);
            return None;
        }
        Some(std::net::TcpStream::from_raw_fd(fd))
    }
}

#[cfg(unix)]
#[test]
fn one_client_with_ten_thousand_connections_holds_nobody_else_up() {
    let server = TestServer::start(umer_chat_tests::support::server::Backend::Sqlite);
    let port: u16 = server.url.rsplit(':').next().unwrap().parse().unwrap();
    // As many as this process may open, up to 10,000.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    let wanted = 10_000.min(limit.rlim_cur.saturating_sub(300) as usize);
    let mut held = Vec::with_capacity(wanted);
    let began = Instant::now();
    for _ in 0..wanted {
        match connect_from([127, 0, 0, 2], port) {
            Some(stream) => held.push(stream),
            None => break,
        }
    }
    eprintln!(
        "opened {} connections from 127.0.0.2 in {:?}",
        held.len(),
        began.elapsed()
    );
    assert!(
        held.len() >= 5_000.min(wanted),
        "could open only {}",
        held.len()
    );
    // Everyone else is served at once.
    let folder = umer_chat_tests::support::temp_dir();
    sign_up(&open_store(folder.path()), &["alice"]);
    let asked = Instant::now();
    let alice = server
        .client()
        .sign_up(&account_in(folder.path(), "alice"), "0000000000000001");
    alice.get("/v1/chats").ok();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "took {:?}",
        asked.elapsed()
    );
    // The server kept 512 of them and closed the rest.
    std::thread::sleep(Duration::from_secs(1));
    let closed = held
        .iter()
        .filter(|stream| {
            use std::io::Read;
            let mut stream: &std::net::TcpStream = stream;
            stream
                .set_read_timeout(Some(Duration::from_millis(1)))
                .unwrap();
            match stream.read(&mut [0u8; 1]) {
                Ok(0) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
                Ok(_) => false,
            }
        })
        .count();
    eprintln!("{closed} of them were closed by the server");
    assert!(
        closed >= held.len() - 512,
        "only {closed} closed of {}",
        held.len()
    );
    // And too many push sockets for one account are refused.
    let mut sockets = Vec::new();
    for _ in 0..32 {
        let mut socket = alice.push(json!({})).unwrap();
        socket.until_ready();
        sockets.push(socket);
    }
    alice
        .push(json!({}))
        .err()
        .expect("a 33rd socket is refused")
        .refused(429, "too_many_connections");
    drop(sockets);
}

/// Reads from `stream` until the server closes it; how long that took (`None`: still open
/// after `limit`).
fn closed_within(stream: &mut std::net::TcpStream, limit: Duration) -> Option<Duration> {
    use std::io::Read;
    let began = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buffer = [0u8; 4096];
    while began.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(began.elapsed()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(began.elapsed())
            }
            Err(_) => {}
        }
    }
    None
}

/// Sends `at_once` to the server at `address`, then `trickled` a byte every 250 ms, and
/// checks that the connection is closed once the idle time (1 s) is up, well before the end.
fn assert_closed_after_the_idle_time(what: &str, address: &str, at_once: &[u8], trickled: &[u8]) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(at_once).unwrap();
    let began = Instant::now();
    let closed = trickled
        .iter()
        .find_map(|byte| {
            let gone = stream.write_all(&[*byte]).is_err()
                || closed_within(&mut stream, Duration::from_millis(250)).is_some();
            gone.then(|| began.elapsed())
        })
        .unwrap_or_else(|| panic!("{what} connection is still open after its last byte"));
    eprintln!("{what} connection was closed after {closed:?}");
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&closed),
        "{what}: {closed:?}"
    );
}

#[test]
fn quiet_connections_are_closed_and_a_push_socket_that_answers_pings_stays() {
    use std::io::Write;
    let server = TestServer::start_with(
        umer_chat_tests::support::server::Backend::Sqlite,
        &["--idle-seconds", "1"],
    );
    let address = server.url.trim_start_matches("http://").to_string();
    // A connection that says nothing, and one that never finishes its request's headers.
    let opened = Instant::now();
    let mut silent = std::net::TcpStream::connect(&address).unwrap();
    let mut unfinished = std::net::TcpStream::connect(&address).unwrap();
    unfinished
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // Neither is closed at once...
    for stream in [&mut silent, &mut unfinished] {
        assert!(closed_within(stream, Duration::from_millis(300)).is_none());
    }
    // ...and both are once the idle time is up.
    for (name, stream) in [("silent", &mut silent), ("unfinished", &mut unfinished)] {
        closed_within(stream, Duration::from_secs(5))
            .unwrap_or_else(|| panic!("the {name} connection is still open"));
        let closed = opened.elapsed();
        eprintln!("the {name} connection was closed after {closed:?}");
        assert!(closed >= Duration::from_millis(900), "{name}: {closed:?}");
    }
    // One that trickles its header, a byte every 250 ms, is never quiet, but is closed once
    // its header has taken longer than the idle time.
    let header = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".as_slice(),
        &[b'a'; 60],
    ]
    .concat();
    assert_closed_after_the_idle_time("the trickled header's", &address, b"", &header);
    // One that sends its header at once and trickles its body, a byte every 250 ms, is cut
    // off once the body falls behind the slowest pace allowed (after the idle time)...
    assert_closed_after_the_idle_time(
        "the trickled body's",
        &address,
        b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{",
        &[b' '; 999],
    );
    // A chunked body whose chunk size is padded with spaces, byte by byte, gives no data at
    // all: the body's own timer cuts it off.
    assert_closed_after_the_idle_time(
        "the padded chunk's",
        &address,
        b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Transfer-Encoding: chunked\r\n\r\n1",
        &[b' '; 999],
    );
    // ...while one that keeps a slow but steady pace (32 KiB a second, for longer than the
    // idle time) is read to its end and answered.
    let mut steady = std::net::TcpStream::connect(&address).unwrap();
    steady
        .write_all(b"POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n")
        .unwrap();
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(250));
        steady.write_all(&[b' '; 8192]).unwrap();
    }
    steady
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = [0u8; 512];
    let got = std::io::Read::read(&mut steady, &mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..got]);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(!answer.contains("slower"), "{answer}");

    // A push socket whose client reads (so answers the server's pings) stays open across
    // several idle periods; one whose client never reads is closed with 4408.
    let d = dm_on(&server);
    d.store_record();
    let mut listening = d.bob.push(json!({})).unwrap();
    listening.until_ready();
    let deaf = d.alice.push(json!({})).unwrap();
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(3) {
        match listening.next(Duration::from_millis(100)) {
            Pushed::Nothing => {}
            other => panic!("the listening socket met {other:?}"),
        }
    }
    let sent = deaf.raw_until_closed(SOON);
    // Pings, then a close frame (0x88) with code 4408 and its reason.
    let close = [&[0x88, 2 + 19, 0x11, 0x38][..], b"No answer to pings."].concat();
    assert!(
        sent.ends_with(&close),
        "the deaf socket ended with {:?}",
        String::from_utf8_lossy(&sent[sent.len().saturating_sub(40)..])
    );
    assert!(
        sent.windows(2).any(|frame| frame == [0x89, 0]),
        "pinged (0x89) before"
    );
    // The one that answered still gets what is new.
    d.alice_sends("still there?");
    assert_eq!(listening.expect(SOON)["type"], "lines");
}

#[test]
fn the_server_holds_at_most_max_connections_in_all() {
    let server = TestServer::start_with(
        umer_chat_tests::support::server::Backend::Sqlite,
        &["--max-connections", "20"],
    );
    let address = server.url.trim_start_matches("http://").to_string();
    let mut held: Vec<_> = (0..20)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    // The server has taken all twenty (each in its accept loop) before the next comes.
    std::thread::sleep(Duration::from_millis(300));
    let mut over = std::net::TcpStream::connect(&address).unwrap();
    assert!(
        closed_within(&mut over, Duration::from_secs(2)).is_some(),
        "a 21st connection was kept"
    );
    // One closed makes room for one more, which is served.
    held.pop();
    std::thread::sleep(Duration::from_millis(300));
    server.client().get("/healthz").ok();
    assert!(
        held.iter_mut()
            .all(|stream| closed_within(stream, Duration::from_millis(200)).is_none()),
        "the connections held were kept"
    );
}

/// The load bench's short run: clients in groups on push sockets, messages at a steady
/// rate, one server killed with `kill -9` halfway; every message reaches every member once.
/// (The long run, with two servers on PostgreSQL and the database restarted, is in
/// BENCHMARKS.md.)
#[test]
fn a_short_load_with_a_server_killed_halfway_loses_and_doubles_nothing() {
    let output = std::process::Command::new(umer_chat_tests::support::server_load_path())
        .env(
            "LOAD_SERVER_BINARY",
            umer_chat_tests::support::server_path(),
        )
        .env("LOAD_CLIENTS", "24")
        .env("LOAD_GROUP", "4")
        .env("LOAD_RATE", "30")
        .env("LOAD_SECONDS", "6")
        .env("LOAD_FAULTS", "1")
        .output()
        .expect("run the load bench");
    let report = String::from_utf8_lossy(&output.stdout);
    eprintln!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success());
    assert!(report.contains("fault: killed server 0"), "{report}");
    assert!(
        report.contains("| **lost** (never pushed to a member) | **0** |"),
        "{report}"
    );
    assert!(
        report.contains("| **shown twice** (pushed twice to one client) | **0** |"),
        "{report}"
    );
}
