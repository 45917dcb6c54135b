//! `umer-chat-server import FOLDER` (issue 19): a shared folder moves onto a server byte for
//! byte; its people claim their accounts with their passwords, and their new devices, on
//! folders of their own, show the same chats and pass `verify`.

use std::process::Command;

use serde_json::{json, Value};
use umer_chat_core::membership::Change;
use umer_chat_tests::support::server::{on_each_database, TestServer};
use umer_chat_tests::support::{cli, key, open_signed_in, open_store, run, sign_up, temp_dir};

fn texts(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter_map(|m| m["text"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn a_shared_folder_moves_onto_a_server_and_its_people_claim_their_accounts() {
    on_each_database(|backend| {
        // The shared folder: a DM, and a group that lost carol, with a photo and a receipt.
        let folder = temp_dir();
        let root = folder.path();
        sign_up(&open_store(root), &["alice", "bob", "carol"]);
        let alice = open_signed_in(root, &["alice"]);
        let bob = open_signed_in(root, &["bob"]);
        let dm = alice
            .create_private_chat(&key("alice"), "bob")
            .unwrap()
            .id
            .clone();
        for text in ["one", "two", "three"] {
            alice
                .append_message(&key("alice"), dm.as_str(), Some(text), None)
                .unwrap();
        }
        bob.append_message(&key("bob"), dm.as_str(), Some("four"), None)
            .unwrap();
        bob.mark_read(&key("bob"), dm.as_str()).unwrap();
        let group = alice
            .create_group_chat(&key("alice"), "Hike", &["bob", "carol"])
            .unwrap()
            .id
            .clone();
        let png = umer_chat_tests::support::images::encode(
            image::DynamicImage::new_rgb8(8, 8),
            image::ImageFormat::Png,
        );
        let photo = alice
            .save_image(&key("alice"), group.as_str(), &png)
            .unwrap();
        alice
            .append_message(
                &key("alice"),
                group.as_str(),
                Some("the view"),
                Some(&photo),
            )
            .unwrap();
        alice
            .change_group(
                &key("alice"),
                group.as_str(),
                Change::Remove { user: key("carol") },
            )
            .unwrap();
        alice
            .append_message(&key("alice"), group.as_str(), Some("after carol"), None)
            .unwrap();

        let server = TestServer::start(backend);
        let report = server.import(root);
        assert_eq!(report["users"], 3, "{report}");
        assert_eq!(report["chats"], 2, "{report}");
        assert_eq!(report["lines"], 6, "{report}");
        assert_eq!(report["membership_lines"], 1, "{report}");
        assert_eq!(report["photos"], 1, "{report}");
        assert_eq!(report["read_markers"], 1, "{report}");
        // Again: nothing new, nothing twice.
        let again = server.import(root);
        assert_eq!(
            (again["users"].clone(), again["chats"].clone()),
            (json!(0), json!(0))
        );

        // alice on a new device with a folder of its own: her first sign-in claims the
        // account with the keys her password opens, and she has everything.
        let device = temp_dir();
        let config = temp_dir();
        let on_server = |user: &str, args: &[&str]| -> Command {
            let mut command = cli(device.path(), config.path());
            command
                .env("UMER_CHAT_SERVER", &server.url)
                .args(["--user", user])
                .args(args);
            command
        };
        let chats = run(&mut on_server("alice", &["chats"])).ok();
        assert_eq!(chats.lines().count(), 2, "{chats}");
        // The same history in the same order as in the folder. "three" and "four" come from
        // two devices and may share a millisecond; then the device id breaks the tie, so the
        // folder's own order is the one to match.
        let folder_config = temp_dir();
        let in_folder =
            run(cli(root, folder_config.path()).args(["--user", "alice", "read", dm.as_str()]))
                .ok();
        let dm_texts = texts(&run(&mut on_server("alice", &["read", dm.as_str()])).ok());
        assert_eq!(dm_texts, texts(&in_folder));
        let mut sorted = dm_texts.clone();
        sorted.sort();
        assert_eq!(sorted, ["four", "one", "three", "two"]);
        let group_read = run(&mut on_server("alice", &["read", group.as_str()])).ok();
        assert_eq!(
            texts(&group_read),
            ["the view", "alice removed carol", "after carol"]
        );
        assert!(device.path().join("images").join(&photo).is_file());
        // Every signature on her device checks, as it did in the folder.
        let verify = run(cli(device.path(), config.path()).arg("verify"));
        assert_eq!(verify.code(), 0, "{}{}", verify.stdout, verify.stderr);

        // A wrong password claims nothing; the account stays hers.
        let (wrong_device, wrong_config) = (temp_dir(), temp_dir());
        let mut wrong = cli(wrong_device.path(), wrong_config.path());
        wrong
            .env("UMER_CHAT_SERVER", &server.url)
            .env("UMER_CHAT_PASSWORD", "not her password at all")
            .args(["--user", "bob", "chats"]);
        let refused = run(&mut wrong);
        assert_ne!(refused.code(), 0);
        // bob claims his with his own, and carol, removed, gets the DM-less, group-less list.
        let bob_device = temp_dir();
        let bob_config = temp_dir();
        let mut bob_chats = cli(bob_device.path(), bob_config.path());
        bob_chats
            .env("UMER_CHAT_SERVER", &server.url)
            .args(["--user", "bob", "chats"]);
        assert_eq!(run(&mut bob_chats).ok().lines().count(), 2);
        let carol_device = temp_dir();
        let carol_config = temp_dir();
        let mut carol_chats = cli(carol_device.path(), carol_config.path());
        carol_chats
            .env("UMER_CHAT_SERVER", &server.url)
            .args(["--user", "carol", "chats"]);
        assert_eq!(run(&mut carol_chats).ok().lines().count(), 0);
    });
}
