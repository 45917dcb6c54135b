//! Two OS accounts on one shared drive: each runs the real CLI under their own uid (with
//! `setpriv`, so this needs root, as in CI) and must see the other's chats and messages.
//! Files are written with the umask, not tempfile's private 0600.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;
use std::process::Command;

use umer_chat_tests::support::{cli_path, program_under, run, temp_dir, Output};

const SHARED_GID: u32 = 4242;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The CLI as OS user `uid` in the shared group, with umask 002 (a group-shared drive).
/// `cli` is a copy of the binary that other users can run: the checkout may be private.
fn as_os_user(uid: u32, cli: &Path, data: &Path, config: &Path, args: &[&str]) -> Output {
    let mut setpriv = Command::new("setpriv");
    setpriv
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={SHARED_GID}"))
        .arg("--clear-groups")
        .args(["--", "sh", "-c", "umask 002; exec \"$0\" \"$@\""]);
    let mut cmd = program_under(setpriv, cli, data, config);
    cmd.args(args)
        .env("HOME", config)
        .current_dir(cli.parent().unwrap());
    run(&mut cmd)
}

#[test]
fn two_os_users_on_one_folder_see_each_others_chats() {
    if !is_root() {
        eprintln!("skipped: running the CLI as other OS users needs root (CI runs as root)");
        return;
    }
    // A copy of the CLI that any user may run, wherever the checkout is.
    let bin = temp_dir();
    fs::set_permissions(bin.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let cli = bin.path().join("umer-chat-cli");
    fs::copy(cli_path(), &cli).unwrap();
    fs::set_permissions(&cli, fs::Permissions::from_mode(0o755)).unwrap();
    let data = temp_dir();
    let (config_a, config_b) = (temp_dir(), temp_dir());
    // A folder for the group, as on a shared drive; each user owns their own config.
    chown(data.path(), Some(0), Some(SHARED_GID)).unwrap();
    fs::set_permissions(data.path(), fs::Permissions::from_mode(0o2775)).unwrap();
    chown(config_a.path(), Some(4201), Some(SHARED_GID)).unwrap();
    chown(config_b.path(), Some(4202), Some(SHARED_GID)).unwrap();
    let a = |args: &[&str]| as_os_user(4201, &cli, data.path(), config_a.path(), args);
    let b = |args: &[&str]| as_os_user(4202, &cli, data.path(), config_b.path(), args);

    a(&["signup", "alice"]).ok();
    b(&["signup", "bob"]).ok();
    assert_eq!(b(&["users"]).ok(), "alice\nbob\n");
    let dm = a(&["--user", "alice", "dm", "bob"]).ok();
    let dm = dm.trim();
    a(&["--user", "alice", "send", dm, "from the first account"]).ok();
    let read = b(&["--user", "bob", "read", dm]).ok();
    assert!(read.contains("from the first account"), "{read}");
    b(&["--user", "bob", "send", dm, "from the second account"]).ok();
    let group = b(&["--user", "bob", "group", "Both", "alice"]).ok();
    a(&["--user", "alice", "send", group.trim(), "in bob's group"]).ok();
    let read = a(&["--user", "alice", "read", dm]).ok();
    assert!(read.contains("from the second account"), "{read}");
    assert!(b(&["--user", "bob", "read", group.trim()])
        .ok()
        .contains("in bob's group"));
    assert!(a(&["--user", "alice", "chats"]).ok().contains(group.trim()));
    let doctor = b(&["doctor"]);
    assert_eq!(doctor.code(), 0, "{doctor:?}");
}
