//! Desktop notifications, checked headless: both apps talk to a private D-Bus session bus on
//! which a small notification server (fixtures/notification_server.py) records every Notify.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use umer_chat_tests::support;

use crate::harness::{self, AppInstance};
use crate::{log_in, open_chat_titled, send, wait_message, wait_signed_in, UI};

/// `dbus-run-session` running the notification server; its whole process group is killed
/// on drop.
struct NotificationServer {
    child: Child,
    address: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NotificationServer {
    /// None (with a note) where the test cannot run: no dbus-run-session or python3-dbus.
    fn start() -> Option<NotificationServer> {
        let dir = support::temp_dir();
        let log = dir.path().join("notifications.jsonl");
        std::fs::write(&log, "").unwrap();
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/fixtures/notification_server.py");
        let spawned = Command::new("dbus-run-session")
            .args(["--", "/usr/bin/python3"])
            .arg(&script)
            .arg(&log)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => return skip(&format!("dbus-run-session cannot start: {e}")),
        };
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .ok();
        let Some(address) = line.trim().strip_prefix("ready ") else {
            let _ = child.kill();
            return skip(&format!(
                "the notification server did not start (python3-dbus and python3-gi missing?): {line:?}"
            ));
        };
        Some(NotificationServer {
            address: address.to_string(),
            child,
            log,
            _dir: dir,
        })
    }

    /// Every notification received so far, as the server logged it.
    fn records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every notification received so far: (summary, body).
    fn received(&self) -> Vec<(String, String)> {
        self.records()
            .iter()
            .map(|v| {
                (
                    v["summary"].as_str().unwrap().to_string(),
                    v["body"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn wait_for(&self, body: &str) -> (String, String) {
        let record = self.wait_for_record(body);
        (
            record["summary"].as_str().unwrap().to_string(),
            record["body"].as_str().unwrap().to_string(),
        )
    }

    fn wait_for_record(&self, body: &str) -> serde_json::Value {
        let start = Instant::now();
        loop {
            if let Some(found) = self.records().into_iter().find(|r| r["body"] == body) {
                return found;
            }
            assert!(
                start.elapsed() < UI,
                "no notification {body:?}; got {:?}",
                self.received()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl NotificationServer {
    /// Clicks notification `id`, as a person would: the server reports the action `default`.
    fn click(&self, id: u64) {
        let status = Command::new("dbus-send")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .args([
                "--session",
                "--print-reply",
                "--dest=org.freedesktop.Notifications",
                "/org/freedesktop/Notifications",
                "org.umerchat.Test.Click",
                &format!("uint32:{id}"),
            ])
            .stdout(Stdio::null())
            .status()
            .expect("dbus-send (Debian's dbus-bin) runs");
        assert!(status.success(), "dbus-send failed: {status}");
    }
}

impl Drop for NotificationServer {
    fn drop(&mut self) {
        // The session bus daemon and the server run in the child's process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

fn skip(why: &str) -> Option<NotificationServer> {
    assert!(
        std::env::var_os("UMER_CHAT_E2E_REQUIRED").is_none(),
        "notifications test cannot run: {why}"
    );
    eprintln!("SKIPPED notifications test: {why}");
    None
}

#[test]
fn a_message_notifies_an_unfocused_window_unless_muted_and_previews_can_be_hidden() {
    let Some((display, server)) = display_and_server() else {
        return;
    };
    let data = support::temp_dir();
    let (a, b) = alice_focused_bob_behind(&display, &server, data.path());

    // bob's window is not focused: he is told, with sender and preview.
    send(&a.session, "hello bob");
    // Each part someone else chose is isolated (U+2068 ... U+2069), so it cannot reorder
    // the words around it.
    let (summary, body) = server.wait_for("\u{2068}hello bob\u{2069}");
    assert_eq!(summary, "\u{2068}alice\u{2069}");
    assert_eq!(body, "\u{2068}hello bob\u{2069}");
    b.session
        .wait_until("the unread count in bob's title", UI, || {
            let title = b
                .session
                .execute("return document.title", serde_json::json!([]));
            (title == "(1) Umer Chat").then_some(())
        });

    // Markup is shown as typed: escaped for servers that render body markup.
    send(
        &a.session,
        "<b>hi</b> & <a href=\"https://x.example\">you</a>",
    );
    server.wait_for(
        "\u{2068}&lt;b&gt;hi&lt;/b&gt; &amp; &lt;a href=&quot;https://x.example&quot;&gt;you&lt;/a&gt;\u{2069}",
    );

    // alice's window is focused: nothing for her.
    open_chat_titled(&b.session, "alice");
    send(&b.session, "for alice");
    wait_message(&a.session, "for alice", UI);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !server
            .received()
            .iter()
            .any(|(_, body)| body.contains("for alice")),
        "{:?}",
        server.received()
    );

    // Previews hidden: who and where, not what.
    crate::open_settings(&b.session);
    b.session.click("#pref-previews");
    wait_unchecked(&b.session, "pref-previews");
    crate::close_settings(&b.session);
    send(&a.session, "a secret");
    let (summary, _) = server.wait_for("New message");
    assert_eq!(summary, "\u{2068}alice\u{2069}");
    assert!(!server
        .received()
        .iter()
        .any(|(_, body)| body.contains("secret")));

    // Muted: nothing at all.
    b.session.click("#chat-mute");
    b.session.wait_text_contains("#chat-mute", "Unmute", UI);
    let before = server.received().len();
    send(&a.session, "while muted");
    wait_message(&b.session, "while muted", UI);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(server.received().len(), before, "{:?}", server.received());
}

/// Xvfb and the notification server, or None where either cannot run (the test is skipped).
fn display_and_server() -> Option<(harness::Display, NotificationServer)> {
    Some((harness::display_or_skip()?, NotificationServer::start()?))
}

/// alice and bob signed in on `server`'s bus, in their DM: alice has it open in the focused
/// window (launched last: no window manager), bob has no chat open in the other.
fn alice_focused_bob_behind(
    display: &harness::Display,
    server: &NotificationServer,
    data: &Path,
) -> (AppInstance, AppInstance) {
    support::alice_and_bob_with_a_dm(data);
    let bus = [("DBUS_SESSION_BUS_ADDRESS", server.address.as_str())];
    let b = AppInstance::launch_with(display, data, &bus);
    let a = AppInstance::launch_with(display, data, &bus);
    log_in(&b.session, "bob", support::PASSWORD);
    log_in(&a.session, "alice", support::PASSWORD);
    wait_signed_in(&b.session, "bob");
    wait_signed_in(&a.session, "alice");
    open_chat_titled(&a.session, "bob");
    assert!(has_focus(&a.session) && !has_focus(&b.session));
    (a, b)
}

fn has_focus(s: &crate::webdriver::Session) -> bool {
    s.execute("return document.hasFocus()", serde_json::json!([])) == serde_json::json!(true)
}

fn wait_unchecked(s: &crate::webdriver::Session, id: &str) {
    s.wait_until(&format!("#{id} unchecked"), UI, || {
        let checked = s.execute(
            "return document.getElementById(arguments[0]).checked",
            serde_json::json!([id]),
        );
        (checked == serde_json::json!(false)).then_some(())
    });
}

#[test]
fn clicking_a_notification_brings_its_chat_forward() {
    let Some((display, server)) = display_and_server() else {
        return;
    };
    let data = support::temp_dir();
    let (a, b) = alice_focused_bob_behind(&display, &server, data.path());
    assert_eq!(
        open_chat_title(&b.session),
        "",
        "bob starts with no chat open"
    );

    send(&a.session, "click me");
    let notice = server.wait_for_record("\u{2068}click me\u{2069}");
    // Offering the "default" action is what lets a server report a click at all.
    assert!(
        notice["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "default"),
        "{notice}"
    );
    server.click(notice["id"].as_u64().unwrap());
    wait_message(&b.session, "click me", UI);
    assert_eq!(open_chat_title(&b.session), "alice");
    // The window came forward: it has the focus now (no window manager to refuse it).
    b.session.wait_until("bob's window focused", UI, || {
        has_focus(&b.session).then_some(())
    });

    // A click on a notification that is not ours (an id the app never got) changes nothing.
    server.click(9_999);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(open_chat_title(&b.session), "alice");
}

fn open_chat_title(s: &crate::webdriver::Session) -> String {
    let title = s.execute(
        "const view = document.getElementById('chat-view');
         return view.hidden ? '' : document.getElementById('chat-title').textContent;",
        serde_json::json!([]),
    );
    title.as_str().unwrap_or_default().to_string()
}
