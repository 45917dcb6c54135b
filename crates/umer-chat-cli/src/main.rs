//! `umer-chat-cli`: Umer Chat from a terminal, on the same core and data folder as the app.
//!
//! Exit codes: 0 success; 1 a user error (one line on stderr saying what to do);
//! 2 a usage error (from clap).

mod server;
mod watch;

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;
use umer_chat_core::content::{Content, Target};
use umer_chat_core::display;
use umer_chat_core::groups::ChangeLine;
use umer_chat_core::membership::{Change, GroupName};
use umer_chat_core::timeline::{MessageView, Quoted};
use umer_chat_core::{config, Error, Event, LocalConfig, PhotoSize, Store, UserKey, PAGE_SIZE};

#[derive(Parser)]
#[command(
    name = "umer-chat-cli",
    version,
    about = "Umer Chat on the command line"
)]
struct Cli {
    /// The data folder (default: the folder the app uses).
    #[arg(long, global = true, env = config::DATA_DIR_ENV, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Act as this user; the password comes from UMER_CHAT_PASSWORD or the first line of stdin.
    #[arg(long, global = true, value_name = "NAME")]
    user: Option<String>,
    /// Do not ask a local Syncthing to rescan what this run writes (it is asked by default
    /// when the data folder is in one of its folders, unless the app's setting is off).
    /// The env var takes 1/0, true/false, yes/no, on/off.
    #[arg(
        long,
        global = true,
        env = "UMER_CHAT_NO_SYNCTHING_RESCAN",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    no_syncthing_rescan: bool,
    /// Keep the data folder in step with the server at URL (https://, or http:// on this
    /// machine): every command syncs first, and sends what it wrote. The folder is then
    /// this device's own copy of its chats on the server.
    #[arg(long, global = true, env = "UMER_CHAT_SERVER", value_name = "URL")]
    server: Option<String>,
    /// Allow a plain http:// server that is not on this machine (anyone on the network
    /// could then read the session, though not the messages).
    #[arg(long, global = true)]
    allow_plain_http: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account (password from UMER_CHAT_PASSWORD or stdin).
    Signup { name: String },
    /// List every user.
    Users,
    /// List your chats, newest activity first (JSON lines).
    Chats,
    /// Open (or create) the DM with OTHER; prints its chat id.
    Dm { other: String },
    /// Create a group (`group create NAME MEMBER…`, or `group NAME MEMBER…`) and print its
    /// chat id; or show or change one (`group info|add|remove|leave|rename|admin|unadmin`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Group {
        #[command(subcommand)]
        change: Option<GroupCommand>,
        #[arg(required = true)]
        name: Option<String>,
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Send TEXT and/or an image; with neither, each stdin line is one message.
    Send {
        chat: String,
        text: Option<String>,
        #[arg(long, value_name = "PATH")]
        image: Option<PathBuf>,
        /// Keep the photo's full size (metadata is removed either way; without this, the
        /// long side is scaled to 2560 pixels).
        #[arg(long, requires = "image")]
        original: bool,
    },
    /// Answer message ID (its `id`, or `sender/id`) with TEXT.
    Reply {
        chat: String,
        id: String,
        text: String,
    },
    /// Replace the text of your message ID with TEXT.
    Edit {
        chat: String,
        id: String,
        text: String,
    },
    /// Delete message ID for everyone (yours; in a group you are an admin of, anyone's).
    Delete { chat: String, id: String },
    /// Hide message ID on this device only ("delete for me"); the others still see it.
    Hide { chat: String, id: String },
    /// React to message ID with EMOJI.
    React {
        chat: String,
        id: String,
        emoji: String,
    },
    /// Take back your reaction EMOJI to message ID.
    Unreact {
        chat: String,
        id: String,
        emoji: String,
    },
    /// Write the chat, decrypted, as a zip (chat.html, messages.json, chat.txt, media/):
    /// anyone with the file can read it.
    Export {
        chat: String,
        #[arg(long, value_name = "FILE.zip")]
        out: PathBuf,
    },
    /// Print messages oldest first, as they are now (edits, deletes, reactions applied),
    /// one JSON object per line.
    Read {
        chat: String,
        #[arg(long, value_name = "N")]
        last: Option<usize>,
    },
    /// Print new messages as they arrive, one JSON object per line (as `read`), until
    /// stopped: in CHAT, or in every chat you are in (new ones included).
    Watch { chat: Option<String> },
    /// Search your chats, newest first (JSON lines).
    Search { query: String },
    /// List every file or line that readers skip, and why; with --user, also the events in
    /// your chats that the rules ignore (an edit of someone else's message…). Exits 1 if
    /// there is any.
    Doctor,
    /// Check every signature in the folder; list what fails and whose keys changed since
    /// this device first saw them. Exits 1 if there is any.
    Verify,
    /// Show USER's key fingerprint and the safety number to compare with them (JSON).
    Fingerprint { other: String },
    /// Accept USER's keys after a change: the ones with FINGERPRINT (as `fingerprint USER`
    /// printed it, after you compared safety numbers); refused if the record shows other
    /// keys by now. With --verified, also mark them as checked in person on this device.
    Trust {
        other: String,
        #[arg(long, value_name = "FINGERPRINT")]
        fingerprint: String,
        #[arg(long)]
        verified: bool,
    },
    /// Change your password (current one as usual; the new one from UMER_CHAT_NEW_PASSWORD
    /// or the next line of stdin). Your keys, chats and messages stay as they are.
    Passwd,
    /// Set a new password for NAME with the recovery key (from UMER_CHAT_RECOVERY_KEY or the
    /// first line of stdin; the new password from UMER_CHAT_NEW_PASSWORD or the next line).
    Recover { name: String },
    /// Show your recovery key again (needs your password).
    RecoveryKey,
    /// With --server: sync the data folder with the server now; with --watch, stay
    /// connected and keep it in step (new messages arrive as they are sent) until stopped.
    Sync {
        #[arg(long)]
        watch: bool,
    },
}

#[derive(Subcommand)]
enum GroupCommand {
    /// Create a group with MEMBERS; prints its chat id.
    Create {
        name: String,
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// The group as this device resolves it (JSON): name, members, admins, and the
    /// operations the rules dropped or that wait for one not here yet.
    Info { chat: String },
    /// Add MEMBER to the group (admins only). They read from now on, not the history before.
    Add { chat: String, member: String },
    /// Remove MEMBER from the group (admins only; never its creator). What is sent from now
    /// on uses a key they do not hold.
    Remove { chat: String, member: String },
    /// Leave the group.
    Leave { chat: String },
    /// Rename the group (admins only).
    Rename { chat: String, name: String },
    /// Make MEMBER an admin (admins only).
    Admin { chat: String, member: String },
    /// Take MEMBER's admin rights (admins only; never the creator's).
    Unadmin { chat: String, member: String },
}

/// `group …`: create a group, show one, or change it as `me`.
fn group(
    store: &Store,
    me: &UserKey,
    command: GroupCommand,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let user = |name: &str| store.get_user(name).map(|u| u.key);
    let (chat, change) = match command {
        GroupCommand::Create { name, members } => {
            let members: Vec<&str> = members.iter().map(String::as_str).collect();
            writeln!(out, "{}", store.create_group_chat(me, &name, &members)?.id).ok();
            return Ok(());
        }
        GroupCommand::Info { chat } => {
            let group = store.group_membership(me, &chat)?;
            let state = group.state();
            let names = |keys: &std::collections::BTreeSet<UserKey>| -> Vec<String> {
                keys.iter().map(|k| k.as_str().to_string()).collect()
            };
            let info = json!({
                "id": chat,
                "name": group.name,
                "creator": state.creator,
                "members": names(&state.members),
                "admins": names(&state.admins),
                "operations": group.ops.len(),
                "dropped": group.resolution.dropped.iter().map(|(id, why)| json!({ "id": id, "why": format!("{why:?}") })).collect::<Vec<_>>(),
                "waiting": group.resolution.waiting,
                "skipped": group.skipped.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            });
            writeln!(out, "{info}").ok();
            return Ok(());
        }
        GroupCommand::Add { chat, member: u } => (chat, Change::Add { user: user(&u)? }),
        GroupCommand::Remove { chat, member: u } => (chat, Change::Remove { user: user(&u)? }),
        GroupCommand::Leave { chat } => (chat, Change::Leave),
        GroupCommand::Rename { chat, name } => (
            chat,
            Change::Rename {
                name: GroupName::Plain(name),
            },
        ),
        GroupCommand::Admin { chat, member: u } => (chat, Change::MakeAdmin { user: user(&u)? }),
        GroupCommand::Unadmin { chat, member: u } => {
            (chat, Change::RemoveAdmin { user: user(&u)? })
        }
    };
    writeln!(out, "{}", store.change_group(me, &chat, change)?).ok();
    Ok(())
}

/// A failure that ends the run with exit code 1.
struct Failure(String);

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let config = LocalConfig::load(&LocalConfig::default_dir()?)?;
    // `--data-dir` also takes $UMER_CHAT_DATA_DIR (clap's `env`).
    let data_dir = match (cli.data_dir, config.chosen_data_dir()) {
        (Some(dir), _) => dir,
        (None, Some(dir)) => dir.to_path_buf(),
        (None, None) => {
            // The default folder, as the app's: old data beside WebKit's files moves first.
            let (dir, moved) = config::open_default_data_dir()?;
            if let Some(notice) = moved.notice(&dir) {
                eprintln!("warning: {notice}");
            }
            dir
        }
    };
    let store = Store::open(&data_dir, config.device_id())?;
    store.set_syncthing_rescan(config.syncthing_rescan() && !cli.no_syncthing_rescan);
    // Keys pinned on first sight live in local config, shared with the app on this device.
    store.use_pin_file(LocalConfig::default_dir()?.join(config::PIN_FILE))?;
    store.keep_group_changes_in(LocalConfig::default_dir()?.join(config::KEPT_GROUPS_DIR));
    // A damaged list of hidden messages hides nothing; it never stops the CLI.
    if let Err(e) = store.use_hidden_file(LocalConfig::default_dir()?.join(config::HIDDEN_FILE)) {
        eprintln!("warning: {e}; no message is hidden on this device until it is fixed");
    }
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    let on_server = match &cli.server {
        Some(url) => Some(std::cell::RefCell::new(server::OnServer::new(
            umer_chat_sync::check_url(url, cli.allow_plain_http)?,
            &LocalConfig::default_dir()?,
        ))),
        None => None,
    };
    let sign_in = |stdin: &mut dyn BufRead| -> Result<UserKey, Failure> {
        let name = cli.user.as_deref().ok_or_else(|| {
            Failure("this command needs --user NAME (and the password on stdin or in UMER_CHAT_PASSWORD)".into())
        })?;
        let password = read_password(stdin)?;
        let user = match &on_server {
            Some(on_server) => on_server.borrow_mut().sign_in(&store, name, &password)?,
            None => store.verify_user(name, &password)?,
        };
        if let Some(recovery) = store.new_recovery_key(&user.key) {
            eprintln!("{}", recovery_notice(&recovery));
        }
        Ok(user.key)
    };
    match cli.command {
        Command::Signup { name } => {
            let password = read_password(&mut stdin)?;
            let (user, recovery) = match &on_server {
                Some(on_server) => {
                    let (user, recovery) =
                        on_server.borrow_mut().sign_up(&store, &name, &password)?;
                    (user, Some(recovery))
                }
                None => {
                    let user = store.create_user(&name, &password)?;
                    let recovery = store.new_recovery_key(&user.key);
                    (user, recovery)
                }
            };
            writeln!(out, "{}", user.name).ok();
            if let Some(recovery) = recovery {
                eprintln!("{}", recovery_notice(&recovery));
            }
        }
        Command::Users => {
            for user in store.list_users()? {
                writeln!(out, "{}", user.name).ok();
            }
        }
        Command::Chats => {
            let me = sign_in(&mut stdin)?;
            for summary in store.list_user_chats(&me)? {
                let chat = &summary.chat;
                let title = display::chat_title(chat, &me, |k| store.display_name(k));
                let line = json!({
                    "id": chat.id,
                    "kind": chat.kind,
                    "title": title,
                    "members": chat.current_members(),
                    "last_activity": summary.last_activity(),
                    "unread": summary.unread,
                    "key_changes": summary.key_changes,
                    "preview": summary.last.as_ref().map(|last| {
                        display::chat_preview(last, &store.display_name(&last.sender))
                    }),
                });
                writeln!(out, "{line}").ok();
            }
        }
        Command::Dm { other } => {
            let me = sign_in(&mut stdin)?;
            writeln!(out, "{}", store.create_private_chat(&me, &other)?.id).ok();
        }
        Command::Group {
            change,
            name,
            members,
        } => {
            let me = sign_in(&mut stdin)?;
            let change = match change {
                Some(change) => change,
                None => GroupCommand::Create {
                    name: name.unwrap_or_default(),
                    members,
                },
            };
            group(&store, &me, change, &mut out)?;
        }
        Command::Send {
            chat,
            text,
            image,
            original,
        } => {
            let me = sign_in(&mut stdin)?;
            if text.is_none() && image.is_none() {
                // One process, many messages: each line is acknowledged once it is on disk.
                for line in stdin.lines() {
                    let line = line.map_err(|e| Failure(format!("cannot read stdin: {e}")))?;
                    let event = store.append_message(&me, &chat, Some(&line), None)?;
                    writeln!(out, "{}", sent_json(&event)).ok();
                }
            } else {
                let image = match image {
                    Some(path) => {
                        let bytes = std::fs::read(&path).map_err(|e| {
                            Failure(format!("cannot read image {}: {e}", path.display()))
                        })?;
                        let size = if original {
                            PhotoSize::Original
                        } else {
                            PhotoSize::Scaled
                        };
                        Some(store.save_image_sized(&me, &chat, &bytes, size)?)
                    }
                    None => None,
                };
                let event = store.append_message(&me, &chat, text.as_deref(), image.as_deref())?;
                writeln!(out, "{}", sent_json(&event)).ok();
            }
        }
        Command::Watch { chat } => {
            let me = sign_in(&mut stdin)?;
            watch::watch(&store, &me, chat.as_deref(), &mut out)?;
        }
        Command::Read { chat, last } => {
            let me = sign_in(&mut stdin)?;
            let mut from_start = true;
            let messages = match last {
                Some(n) => {
                    let mut page = store.get_chat(&me, &chat)?.page;
                    // Page backwards until we have N or reach the start.
                    let mut messages = page.messages;
                    while messages.len() < n {
                        let Some(before) = page.older.take() else {
                            break;
                        };
                        page = store.older_messages(
                            &me,
                            &chat,
                            &before,
                            PAGE_SIZE.max(n - messages.len()),
                        )?;
                        page.messages.append(&mut messages);
                        messages = std::mem::take(&mut page.messages);
                    }
                    let excess = messages.len().saturating_sub(n);
                    from_start = page.older.is_none() && excess == 0;
                    messages.drain(..excess);
                    messages
                }
                None => store.all_messages(&me, &chat)?,
            };
            // A group's changes go among its messages by time, as the app shows them;
            // one older than every message shown only when the history's start is.
            let oldest = messages.first().map(|m| m.ts);
            let mut changes = store
                .group_changes(&me, &chat)?
                .into_iter()
                .filter(|c| from_start || oldest.is_some_and(|ts| c.ts >= ts))
                .peekable();
            for event in messages {
                while let Some(change) = changes.next_if(|c| c.ts < event.ts) {
                    writeln!(out, "{}", change_json(&chat, &change)).ok();
                }
                writeln!(out, "{}", message_json(&event)).ok();
            }
            for change in changes {
                writeln!(out, "{}", change_json(&chat, &change)).ok();
            }
        }
        Command::Reply { chat, id, text } => {
            let me = sign_in(&mut stdin)?;
            let reply_to = Some(target_of(&store, &me, &chat, &id)?);
            let content = Content::Message {
                text: Some(text),
                image: None,
                size: None,
                reply_to,
            };
            let event = store.append_content(&me, &chat, content)?;
            writeln!(out, "{}", sent_json(&event)).ok();
        }
        Command::Edit { chat, id, text } => {
            let me = sign_in(&mut stdin)?;
            let target = target_of(&store, &me, &chat, &id)?;
            let event = store.append_content(&me, &chat, Content::Edit { target, text })?;
            writeln!(out, "{}", json!({ "id": event.id })).ok();
        }
        Command::Delete { chat, id } => {
            let me = sign_in(&mut stdin)?;
            let target = target_of(&store, &me, &chat, &id)?;
            let event = store.append_content(&me, &chat, Content::Delete { target })?;
            writeln!(out, "{}", json!({ "id": event.id })).ok();
        }
        Command::Hide { chat, id } => {
            let me = sign_in(&mut stdin)?;
            let target = target_of(&store, &me, &chat, &id)?;
            store.hide_for_me(&me, &chat, &target)?;
        }
        Command::React { chat, id, emoji } => {
            let me = sign_in(&mut stdin)?;
            let target = target_of(&store, &me, &chat, &id)?;
            let event = store.append_content(&me, &chat, Content::React { target, emoji })?;
            writeln!(out, "{}", json!({ "id": event.id })).ok();
        }
        Command::Unreact { chat, id, emoji } => {
            let me = sign_in(&mut stdin)?;
            let target = target_of(&store, &me, &chat, &id)?;
            let event = store.append_content(&me, &chat, Content::Unreact { target, emoji })?;
            writeln!(out, "{}", json!({ "id": event.id })).ok();
        }
        Command::Export { chat, out: file } => {
            let me = sign_in(&mut stdin)?;
            eprintln!(
                "warning: the export is not encrypted; anyone with {} can read the chat",
                file.display()
            );
            let report = store.export_chat(&me, &chat, &file)?;
            let line = json!({
                "path": file,
                "messages": report.messages,
                "photos": report.photos,
                "missing_photos": report.missing_photos,
                "bytes": report.bytes,
            });
            writeln!(out, "{line}").ok();
        }
        Command::Search { query } => {
            let me = sign_in(&mut stdin)?;
            for hit in store.search(&me, &query, 1000)? {
                writeln!(out, "{}", message_json(&hit.message)).ok();
            }
        }
        Command::Doctor => {
            let skipped = store.doctor()?;
            for skip in &skipped {
                writeln!(out, "{skip}").ok();
            }
            // Signed in, the sealed events are opened too: what the rules ignore is named.
            let mut ignored = Vec::new();
            let mut group_problems = Vec::new();
            if cli.user.is_some() {
                let me = sign_in(&mut stdin)?;
                ignored = store.ignored_events(&me)?;
                for (chat, event) in &ignored {
                    writeln!(
                        out,
                        "chats/{chat}: event {} of {} ignored: {}",
                        event.key.id, event.sender, event.reason
                    )
                    .ok();
                }
                group_problems = store.group_problems(&me)?;
                for (chat, problem) in &group_problems {
                    writeln!(out, "chats/{chat}: {problem}").ok();
                }
            }
            if !skipped.is_empty() || !ignored.is_empty() || !group_problems.is_empty() {
                eprintln!(
                    "error: {} file(s) or line(s) were skipped, {} event(s) ignored and {} group change(s) or line(s) left out; they are left untouched for you to inspect",
                    skipped.len(),
                    ignored.len(),
                    group_problems.len()
                );
                return Ok(ExitCode::from(1));
            }
        }
        Command::Verify => {
            let report = store.verify_folder()?;
            for failure in &report.failures {
                writeln!(out, "{failure}").ok();
            }
            for user in &report.changed_keys {
                writeln!(
                    out,
                    "{}: keys differ from the ones this device first saw; compare safety numbers (`fingerprint {user}`), then `trust {user} --fingerprint FINGERPRINT`",
                    store.display_name(user)
                )
                .ok();
            }
            if report.pins_full {
                writeln!(
                    out,
                    "this device keeps the keys of at most {} people, and a bounded amount of group records, per folder, and holds that many: whoever it meets from now on is marked and gets nothing encrypted to them (someone may be filling the folder with accounts or groups)",
                    umer_chat_core::keys::MAX_PINNED_USERS,
                )
                .ok();
            }
            let problems =
                report.failures.len() + report.changed_keys.len() + usize::from(report.pins_full);
            if problems > 0 {
                eprintln!("error: {problems} signature problem(s); nothing was changed");
                return Ok(ExitCode::from(1));
            }
        }
        Command::Fingerprint { other } => {
            let me = sign_in(&mut stdin)?;
            writeln!(out, "{}", contact_json(&store.contact_keys(&me, &other)?)).ok();
        }
        Command::Trust {
            other,
            fingerprint,
            verified,
        } => {
            let me = sign_in(&mut stdin)?;
            let mut contact = store.trust_keys(&me, &other, &fingerprint)?;
            if verified {
                contact = store.set_verified(&me, &other, true, Some(&fingerprint))?;
            }
            writeln!(out, "{}", contact_json(&contact)).ok();
        }
        Command::Passwd => {
            let name = cli.user.as_deref().ok_or_else(|| {
                Failure("passwd needs --user NAME (the current password on stdin or in UMER_CHAT_PASSWORD)".into())
            })?;
            let old = read_password(&mut stdin)?;
            let new = read_secret(&mut stdin, "UMER_CHAT_NEW_PASSWORD", "new password")?;
            match &on_server {
                // The record and the server's sign-in key change together, or neither does.
                Some(on_server) => {
                    let mut on_server = on_server.borrow_mut();
                    on_server.sign_in(&store, name, &old)?;
                    on_server.change_password(&store, name, &old, &new)?;
                }
                None => store.change_password(name, &old, &new)?,
            }
            eprintln!("Password changed. Your keys, chats and recovery key are unchanged.");
        }
        Command::Recover { name } => {
            let recovery = read_secret(&mut stdin, "UMER_CHAT_RECOVERY_KEY", "recovery key")?;
            let new = read_secret(&mut stdin, "UMER_CHAT_NEW_PASSWORD", "new password")?;
            let user = match &on_server {
                Some(on_server) => on_server
                    .borrow_mut()
                    .recover(&store, &name, &recovery, &new)?,
                None => store.recover_account(&name, &recovery, &new)?,
            };
            writeln!(out, "{}", user.name).ok();
            eprintln!("Password set. Sign in with the new password from now on.");
        }
        Command::RecoveryKey => {
            let name = cli.user.as_deref().ok_or_else(|| {
                Failure("recovery-key needs --user NAME (and the password)".into())
            })?;
            let password = read_password(&mut stdin)?;
            let me = store.get_user(name)?.key;
            writeln!(out, "{}", store.recovery_key(&me, &password)?).ok();
        }
        Command::Sync { watch } => {
            let Some(on_server) = &on_server else {
                return Err(Failure("sync needs --server URL".into()));
            };
            sign_in(&mut stdin)?;
            on_server.borrow_mut().run_sync(&store, watch, &mut out)?;
        }
    }
    if let Some(on_server) = &on_server {
        on_server.borrow_mut().finish(&store);
    }
    Ok(ExitCode::SUCCESS)
}

fn recovery_notice(recovery: &str) -> String {
    format!(
        "Your recovery key (shown once; keep it somewhere safe, it resets a forgotten password):\n{recovery}"
    )
}

fn contact_json(contact: &umer_chat_core::ContactKeys) -> serde_json::Value {
    json!({
        "user": contact.user,
        "name": contact.name,
        "fingerprint": contact.fingerprint,
        "safety_number": contact.safety_number,
        "changed": contact.changed,
        "verified": contact.verified,
    })
}

/// The message `id` (or `sender/id`) names in `chat`.
fn target_of(store: &Store, me: &UserKey, chat: &str, id: &str) -> Result<Target, Failure> {
    let (sender, id) = match id.split_once('/') {
        Some((sender, id)) => (Some(UserKey::parse(sender)?), id),
        None => (None, id),
    };
    store
        .all_messages(me, chat)?
        .into_iter()
        .find(|m| m.id == id && sender.as_ref().is_none_or(|s| *s == m.sender))
        .map(|m| m.target())
        .ok_or_else(|| Failure(format!("no message {id} in chat {chat}")))
}

fn sent_json(event: &Event) -> serde_json::Value {
    MessageView::lone(event).map_or(serde_json::Value::Null, |view| message_json(&view))
}

/// A line of a group's timeline about a change to it, as `read` prints it among messages.
fn change_json(chat: &str, change: &ChangeLine) -> serde_json::Value {
    json!({ "change": change.id, "chat": chat, "ts": change.ts, "text": change.text })
}

fn message_json(message: &MessageView) -> serde_json::Value {
    let reply_to = message.reply_to.as_ref().map(|quote| {
        let (state, text) = match &quote.state {
            Quoted::Shown { text, .. } => ("shown", text.clone()),
            Quoted::Deleted => ("deleted", None),
            Quoted::Unknown => ("unknown", None),
        };
        json!({ "id": quote.target.id, "sender": quote.target.sender, "state": state, "text": text })
    });
    let reactions: Vec<_> = message
        .reactions
        .iter()
        .map(|r| json!({ "emoji": r.emoji, "users": r.users }))
        .collect();
    let history: Vec<_> = message
        .history
        .iter()
        .map(|r| json!({ "ts": r.ts, "text": r.text }))
        .collect();
    json!({
        "id": message.id,
        "chat": message.chat,
        "sender": message.sender,
        "ts": message.ts,
        "text": message.text,
        "image": message.image,
        "trust": trust_name(message.trust),
        "preview": display::message_preview(message),
        "edited": message.edited(),
        "deleted": message.deleted,
        "reply_to": reply_to,
        "reactions": reactions,
        "history": history,
    })
}

fn trust_name(trust: umer_chat_core::Trust) -> &'static str {
    match trust {
        umer_chat_core::Trust::Verified => "verified",
        umer_chat_core::Trust::KeyChanged => "key_changed",
        umer_chat_core::Trust::Unsigned => "unsigned",
    }
}

fn read_password(stdin: &mut dyn BufRead) -> Result<String, Failure> {
    read_secret(stdin, "UMER_CHAT_PASSWORD", "password")
}

/// A secret from the environment variable `var`, else the next line of stdin.
fn read_secret(stdin: &mut dyn BufRead, var: &str, what: &str) -> Result<String, Failure> {
    if let Ok(secret) = std::env::var(var) {
        return Ok(secret);
    }
    let mut line = String::new();
    stdin
        .read_line(&mut line)
        .map_err(|e| Failure(format!("cannot read the {what} from stdin: {e}")))?;
    let secret = line.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(Failure(format!(
            "no {what}: set {var} or pass it as the next line of stdin"
        )));
    }
    Ok(secret)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The only test in this binary: it sets process-wide variables.
    #[test]
    fn the_default_folder_is_chat_data_and_old_data_moves_there() {
        let home = std::env::temp_dir().join(format!("umer-chat-cli-{}", std::process::id()));
        let app_data = home.join("share").join(config::APP_ID);
        // An older version's data, beside a WebKit file.
        let old = Store::open(&app_data, umer_chat_core::DeviceId::random()).unwrap();
        old.create_user("alice", "correct horse").unwrap();
        std::fs::write(app_data.join("hsts-storage.sqlite"), b"webkit").unwrap();
        std::env::set_var("XDG_DATA_HOME", home.join("share"));
        std::env::set_var(config::CONFIG_DIR_ENV, home.join("config"));
        std::env::remove_var(config::DATA_DIR_ENV);

        let done = run(Cli::parse_from(["umer-chat-cli", "users"])).map_err(|f| f.0);
        assert_eq!(
            format!("{done:?}"),
            format!("{:?}", Ok::<_, String>(ExitCode::SUCCESS))
        );
        let new_root = app_data.join(config::DATA_SUBDIR);
        assert_eq!(config::default_data_dir().unwrap(), new_root);
        assert!(new_root.join("users/alice.json").is_file());
        assert!(!app_data.join("users").exists());
        assert!(app_data.join("hsts-storage.sqlite").is_file());
        std::fs::remove_dir_all(&home).unwrap();
    }
}
