const COMMANDS: &[&str] = &[
    "session",
    "signup",
    "login",
    "logout",
    "username_available",
    "list_users",
    "list_chats",
    "create_dm",
    "create_group",
    "open_chat",
    "older_messages",
    "send_text",
    "send_image",
    "choose_image",
    "preview_image",
    "poll",
    "mark_read",
    "search",
    "contact_keys",
    "trust_keys",
    "set_verified",
    "change_password",
    "show_recovery_key",
    "recover_account",
    "startup_notice",
    "data_folder",
    "set_data_folder",
    "choose_data_folder",
];

fn main() {
    // Declaring the commands makes capabilities decide who may call them
    // (by default every app command would be allowed).
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build script failed");
}
