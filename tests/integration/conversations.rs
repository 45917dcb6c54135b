//! Replies, edits, deletes and reactions through the store: every reader applies the same
//! rules, pages count messages, and a hostile member can change nothing but their own.

use std::time::Instant;

use umer_chat_core::content::{Content, Target};
use umer_chat_core::format::LINE_VERSION;
use umer_chat_core::ids::{new_event_id, now_ms};
use umer_chat_core::timeline::MessageView;
use umer_chat_core::{ChatId, Event, Store, UserKey, PAGE_SIZE};
use umer_chat_tests::support::{key, open_signed_in, open_store, sign_up, temp_dir};

struct Group {
    _dir: tempfile::TempDir,
    alice: Store,
    bob: Store,
    carol: Store,
    chat: ChatId,
}

/// Alice made a group with bob and carol (so she is its admin); each on their own device.
fn group() -> Group {
    let dir = temp_dir();
    sign_up(&open_store(dir.path()), &["alice", "bob", "carol"]);
    let alice = open_signed_in(dir.path(), &["alice"]);
    let chat = alice
        .create_group_chat(&key("alice"), "plans", &["bob", "carol"])
        .unwrap()
        .id
        .clone();
    let bob = open_signed_in(dir.path(), &["bob"]);
    let carol = open_signed_in(dir.path(), &["carol"]);
    Group {
        alice,
        bob,
        carol,
        chat,
        _dir: dir,
    }
}

fn say(store: &Store, who: &str, chat: &ChatId, text: &str) -> Target {
    let event = store
        .append_message(&key(who), chat.as_str(), Some(text), None)
        .unwrap();
    Target {
        id: event.id,
        sender: event.sender,
    }
}

fn act(store: &Store, who: &str, chat: &ChatId, content: Content) -> umer_chat_core::Result<Event> {
    store.append_content(&key(who), chat.as_str(), content)
}

/// Writes `content` as `who`'s event at `ts` into their own log, skipping the writer's
/// checks of the rules (as a modified app would).
fn plant(store: &Store, who: &str, chat: &ChatId, ts: i64, seq: u64, content: Content) {
    let event = Event {
        v: LINE_VERSION,
        id: new_event_id(),
        chat: chat.clone(),
        sender: key(who),
        device: store.device().clone(),
        seq,
        ts,
        content,
        trust: Default::default(),
    };
    store.import_events(std::slice::from_ref(&event)).unwrap();
}

fn view_of(store: &Store, who: &str, chat: &ChatId, target: &Target) -> MessageView {
    store
        .all_messages(&key(who), chat.as_str())
        .unwrap()
        .into_iter()
        .find(|m| m.target() == *target)
        .expect("the message is there")
}

fn edit(target: &Target, text: &str) -> Content {
    Content::Edit {
        target: target.clone(),
        text: text.into(),
    }
}

fn react(target: &Target, emoji: &str) -> Content {
    Content::React {
        target: target.clone(),
        emoji: emoji.into(),
    }
}

#[test]
fn edits_deletes_reactions_and_replies_reach_every_page_and_pages_count_messages() {
    let g = group();
    let first = say(&g.alice, "alice", &g.chat, "first draft");
    for i in 0..119 {
        say(&g.alice, "alice", &g.chat, &format!("filler {i}"));
    }
    // Events about the first message, written long after it: on the latest page's range.
    act(&g.bob, "bob", &g.chat, react(&first, "👍")).unwrap();
    act(&g.carol, "carol", &g.chat, react(&first, "👍")).unwrap();
    act(&g.carol, "carol", &g.chat, react(&first, "🎉")).unwrap();
    act(
        &g.carol,
        "carol",
        &g.chat,
        Content::Unreact {
            target: first.clone(),
            emoji: "🎉".into(),
        },
    )
    .unwrap();
    act(&g.alice, "alice", &g.chat, edit(&first, "final text")).unwrap();
    let reply = g
        .carol
        .append_content(
            &key("carol"),
            g.chat.as_str(),
            Content::Message {
                text: Some("about the first".into()),
                image: None,
                size: None,
                reply_to: Some(first.clone()),
            },
        )
        .unwrap();

    // Bob pages back from the latest page, in a fresh process: pages of 50 messages (the
    // events about messages do not count), and the first message comes with everything
    // written about it later.
    let reader = open_signed_in(g._dir.path(), &["bob"]);
    let view = reader.get_chat(&key("bob"), g.chat.as_str()).unwrap();
    assert_eq!(view.page.messages.len(), PAGE_SIZE);
    let newest = view.page.messages.last().unwrap();
    assert_eq!(newest.id, reply.id);
    let quote = newest.reply_to.as_ref().expect("a reply");
    assert_eq!(quote.target, first);
    assert_eq!(
        umer_chat_core::display::quote_preview(quote),
        "final text",
        "the quote shows the current text"
    );
    let mut pages = vec![view.page.messages];
    let mut older = view.page.older;
    while let Some(before) = older {
        let page = reader
            .older_messages(&key("bob"), g.chat.as_str(), &before, PAGE_SIZE)
            .unwrap();
        pages.push(page.messages);
        older = page.older;
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [50, 50, 21], "121 messages in pages of 50");
    let shown = &pages.last().unwrap()[0];
    assert_eq!(shown.target(), first);
    assert_eq!(shown.text.as_deref(), Some("final text"));
    assert!(shown.edited());
    assert_eq!(shown.history.len(), 2);
    assert_eq!(shown.history[0].text.as_deref(), Some("first draft"));
    assert_eq!(shown.reactions.len(), 1, "carol took 🎉 back");
    assert_eq!(shown.reactions[0].emoji, "👍");
    assert_eq!(shown.reactions[0].users, vec![key("bob"), key("carol")]);

    // A process that never opened the chat asks for an older page directly.
    let cold = open_signed_in(g._dir.path(), &["bob"]);
    let before = pages[1].first().unwrap().key();
    let page = cold
        .older_messages(&key("bob"), g.chat.as_str(), &before, PAGE_SIZE)
        .unwrap();
    assert_eq!(page.messages[0], *shown);

    // The chat list: messages only are unread (edits and reactions are not), and search
    // finds the current text, never the old one.
    let summary = reader.list_user_chats(&key("bob")).unwrap().remove(0);
    assert_eq!(summary.unread, 121);
    assert_eq!(summary.last.as_ref().unwrap().id, reply.id);
    assert!(reader
        .search(&key("bob"), "first draft", 10)
        .unwrap()
        .is_empty());
    let hits = reader.search(&key("bob"), "final text", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].message.target(), first);

    // A reaction to alice's message is news for her, and never unread.
    let for_alice = open_signed_in(g._dir.path(), &["alice"]);
    let summary = for_alice.list_user_chats(&key("alice")).unwrap().remove(0);
    let reaction = summary.reaction.expect("a reaction to alice's message");
    assert_eq!(reaction.by, key("carol"));
    assert_eq!(reaction.emoji, "👍");
    assert_eq!(reaction.to.target(), first);
    assert_eq!(summary.unread, 1, "carol's reply only");

    // Polls bring what changed, as it is now.
    let start = reader.end_cursor(&key("bob"), g.chat.as_str()).unwrap();
    act(
        &g.alice,
        "alice",
        &g.chat,
        Content::Delete {
            target: first.clone(),
        },
    )
    .unwrap();
    let (changed, _) = reader.poll(&key("bob"), g.chat.as_str(), &start).unwrap();
    let deleted = changed
        .iter()
        .find(|m| m.target() == first)
        .expect("the deleted message");
    assert!(deleted.deleted && deleted.text.is_none() && deleted.reactions.is_empty());
    let quoting = changed
        .iter()
        .find(|m| m.id == reply.id)
        .expect("the reply quoting it");
    assert_eq!(
        umer_chat_core::display::quote_preview(quoting.reply_to.as_ref().unwrap()),
        umer_chat_core::display::DELETED
    );
}

#[test]
fn a_hostile_member_cannot_change_or_hide_someone_elses_message() {
    let g = group();
    let alices = say(&g.alice, "alice", &g.chat, "alice's words");
    let bobs = say(&g.bob, "bob", &g.chat, "bob's words");

    // The writer refuses what the rules refuse.
    for (who, store, content) in [
        ("carol", &g.carol, edit(&alices, "carol's words")),
        (
            "carol",
            &g.carol,
            Content::Delete {
                target: alices.clone(),
            },
        ),
        ("bob", &g.bob, edit(&alices, "bob's words")),
    ] {
        let err = act(store, who, &g.chat, content).unwrap_err();
        assert_eq!(err.code(), "not_allowed", "{err}");
    }
    let unknown = Target {
        id: new_event_id(),
        sender: key("alice"),
    };
    assert_eq!(
        act(&g.carol, "carol", &g.chat, react(&unknown, "👍"))
            .unwrap_err()
            .code(),
        "message_not_found"
    );

    // A modified app writes them anyway, signed by carol: every reader ignores them.
    let now = now_ms();
    let mut seq = 100;
    let mut next = || {
        seq += 1;
        seq
    };
    plant(
        &g.carol,
        "carol",
        &g.chat,
        now + 1,
        next(),
        edit(&alices, "carol's words"),
    );
    plant(
        &g.carol,
        "carol",
        &g.chat,
        now + 2,
        next(),
        Content::Delete {
            target: alices.clone(),
        },
    );
    plant(
        &g.carol,
        "carol",
        &g.chat,
        now + 3,
        next(),
        Content::Delete {
            target: unknown.clone(),
        },
    );
    // An edit that claims to be older than its message.
    plant(
        &g.alice,
        "alice",
        &g.chat,
        now - 60_000,
        next(),
        edit(&alices, "backdated"),
    );
    // A message of another chat: their DM.
    let dm = g
        .alice
        .create_private_chat(&key("alice"), "carol")
        .unwrap()
        .id
        .clone();
    let elsewhere = say(&g.alice, "alice", &dm, "in the dm");
    plant(
        &g.carol,
        "carol",
        &g.chat,
        now + 4,
        next(),
        edit(&elsewhere, "moved"),
    );
    plant(
        &g.carol,
        "carol",
        &g.chat,
        now + 5,
        next(),
        react(&elsewhere, "😈"),
    );
    // An edit of an edit: alice's own (valid) edit of her message, then an edit naming it.
    let first_edit = act(
        &g.alice,
        "alice",
        &g.chat,
        edit(&alices, "alice's words, again"),
    )
    .unwrap();
    let of_an_edit = Target {
        id: first_edit.id.clone(),
        sender: key("alice"),
    };
    plant(
        &g.alice,
        "alice",
        &g.chat,
        now_ms() + 10,
        next(),
        edit(&of_an_edit, "edit of an edit"),
    );

    for reader in [&g.alice, &g.bob, &g.carol] {
        let who = match reader {
            r if std::ptr::eq(r, &g.alice) => "alice",
            r if std::ptr::eq(r, &g.bob) => "bob",
            _ => "carol",
        };
        let view = view_of(reader, who, &g.chat, &alices);
        assert_eq!(view.text.as_deref(), Some("alice's words, again"), "{who}");
        assert!(
            !view.deleted && view.history.len() == 2,
            "{who}: only her own edit counts"
        );
        let timeline = reader.chat_timeline(&key(who), g.chat.as_str()).unwrap();
        let ignored: Vec<String> = timeline.ignored().into_iter().map(|i| i.reason).collect();
        assert_eq!(ignored.len(), 3, "{who}: {ignored:?}");
        assert!(
            ignored
                .iter()
                .any(|r| r.contains("carol edits a message of alice")),
            "{ignored:?}"
        );
        assert!(
            ignored.iter().any(|r| r.contains("not an admin")),
            "{ignored:?}"
        );
        assert!(
            ignored.iter().any(|r| r.contains("comes before")),
            "{ignored:?}"
        );
        assert_eq!(
            timeline.waiting(),
            4,
            "the unknown id, the other chat's message and the edit of an edit wait for a message"
        );
        // Nothing planted keeps the chat from opening.
        reader.get_chat(&key(who), g.chat.as_str()).unwrap();
    }

    // `doctor`, signed in, names what the rules ignored.
    let config = temp_dir();
    let out = umer_chat_tests::support::run(
        umer_chat_tests::support::cli(g._dir.path(), config.path())
            .args(["--user", "bob", "doctor"]),
    );
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(
        out.stdout.contains("carol edits a message of alice"),
        "{out:?}"
    );
    assert!(out.stdout.contains("comes before the message"), "{out:?}");
    assert!(out.stdout.contains("not a message of this chat"), "{out:?}");

    // The admin deletes bob's message; an edit written before the delete changes nothing.
    plant(
        &g.bob,
        "bob",
        &g.chat,
        now + 10,
        500,
        edit(&bobs, "bob's second words"),
    );
    act(
        &g.alice,
        "alice",
        &g.chat,
        Content::Delete {
            target: bobs.clone(),
        },
    )
    .unwrap();
    let view = view_of(&g.carol, "carol", &g.chat, &bobs);
    assert!(view.deleted && view.text.is_none() && view.history.is_empty());

    // A replayed reaction, and a copy of carol's whole log as a sync tool's conflict copy:
    // one reaction, once.
    let reaction = act(&g.carol, "carol", &g.chat, react(&alices, "👍")).unwrap();
    let log = carol_log(&g, &reaction);
    let line = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    append(&log, &line);
    let conflict = log.with_file_name(format!(
        "{}.sync-conflict-20260101-000000-ABCDEFG.jsonl",
        log.file_stem().unwrap().to_string_lossy()
    ));
    std::fs::copy(&log, conflict).unwrap();
    let view = view_of(&g.bob, "bob", &g.chat, &alices);
    assert_eq!(view.reactions.len(), 1);
    assert_eq!(view.reactions[0].users, vec![key("carol")]);
}

fn carol_log(g: &Group, event: &Event) -> std::path::PathBuf {
    g.carol
        .root()
        .join("chats")
        .join(g.chat.as_str())
        .join("log")
        .join(umer_chat_core::ids::month_of(event.ts))
        .join(umer_chat_core::format::log_file_name(
            &event.sender,
            &event.device,
        ))
}

fn append(path: &std::path::Path, line: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    writeln!(file, "{line}").unwrap();
}

#[test]
fn a_flood_of_reactions_from_one_member_shows_twenty_and_the_chat_still_opens() {
    let g = group();
    let target = say(&g.alice, "alice", &g.chat, "react to me");
    let start = now_ms() + 1;
    let emoji: Vec<String> = (0..10_000u32)
        .map(|i| char::from_u32(0x1F300 + (i % 700)).unwrap().to_string())
        .collect();
    let flood: Vec<Event> = emoji
        .iter()
        .enumerate()
        .map(|(i, e)| Event {
            v: LINE_VERSION,
            id: new_event_id(),
            chat: g.chat.clone(),
            sender: key("carol"),
            device: g.carol.device().clone(),
            seq: i as u64,
            ts: start + i as i64,
            content: react(&target, e),
            trust: Default::default(),
        })
        .collect();
    g.carol.import_events(&flood).unwrap();
    let reader = open_signed_in(g._dir.path(), &["bob"]);
    let opened = Instant::now();
    let view = reader.get_chat(&key("bob"), g.chat.as_str()).unwrap();
    println!("opened with 10,000 reactions in {:?}", opened.elapsed());
    let shown = view
        .page
        .messages
        .iter()
        .find(|m| m.target() == target)
        .unwrap();
    assert_eq!(
        shown.reactions.len(),
        umer_chat_core::content::MAX_REACTIONS_PER_PERSON
    );
    assert!(shown
        .reactions
        .iter()
        .all(|r| r.users == vec![key("carol")]));
    let _: &UserKey = &shown.sender;
}

#[test]
fn delete_for_me_hides_a_message_on_this_device_only() {
    let g = group();
    let keep = say(&g.alice, "alice", &g.chat, "keep this");
    let noise = say(&g.alice, "alice", &g.chat, "noise for bob");
    let config = temp_dir();
    let hidden_file = config.path().join(umer_chat_core::config::HIDDEN_FILE);
    g.bob.use_hidden_file(hidden_file.clone()).unwrap();
    g.bob.get_chat(&key("bob"), g.chat.as_str()).unwrap();
    g.bob
        .hide_for_me(&key("bob"), g.chat.as_str(), &noise)
        .unwrap();
    let shown = |store: &Store, who: &str| -> Vec<Target> {
        store
            .get_chat(&key(who), g.chat.as_str())
            .unwrap()
            .page
            .messages
            .iter()
            .map(MessageView::target)
            .collect()
    };
    assert_eq!(shown(&g.bob, "bob"), std::slice::from_ref(&keep));
    assert!(g.bob.search(&key("bob"), "noise", 10).unwrap().is_empty());
    assert_eq!(
        g.bob.list_user_chats(&key("bob")).unwrap()[0]
            .last
            .as_ref()
            .unwrap()
            .target(),
        keep,
        "the chat list's last message is the last one shown"
    );
    // Another process of bob's device, from the same local file; carol sees everything.
    let again = open_signed_in(g._dir.path(), &["bob"]);
    again.use_hidden_file(hidden_file).unwrap();
    assert_eq!(shown(&again, "bob"), std::slice::from_ref(&keep));
    assert_eq!(shown(&g.carol, "carol"), [keep, noise]);
    assert!(!umer_chat_tests::support::files_under(g._dir.path())
        .iter()
        .any(|f| f.to_string_lossy().contains("hidden")));
}

#[test]
fn a_deleted_photo_loses_its_file_and_every_cached_thumbnail() {
    let g = group();
    let alice = key("alice");
    let photo = umer_chat_tests::support::images::encode(
        image::DynamicImage::new_rgb8(40, 30),
        image::ImageFormat::Png,
    );
    let name = g.alice.save_image(&alice, g.chat.as_str(), &photo).unwrap();
    let sent = g
        .alice
        .append_message(&alice, g.chat.as_str(), Some("look"), Some(&name))
        .unwrap();
    let target = Target {
        id: sent.id.clone(),
        sender: alice.clone(),
    };
    // Bob's app made a thumbnail of it.
    let cache = temp_dir();
    g.bob
        .image_thumbnail(&key("bob"), g.chat.as_str(), &name, 64, cache.path())
        .unwrap();
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
    let cursor = g.bob.end_cursor(&key("bob"), g.chat.as_str()).unwrap();
    let image_file = g.alice.root().join("images").join(&name);
    assert!(image_file.exists());

    act(
        &g.alice,
        "alice",
        &g.chat,
        Content::Delete {
            target: target.clone(),
        },
    )
    .unwrap();
    assert!(
        !image_file.exists(),
        "the sending device removed the file it wrote"
    );
    let (changed, _) = g.bob.poll(&key("bob"), g.chat.as_str(), &cursor).unwrap();
    assert!(changed.iter().any(|m| m.target() == target && m.deleted));
    assert_eq!(
        std::fs::read_dir(cache.path()).unwrap().count(),
        0,
        "bob's device dropped its thumbnail"
    );
}

#[test]
fn a_groups_export_starts_with_who_made_it_and_keeps_its_name_as_text() {
    let dir = temp_dir();
    sign_up(&open_store(dir.path()), &["alice", "bob", "carol"]);
    let alice = open_signed_in(dir.path(), &["alice"]);
    let hostile = "<img src=x onerror=alert(1)>";
    let chat = alice
        .create_group_chat(&key("alice"), hostile, &["bob", "carol"])
        .unwrap()
        .id
        .clone();
    say(&alice, "alice", &chat, "first");
    let out = temp_dir();
    let zip_path = out.path().join("group.zip");
    let report = alice
        .export_chat(&key("alice"), chat.as_str(), &zip_path)
        .unwrap();
    assert_eq!(report.messages, 1);
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let mut read = |name: &str| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive.by_name(name).unwrap(), &mut text).unwrap();
        text
    };
    let json: serde_json::Value = serde_json::from_str(&read("messages.json")).unwrap();
    let events = json["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["kind"], "created");
    assert_eq!(events[0]["by"], "alice");
    assert_eq!(events[0]["name"], hostile);
    assert_eq!(
        events[0]["members"],
        serde_json::json!(["alice", "bob", "carol"])
    );
    let said = format!("alice created the group \u{201c}{hostile}\u{201d} with bob and carol");
    assert_eq!(events[0]["text"], said.as_str());
    let created_at = events[0]["ts"].as_i64().unwrap();
    assert!(created_at <= json["messages"][0]["ts"].as_i64().unwrap());

    let txt = read("chat.txt");
    let lines: Vec<&str> = txt.lines().collect();
    assert!(lines[3].ends_with(&said), "{txt}");
    assert!(lines[4].ends_with("alice: first"), "{txt}");
    let html = read("chat.html");
    assert!(!html.contains("<img src=x"), "the name stays text: {html}");
    assert!(
        html.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{html}"
    );
    assert!(html.contains("class=\"system\""), "{html}");
}
