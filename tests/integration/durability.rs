//! A new folder's entry is durable before anything in it is acknowledged: every folder the
//! core creates has its parent fsynced before the first write under it. Checked by tracing
//! the real CLI's system calls with strace.

use std::path::Path;
use std::process::Command;

use umer_chat_tests::support::{cli, cli_under, run, temp_dir};

/// Runs the CLI under `strace -f -y` and returns the traced calls.
fn traced(data: &Path, config: &Path, args: &[&str]) -> Vec<String> {
    let mut strace = Command::new("strace");
    strace.args([
        "-f",
        "-y",
        "-qq",
        "-e",
        "trace=mkdir,mkdirat,fsync,fdatasync,write",
    ]);
    let mut cmd = cli_under(strace, data, config);
    cmd.args(args);
    let out = run(&mut cmd);
    assert!(out.status.success(), "{args:?}: {out:?}");
    out.stderr.lines().map(str::to_string).collect()
}

/// Each folder made (`mkdir(...) = 0`) must have its parent fsynced before the next write
/// to a file in the data folder.
fn assert_new_folders_are_durable(data: &Path, calls: &[String]) {
    let in_data = format!("<{}/", data.display());
    let mut made = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let Some(rest) = call.split("mkdir(\"").nth(1) else {
            continue;
        };
        if !call.trim_end().ends_with("= 0") {
            continue;
        }
        let path = rest.split('"').next().unwrap();
        let parent = Path::new(path)
            .parent()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let synced = format!("<{parent}>)");
        let first_write = calls[i..]
            .iter()
            .position(|c| c.contains("write(") && c.contains(&in_data))
            .map_or(calls.len(), |p| p + i);
        assert!(
            calls[i..first_write]
                .iter()
                .any(|c| c.contains("fsync(") && c.contains(&synced)),
            "{path} was made, but {parent} was not fsynced before the next write:\n{}",
            calls.join("\n")
        );
        made.push(path.to_string());
    }
    assert!(
        !made.is_empty(),
        "no folder was made:\n{}",
        calls.join("\n")
    );
}

#[test]
fn new_folders_are_fsynced_up_to_the_data_folder() {
    if Command::new("strace").arg("-V").output().is_err() {
        eprintln!("skipped: strace is not installed (scripts/install-deps installs it)");
        return;
    }
    let data = temp_dir();
    let config = temp_dir();
    let ok = |args: &[&str]| run(cli(data.path(), config.path()).args(args)).ok();
    ok(&["signup", "alice"]);
    ok(&["signup", "bob"]);
    // A new chat's folder, then its first message's log and month folders.
    let calls = traced(
        data.path(),
        config.path(),
        &["--user", "alice", "dm", "bob"],
    );
    assert_new_folders_are_durable(data.path(), &calls);
    let dm = ok(&["--user", "alice", "dm", "bob"]);
    let calls = traced(
        data.path(),
        config.path(),
        &["--user", "alice", "send", dm.trim(), "first"],
    );
    assert_new_folders_are_durable(data.path(), &calls);
}
