//! Hostile and broken input: each case gets its own, specific error, or its file is listed by
//! `doctor` with the expected reason, is left in place, and the good data around it loads.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{ImageFormat, Rgb, RgbImage};
use tempfile::TempDir;
use umer_chat_core::content::Content;
use umer_chat_core::timeline::MessageView;
use umer_chat_core::{
    ChatId, ChatKind, DeviceId, Error, Event, EventKey, LogCursor, SkipReason, Skipped, Store,
    MAX_IMAGE_BYTES, MAX_TEXT_CHARS,
};
use umer_chat_tests::support::images::crc32;
use umer_chat_tests::support::{
    cli, copy_tree, doctor, files_under, key, open_store, run, sign_in, sign_up, temp_dir, PASSWORD,
};

// ---------------------------------------------------------------------------------------
// Accounts

type ErrorCheck = fn(&Error) -> bool;

#[test]
fn hostile_usernames_are_refused_with_the_rule_they_break() {
    let dir = temp_dir();
    let store = open_store(dir.path());
    sign_up(&store, &["alice"]);
    let before = files_under(dir.path());
    let long = "a".repeat(33);
    let cases: [(&str, ErrorCheck); 14] = [
        ("../x", |e| {
            matches!(e, Error::UsernameCharacter { bad: '/', .. })
        }),
        ("a/b", |e| {
            matches!(e, Error::UsernameCharacter { bad: '/', .. })
        }),
        ("a\\b", |e| {
            matches!(e, Error::UsernameCharacter { bad: '\\', .. })
        }),
        (".", |e| matches!(e, Error::UsernameDots { .. })),
        ("..", |e| matches!(e, Error::UsernameDots { .. })),
        (".hidden", |e| matches!(e, Error::UsernameDots { .. })),
        ("CON", |e| matches!(e, Error::ReservedUsername { .. })),
        ("nul", |e| matches!(e, Error::ReservedUsername { .. })),
        ("com1.txt", |e| matches!(e, Error::ReservedUsername { .. })),
        ("", |e| matches!(e, Error::UsernameLength { len: 0, .. })),
        (&long, |e| {
            matches!(e, Error::UsernameLength { len: 33, .. })
        }),
        ("a b", |e| {
            matches!(e, Error::UsernameCharacter { bad: ' ', .. })
        }),
        ("Alice", |e| matches!(e, Error::UsernameTaken { .. })),
        ("a\0b", |e| {
            matches!(e, Error::UsernameCharacter { bad: '\0', .. })
        }),
    ];
    for (name, expected) in cases {
        let err = store.create_user(name, PASSWORD).unwrap_err();
        assert!(expected(&err), "{name:?} gave {err:?}");
        if name != "Alice" {
            // Refused as a name to log in with too, before any file is looked up.
            assert_eq!(
                store.verify_user(name, PASSWORD).unwrap_err().code(),
                err.code(),
                "{name:?}"
            );
        }
    }
    assert_eq!(
        files_under(dir.path()),
        before,
        "no file was written anywhere"
    );
    assert!(!dir.path().parent().unwrap().join("x.json").exists());
    assert_eq!(store.list_users().unwrap().len(), 1);
}

#[test]
fn password_and_login_errors() {
    let dir = temp_dir();
    let store = open_store(dir.path());
    sign_up(&store, &["alice"]);
    assert!(matches!(
        store.create_user("bob", "1234567"),
        Err(Error::PasswordTooShort { min: 8 })
    ));
    assert!(!store.user_exists("bob").unwrap());
    assert!(matches!(
        store.verify_user("nobody", PASSWORD),
        Err(Error::UnknownUser { .. })
    ));
    assert!(matches!(
        store.verify_user("alice", "correct horse batterY"),
        Err(Error::WrongPassword { .. })
    ));
    store.verify_user("ALICE", PASSWORD).unwrap();
}

// ---------------------------------------------------------------------------------------
// Chats and messages

/// Keeps its temp folder alive as long as the store is used.
struct Chats {
    _dir: TempDir,
    store: Store,
    group: String,
}

fn chats() -> Chats {
    let dir = temp_dir();
    let store = open_store(dir.path());
    sign_up(&store, &["alice", "bob", "mallory"]);
    let group = store
        .create_group_chat(&key("alice"), "friends", &["bob"])
        .unwrap()
        .id
        .to_string();
    Chats {
        _dir: dir,
        store,
        group,
    }
}

#[test]
fn chats_need_other_known_members_and_a_sensible_name() {
    let Chats { _dir, store, .. } = chats();
    let alice = key("alice");
    let code = |r: Result<_, Error>| r.map(|_| ()).unwrap_err().code();
    assert_eq!(
        code(store.create_private_chat(&alice, "Alice")),
        "invalid_argument"
    );
    assert_eq!(
        code(store.create_private_chat(&alice, "zed")),
        "unknown_user"
    );
    assert_eq!(
        code(store.create_group_chat(&alice, "solo", &[])),
        "invalid_argument"
    );
    assert_eq!(
        code(store.create_group_chat(&alice, "solo", &["alice", "ALICE"])),
        "invalid_argument"
    );
    assert!(matches!(
        store.create_group_chat(&alice, "team", &["bob", "zed"]),
        Err(Error::UnknownUser { name }) if name == "zed"
    ));
    assert_eq!(
        code(store.create_group_chat(&alice, "   ", &["bob"])),
        "invalid_argument"
    );
    assert_eq!(
        code(store.create_group_chat(&alice, &"n".repeat(65), &["bob"])),
        "invalid_argument"
    );
    store
        .create_group_chat(&alice, &"n".repeat(64), &["bob"])
        .unwrap();
    // Only the one valid group and the fixture's exist.
    assert_eq!(store.list_user_chats(&alice).unwrap().len(), 2);
}

#[test]
fn outsiders_can_neither_read_nor_write_a_chat() {
    let Chats { _dir, store, group } = chats();
    let mallory = key("mallory");
    store
        .append_message(&key("alice"), &group, Some("secret"), None)
        .unwrap();
    let not_member = |e: Error| matches!(e, Error::NotAMember { .. });
    assert!(not_member(store.get_chat(&mallory, &group).unwrap_err()));
    assert!(not_member(
        store.all_messages(&mallory, &group).unwrap_err()
    ));
    assert!(not_member(
        store
            .append_message(&mallory, &group, Some("let me in"), None)
            .unwrap_err()
    ));
    assert!(not_member(store.mark_read(&mallory, &group).unwrap_err()));
    assert!(store.search(&mallory, "secret", 10).unwrap().is_empty());
    assert!(store.list_user_chats(&mallory).unwrap().is_empty());
    assert_eq!(store.all_messages(&key("bob"), &group).unwrap().len(), 1);
}

#[test]
fn chat_ids_that_are_not_ids_or_not_there() {
    let Chats { _dir, store, .. } = chats();
    let alice = key("alice");
    for bad in [
        "../../etc",
        "dm-../../../etc/passwd",
        "hello-world",
        "",
        "G-0123",
    ] {
        assert!(
            matches!(store.get_chat(&alice, bad), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
        assert!(matches!(
            store.append_message(&alice, bad, Some("x"), None),
            Err(Error::InvalidArgument(_))
        ));
    }
    let unknown = "g-0123456789abcdef0123456789abcdef";
    assert!(matches!(
        store.get_chat(&alice, unknown),
        Err(Error::ChatNotFound { .. })
    ));
    assert!(matches!(
        store.append_message(&alice, unknown, Some("x"), None),
        Err(Error::ChatNotFound { .. })
    ));
}

#[test]
fn messages_need_content_within_limits() {
    let Chats { _dir, store, group } = chats();
    let alice = key("alice");
    for empty in [None, Some(""), Some("  \n\t ")] {
        assert!(matches!(
            store.append_message(&alice, &group, empty, None),
            Err(Error::EmptyMessage)
        ));
    }
    let too_long = "é".repeat(MAX_TEXT_CHARS + 1);
    assert!(matches!(
        store.append_message(&alice, &group, Some(&too_long), None),
        Err(Error::MessageTooLong {
            len: 10_001,
            max: 10_000
        })
    ));
    assert!(matches!(
        store.append_message(&alice, &group, None, Some("../../users/alice.json")),
        Err(Error::InvalidArgument(_))
    ));
    let missing = format!("{}.png", "0".repeat(64));
    assert!(matches!(
        store.append_message(&alice, &group, None, Some(&missing)),
        Err(Error::ImageNotFound { .. })
    ));
    assert!(store.all_messages(&alice, &group).unwrap().is_empty());
    // The longest message allowed goes through whole.
    let longest = "é".repeat(MAX_TEXT_CHARS);
    store
        .append_message(&alice, &group, Some(&longest), None)
        .unwrap();
    let read = store.all_messages(&key("bob"), &group).unwrap();
    assert_eq!(read[0].text.as_deref(), Some(longest.as_str()));
}

#[test]
fn invalid_cursors_are_refused() {
    let Chats { _dir, store, group } = chats();
    let alice = key("alice");
    let sent = store
        .append_message(&alice, &group, Some("hi"), None)
        .unwrap();
    let good = sent.key().to_cursor();
    for bad in [
        "",
        "not-a-cursor",
        "1.2.3",
        &good[..good.len() - 1],
        &format!("{good}.x"),
    ] {
        assert!(
            matches!(EventKey::from_cursor(bad), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
    let before = EventKey::from_cursor(&good).unwrap();
    assert!(store
        .older_messages(&alice, &group, &before, 50)
        .unwrap()
        .messages
        .is_empty());
    // Not base64; base64 of "not json"; nothing at all.
    for bad in ["%%%", "bm90IGpzb24", ""] {
        assert!(
            matches!(LogCursor::decode(bad), Err(Error::InvalidArgument(_))),
            "{bad:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Images

fn encode(format: ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 7 % 256) as u8,
            (y * 13 % 256) as u8,
            ((x ^ y) % 256) as u8,
        ])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A PNG whose header claims `width`×`height`, with a correct IHDR checksum.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    // A tiny IDAT (an empty zlib stream): decoders read the header up to the first one.
    let idat = b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01";
    png.extend_from_slice(&((idat.len() - 4) as u32).to_be_bytes());
    png.extend_from_slice(idat);
    png.extend_from_slice(&crc32(idat).to_be_bytes());
    png.extend_from_slice(&0u32.to_be_bytes());
    png.extend_from_slice(b"IEND");
    png.extend_from_slice(&crc32(b"IEND").to_be_bytes());
    png
}

/// The name format 2 gives an image file: the SHA-256 of its (sealed) bytes, `.enc`.
fn sealed_name_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    format!(
        "{}.enc",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[test]
fn images_are_checked_by_content_and_size() {
    let Chats { _dir, store, group } = chats();
    let alice = key("alice");
    let save = |bytes: &[u8]| store.save_image(&alice, &group, bytes);
    let unsupported = |bytes: &[u8]| matches!(save(bytes), Err(Error::UnsupportedImage { .. }));
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    assert!(unsupported(svg), "SVG");
    assert!(
        unsupported(b"just some text, saved as photo.png"),
        "text as .png"
    );
    let png = encode(ImageFormat::Png, 64, 64);
    assert!(unsupported(&png[..png.len() / 2]), "truncated PNG");
    assert!(unsupported(&png[..8]), "a PNG signature only");
    let huge = vec![0u8; 11 * 1024 * 1024];
    assert!(matches!(
        save(&huge),
        Err(Error::ImageTooLarge { len, max }) if len == 11 << 20 && max == MAX_IMAGE_BYTES
    ));
    assert!(matches!(
        save(&png_claiming(100_000, 100_000)),
        Err(Error::ImageDimensions {
            width: 100_000,
            height: 100_000,
            ..
        })
    ));
    assert_eq!(
        files_under(&store.root().join("images")),
        Vec::<PathBuf>::new(),
        "nothing refused was stored"
    );

    // Valid images of each accepted kind are stored encrypted for the chat, under the hash
    // of the stored bytes, and can be sent; members get them back with the type their
    // content says (a WebP without transparency is stored as a JPEG, see `prepare_image`).
    for (format, mime) in [
        (ImageFormat::Png, "image/png"),
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::Gif, "image/gif"),
        (ImageFormat::WebP, "image/jpeg"),
    ] {
        let bytes = encode(format, 40, 30);
        let name = save(&bytes).unwrap();
        let stored = fs::read(store.root().join("images").join(&name)).unwrap();
        assert_eq!(name, sealed_name_of(&stored), "named by its stored bytes");
        assert!(
            !stored.windows(32).any(|w| w == &bytes[..32]),
            "{name} holds the image encrypted, not as it is"
        );
        // Sealed with a fresh nonce each time: the same image saved again is another file.
        let again = save(&bytes).unwrap();
        assert_ne!(again, name);
        store
            .append_message(&alice, &group, None, Some(&name))
            .unwrap();
        // Sent images are encoded again without metadata: the same picture, not the same bytes.
        let sent = image::load_from_memory(&bytes).unwrap();
        for member in [&alice, &key("bob")] {
            let (got_mime, got) = store.image_bytes(member, &group, &name).unwrap();
            assert_eq!(got_mime, mime);
            let got = image::load_from_memory(&got).unwrap();
            assert_eq!((got.width(), got.height()), (sent.width(), sent.height()));
        }
        assert!(matches!(
            store.image_bytes(&key("mallory"), &group, &name),
            Err(Error::NotAMember { .. })
        ));
    }
    assert_eq!(store.all_messages(&key("bob"), &group).unwrap().len(), 4);
    assert_eq!(doctor(&store), vec![]);
}

// ---------------------------------------------------------------------------------------
// Damaged, foreign and misplaced files

/// A data folder with two users, a group with a few messages and an image, and their DM
/// with no messages yet; each file case works on its own copy.
struct Folder {
    dir: TempDir,
    store: Store,
    chat: String,
    dm: String,
    messages: Vec<MessageView>,
    log: PathBuf,
}

fn template() -> TempDir {
    let dir = temp_dir();
    let store = open_store(dir.path());
    sign_up(&store, &["alice", "bob"]);
    let chat = store
        .create_group_chat(&key("alice"), "friends", &["bob"])
        .unwrap()
        .id
        .to_string();
    store.create_private_chat(&key("alice"), "bob").unwrap();
    let image = store
        .save_image(&key("bob"), &chat, &encode(ImageFormat::Png, 8, 8))
        .unwrap();
    for (user, text) in [("alice", "one"), ("bob", "two"), ("alice", "three")] {
        store
            .append_message(&key(user), &chat, Some(text), None)
            .unwrap();
    }
    store
        .append_message(&key("bob"), &chat, None, Some(&image))
        .unwrap();
    dir
}

impl Folder {
    fn copy_of(template: &Path) -> Folder {
        let dir = temp_dir();
        copy_tree(template, dir.path());
        // Another device on the copy: the two sign in there.
        let store = open_store(dir.path());
        sign_in(&store, &["alice", "bob"]);
        let alice = key("alice");
        let chats = store.list_user_chats(&alice).unwrap();
        let id_of = |kind| {
            let summary = chats.iter().find(|c| c.chat.kind == kind).unwrap();
            summary.chat.id.to_string()
        };
        let (chat, dm) = (id_of(ChatKind::Group), id_of(ChatKind::Dm));
        let messages = store.all_messages(&alice, &chat).unwrap();
        let log = files_under(&dir.path().join("chats").join(&chat).join("log"))
            .into_iter()
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("alice.")
            })
            .unwrap();
        Folder {
            dir,
            store,
            chat,
            dm,
            messages,
            log,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `bytes` to `path` (creating folders), for a case to break something.
    fn put(&self, path: &Path, bytes: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    fn append(&self, path: &Path, bytes: &[u8]) {
        let mut all = fs::read(path).unwrap();
        all.extend_from_slice(bytes);
        fs::write(path, all).unwrap();
    }

    /// Alice's first message in the group.
    fn first_of_alice(&self) -> Event {
        let alice = key("alice");
        self.messages
            .iter()
            .find(|e| e.sender == alice)
            .unwrap()
            .to_event()
    }

    /// A genuine line, signed and sealed as its sender's app writes it, of a copy of
    /// Alice's first message changed by `edit` (its sender must be signed in), and the
    /// event as readers will see it.
    fn signed(&self, edit: impl FnOnce(&mut Event)) -> (Event, String) {
        let mut event = self.first_of_alice();
        event.content = Content::message(Some("odd one".into()), None);
        edit(&mut event);
        let (event, line) = self.store.event_line(&event).unwrap();
        (event, line + "\n")
    }

    /// [`Folder::signed`]'s line with its JSON changed by `edit`, as someone editing the
    /// file by hand would (the rewritten event no longer matches its id or signature).
    fn line(&self, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let (_, line) = self.signed(|_| {});
        let mut value: serde_json::Value = serde_json::from_str(&line).unwrap();
        edit(&mut value);
        value.to_string() + "\n"
    }

    /// [`Folder::signed`]'s line with the text of its `field` (`id` or `sig`) replaced,
    /// leaving the signed bytes as they are.
    fn with_field(&self, field: &str, new: &str) -> String {
        let (_, line) = self.signed(|_| {});
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        let old = parsed[field].as_str().unwrap();
        let edited = line.replacen(
            &format!("\"{field}\":\"{old}\""),
            &format!("\"{field}\":\"{new}\""),
            1,
        );
        assert_ne!(edited, line);
        edited
    }

    /// `doctor` lists exactly `bad` (at `line`) for `reason`; the file is still there,
    /// unchanged, after every reader has been at it; everything else still loads.
    fn assert_skipped(
        &self,
        bad: &Path,
        line: Option<usize>,
        reason: impl Fn(&SkipReason) -> bool,
    ) {
        let snapshot = || {
            let files = if bad.is_dir() {
                files_under(bad)
            } else {
                vec![bad.to_path_buf()]
            };
            files
                .into_iter()
                .map(|p| (fs::read(&p).unwrap(), p))
                .collect::<Vec<_>>()
        };
        let bytes = snapshot();
        let report = doctor(&self.store);
        assert!(
            matches!(report.as_slice(), [Skipped { path, line: l, reason: r }]
                if path == bad && *l == line && reason(r)),
            "{}: {report:#?}",
            bad.display()
        );
        self.assert_good_data_loads();
        assert_eq!(snapshot(), bytes, "{} was changed", bad.display());
        assert_eq!(doctor(&self.store), report, "the report is stable");
    }

    fn assert_good_data_loads(&self) {
        let names: Vec<String> = self
            .store
            .list_users()
            .unwrap()
            .into_iter()
            .map(|u| u.key.to_string())
            .collect();
        assert!(
            names.contains(&"alice".into()) && names.contains(&"bob".into()),
            "{names:?}"
        );
        let (alice, bob) = (key("alice"), key("bob"));
        assert_eq!(
            self.store.all_messages(&bob, &self.chat).unwrap(),
            self.messages
        );
        let page = self.store.get_chat(&alice, &self.chat).unwrap().page;
        assert_eq!(page.messages, self.messages);
        let chats = self.store.list_user_chats(&alice).unwrap();
        assert!(chats.iter().any(|c| c.chat.id.as_str() == self.chat));
        assert_eq!(self.store.search(&bob, "three", 10).unwrap().len(), 1);
        let image = self.messages.iter().find_map(|e| e.image.clone()).unwrap();
        self.store.image_bytes(&alice, &self.chat, &image).unwrap();
    }
}

/// A bad log line: its name, how to make it, and the reason `doctor` must give.
type LineCase = (
    &'static str,
    Box<dyn Fn(&Folder) -> String>,
    Box<dyn Fn(&SkipReason) -> bool>,
);

fn is_unparseable(r: &SkipReason) -> bool {
    matches!(r, SkipReason::Unparseable(_))
}

#[test]
fn damaged_or_foreign_user_files_are_skipped_and_kept() {
    let template = template();
    let eve = "users/eve.json";

    let f = Folder::copy_of(template.path());
    let alice_record = fs::read(f.path("users/alice.json")).unwrap();
    f.put(&f.path(eve), &alice_record[..alice_record.len() / 2]);
    f.assert_skipped(&f.path(eve), None, is_unparseable);
    assert!(matches!(
        f.store.verify_user("eve", PASSWORD),
        Err(Error::CorruptFile { path, .. }) if path == f.path(eve)
    ));
    assert_eq!(
        f.store.create_user("eve", PASSWORD).unwrap_err().code(),
        "corrupt_file",
        "a damaged record is never overwritten"
    );

    let f = Folder::copy_of(template.path());
    f.put(&f.path(eve), b"[1,2,3]");
    f.assert_skipped(&f.path(eve), None, is_unparseable);

    let f = Folder::copy_of(template.path());
    f.put(
        &f.path(eve),
        br#"{"format": 99, "username": "eve", "keys": ["new"]}"#,
    );
    f.assert_skipped(&f.path(eve), None, |r| *r == SkipReason::NewerFormat(99));
    assert!(matches!(
        f.store.verify_user("eve", PASSWORD),
        Err(Error::UnsupportedFormat { found: 99, .. })
    ));

    // A record of another user in Eve's file.
    let f = Folder::copy_of(template.path());
    f.put(&f.path(eve), &alice_record);
    f.assert_skipped(&f.path(eve), None, |r| {
        matches!(r, SkipReason::Misplaced(_))
    });

    // Alice's record with another name: the name is Eve's, but the keys still say they
    // are alice's, so nobody can sign in with them as Eve.
    let f = Folder::copy_of(template.path());
    let mut record: serde_json::Value = serde_json::from_slice(&alice_record).unwrap();
    record["username"] = "Eve".into();
    f.put(&f.path(eve), record.to_string().as_bytes());
    f.assert_skipped(&f.path(eve), None, |r| {
        matches!(r, SkipReason::BadSignature(_))
    });
    assert!(matches!(
        f.store.verify_user("eve", PASSWORD),
        Err(Error::CorruptFile { path, .. }) if path == f.path(eve)
    ));

    // Unknown fields from a newer build of the same format: still a user. Eve's record is
    // her own (signed up elsewhere, with keys of her own), with fields added by hand.
    let f = Folder::copy_of(template.path());
    let elsewhere = temp_dir();
    sign_up(&open_store(elsewhere.path()), &["Eve"]);
    let record = fs::read_to_string(elsewhere.path().join(eve)).unwrap();
    // Added as text: a rewrite through a JSON value would reorder the signed keys.
    let record = record.replacen(
        '{',
        r#"{"avatar": "🙂", "settings": { "theme": "dark" },"#,
        1,
    );
    f.put(&f.path(eve), record.as_bytes());
    assert_eq!(doctor(&f.store), vec![]);
    assert_eq!(
        f.store.verify_user("eve", PASSWORD).unwrap().name.as_str(),
        "Eve"
    );
    f.assert_good_data_loads();

    // Sync tools' temp files and conflict copies; the original record is the one used.
    for name in [
        ".syncthing.foo.tmp",
        "~syncthing~foo.tmp",
        "alice.sync-conflict-20250101-120000-ABCDEFG.json",
        "alice (Bob's conflicted copy 2025-01-01).json",
        "notes.txt",
    ] {
        let f = Folder::copy_of(template.path());
        let path = f.path("users").join(name);
        f.put(
            &path,
            b"{\"username\": \"alice\", \"password\": \"$argon2id$bogus\"}",
        );
        let expected = if name.ends_with(".tmp") {
            SkipReason::TempFile
        } else if name.contains("conflict") {
            SkipReason::ConflictCopy
        } else {
            SkipReason::UnexpectedName
        };
        f.assert_skipped(&path, None, |r| *r == expected);
        f.store.verify_user("alice", PASSWORD).unwrap();
    }
}

#[test]
fn damaged_chat_files_and_strange_names_are_skipped_and_kept() {
    let template = template();

    // Another chat whose chat.json is garbage: that chat is unusable, the rest loads.
    let f = Folder::copy_of(template.path());
    let broken = "g-00000000000000000000000000000001";
    let path = f.path(&format!("chats/{broken}/chat.json"));
    f.put(&path, b"{\"format\":1,\"id\":\"g-0000");
    f.assert_skipped(&path, None, is_unparseable);
    assert_eq!(
        f.store.get_chat(&key("alice"), broken).unwrap_err().code(),
        "corrupt_file"
    );

    // A chat.json copied into the folder of another id.
    let f = Folder::copy_of(template.path());
    let path = f.path(&format!("chats/{broken}/chat.json"));
    f.put(
        &path,
        &fs::read(f.path(&format!("chats/{}/chat.json", f.chat))).unwrap(),
    );
    f.assert_skipped(&path, None, |r| matches!(r, SkipReason::Misplaced(_)));

    // Names that do not belong in chats/ or images/, and a sync tool's leftovers there.
    for (rel, expected) in [
        ("chats/random-folder/notes.txt", SkipReason::UnexpectedName),
        ("images/notes.txt", SkipReason::UnexpectedName),
        ("images/cat.png", SkipReason::UnexpectedName),
        ("images/~syncthing~cat.png.tmp", SkipReason::TempFile),
    ] {
        let f = Folder::copy_of(template.path());
        f.put(&f.path(rel), b"hello");
        let reported = if rel.starts_with("chats/") {
            f.path("chats/random-folder")
        } else {
            f.path(rel)
        };
        let bytes = fs::read(f.path(rel)).unwrap();
        f.assert_skipped(&reported, None, |r| *r == expected);
        assert_eq!(fs::read(f.path(rel)).unwrap(), bytes);
    }
    let f = Folder::copy_of(template.path());
    let stray = f.path(&format!("chats/{}/todo.txt", f.chat));
    f.put(&stray, b"buy milk");
    f.assert_skipped(&stray, None, |r| *r == SkipReason::UnexpectedName);

    // An image whose content does not match its name (a half-synced or tampered copy).
    let f = Folder::copy_of(template.path());
    let image = f.messages.iter().find_map(|e| e.image.clone()).unwrap();
    let other = encode(ImageFormat::Png, 9, 9);
    let fake = f.path("images").join(format!("{}.png", "ab".repeat(32)));
    f.put(&fake, &other);
    f.assert_skipped(&fake, None, |r| *r == SkipReason::ContentMismatch);
    assert_eq!(
        f.store
            .image_bytes(
                &key("alice"),
                &f.chat,
                fake.file_name().unwrap().to_str().unwrap()
            )
            .unwrap_err()
            .code(),
        "corrupt_file"
    );
    assert_ne!(fake.file_name().unwrap().to_str(), Some(image.as_str()));
    // The same for an encrypted image (format 2): here, part of a real one under a name
    // its bytes do not give.
    let f = Folder::copy_of(template.path());
    let stored = fs::read(f.path("images").join(&image)).unwrap();
    let cut = f.path("images").join(format!("{}.enc", "cd".repeat(32)));
    f.put(&cut, &stored[..stored.len() / 2]);
    f.assert_skipped(&cut, None, |r| *r == SkipReason::ContentMismatch);
    let cut_name = cut.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        f.store
            .image_bytes(&key("bob"), &f.chat, cut_name)
            .unwrap_err()
            .code(),
        "corrupt_file"
    );
}

#[test]
fn bad_log_lines_are_skipped_one_by_one() {
    let template = template();
    let f = Folder::copy_of(template.path());
    let lines = fs::read_to_string(&f.log).unwrap().lines().count();

    let cases: Vec<LineCase> = vec![
        (
            "garbage",
            Box::new(|_| "this is not json\n".into()),
            Box::new(is_unparseable),
        ),
        (
            "a newer format",
            Box::new(|f| f.line(|e| e["v"] = 99.into())),
            Box::new(|r| *r == SkipReason::NewerFormat(99)),
        ),
        // Genuine lines, copied to the wrong place.
        (
            "an event of another chat",
            Box::new(|f| f.signed(|e| e.chat = ChatId::parse(&f.dm).unwrap()).1),
            Box::new(|r| matches!(r, SkipReason::Misplaced(_))),
        ),
        (
            "another sender than the file's",
            Box::new(|f| f.signed(|e| e.sender = key("bob")).1),
            Box::new(|r| matches!(r, SkipReason::Misplaced(_))),
        ),
        (
            "another device than the file's",
            Box::new(|f| {
                f.signed(|e| e.device = DeviceId::parse("0000000000000000").unwrap())
                    .1
            }),
            Box::new(|r| matches!(r, SkipReason::Misplaced(_))),
        ),
        (
            "an unknown event type",
            Box::new(|f| f.line(|l| l["event"]["type"] = "reaction".into())),
            Box::new(is_unparseable),
        ),
        // What format 2 adds: whoever edits a line breaks it.
        (
            "an id that is not the one its content gives",
            Box::new(|f| f.with_field("id", &"a".repeat(32))),
            Box::new(|r| matches!(r, SkipReason::Invalid(_))),
        ),
        (
            "a signature over another line",
            Box::new(|f| {
                let (_, other) =
                    f.signed(|e| e.content = Content::message(Some("another".into()), None));
                let other: serde_json::Value = serde_json::from_str(&other).unwrap();
                f.with_field("sig", other["sig"].as_str().unwrap())
            }),
            Box::new(|r| matches!(r, SkipReason::BadSignature(_))),
        ),
        (
            "an unsigned format-1 line in the name of a user with keys",
            Box::new(|f| {
                let e = f.first_of_alice();
                let event = serde_json::json!({
                    "v": 1, "id": "a".repeat(32), "type": "message", "chat": e.chat,
                    "sender": e.sender, "device": e.device, "seq": e.seq, "ts": e.ts,
                    "text": "odd one", "image": null,
                });
                event.to_string() + "\n"
            }),
            Box::new(|r| matches!(r, SkipReason::Unsigned(_))),
        ),
    ];
    for (name, line, reason) in cases {
        let f = Folder::copy_of(template.path());
        f.append(&f.log, line(&f).as_bytes());
        eprintln!("log line case: {name}");
        f.assert_skipped(&f.log, Some(lines + 1), |r| reason(r));
    }

    // A good line after a bad one still counts.
    let f = Folder::copy_of(template.path());
    let newest = f.messages.iter().map(|e| e.ts).max().unwrap();
    let (event, good) = f.signed(|e| {
        e.seq = 100;
        e.ts = newest + 1;
    });
    f.append(&f.log, b"{\"v\":1,\"id\":}\n");
    f.append(&f.log, good.as_bytes());
    let mut expected = f.messages.clone();
    expected.push(MessageView::lone(&event).unwrap());
    expected.sort_by_key(|e| e.key());
    assert_eq!(
        f.store.all_messages(&key("bob"), &f.chat).unwrap(),
        expected
    );
    assert_eq!(doctor(&f.store).len(), 1);

    // A torn last line: a write in progress or cut short.
    let f = Folder::copy_of(template.path());
    let (_, whole) = f.signed(|_| {});
    f.append(&f.log, &whole.as_bytes()[..whole.len() / 2]);
    f.assert_skipped(&f.log, Some(lines + 1), |r| *r == SkipReason::TornLine);

    // Temp files and stray names among the logs.
    let month = f
        .log
        .parent()
        .unwrap()
        .strip_prefix(f.dir.path())
        .unwrap()
        .to_path_buf();
    for (name, expected) in [
        (
            ".syncthing.alice.0011223344556677.jsonl.tmp",
            SkipReason::TempFile,
        ),
        (
            "~syncthing~alice.0011223344556677.jsonl.tmp",
            SkipReason::TempFile,
        ),
        ("alice.jsonl", SkipReason::UnexpectedName),
        ("Alice.0011223344556677.jsonl", SkipReason::UnexpectedName),
    ] {
        let f = Folder::copy_of(template.path());
        let path = f.dir.path().join(&month).join(name);
        f.put(&path, whole.as_bytes());
        f.assert_skipped(&path, None, |r| *r == expected);
    }
}

// ---------------------------------------------------------------------------------------
// The CLI's exit codes and messages

#[test]
fn the_cli_fails_with_exit_codes_and_one_line_of_advice() {
    let data = temp_dir();
    let config = temp_dir();
    let store = open_store(data.path());
    sign_up(&store, &["alice", "bob"]);
    let chat = store
        .create_private_chat(&key("alice"), "bob")
        .unwrap()
        .id
        .to_string();
    let one_line = |stderr: &str| {
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(stderr.starts_with("error: "), "{stderr:?}");
    };

    let out = run(cli(data.path(), config.path()).arg("frobnicate"));
    assert_eq!(out.code(), 2, "unknown subcommand: {out:?}");

    let out = run(cli(data.path(), config.path()).args(["chats"]));
    assert_eq!(out.code(), 1, "{out:?}");
    one_line(&out.stderr);
    assert!(out.stderr.contains("--user"));

    let out = run(cli(data.path(), config.path())
        .env("UMER_CHAT_PASSWORD", "not the password")
        .args(["--user", "alice", "chats"]));
    assert_eq!(out.code(), 1, "{out:?}");
    one_line(&out.stderr);
    assert!(out.stderr.contains("Wrong password"));
    assert!(out.stdout.is_empty());

    let missing = data.path().join("no-such-picture.png");
    let out = run(cli(data.path(), config.path()).args([
        "--user",
        "alice",
        "send",
        &chat,
        "--image",
        missing.to_str().unwrap(),
    ]));
    assert_eq!(out.code(), 1, "{out:?}");
    one_line(&out.stderr);
    assert!(out.stderr.contains("no-such-picture.png"));

    let text_as_png = data.path().join("note.png");
    fs::write(&text_as_png, "not a picture").unwrap();
    let out = run(cli(data.path(), config.path()).args([
        "--user",
        "alice",
        "send",
        &chat,
        "--image",
        text_as_png.to_str().unwrap(),
    ]));
    assert_eq!(out.code(), 1, "{out:?}");
    one_line(&out.stderr);

    let out = run(cli(data.path(), config.path()).args(["--user", "alice", "send", &chat, "  "]));
    assert_eq!(out.code(), 1, "an empty message: {out:?}");
    one_line(&out.stderr);

    let out = run(cli(data.path(), config.path()).args(["--user", "bob", "read", "../../etc"]));
    assert_eq!(out.code(), 1, "{out:?}");
    one_line(&out.stderr);

    assert!(
        store.all_messages(&key("bob"), &chat).unwrap().is_empty(),
        "nothing was sent"
    );
    assert_eq!(run(cli(data.path(), config.path()).arg("doctor")).code(), 0);
    fs::write(data.path().join("users/.syncthing.x.tmp"), "").unwrap();
    let out = run(cli(data.path(), config.path()).arg("doctor"));
    assert_eq!(out.code(), 1, "doctor exits 1 when it skipped something");
    assert!(out.stdout.contains(".syncthing.x.tmp"));
}
