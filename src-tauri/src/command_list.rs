// Every command the UI may call, declared once: its name, its arguments (as the Rust function
// takes them; the UI passes them in camelCase) and its result.
//
// `lib.rs` turns this list into the invoke handler, so a declared command without a function
// fails the build. `build.rs` turns it into the app manifest, and fails the build when
// `capabilities/main.json` grants anything else. A test holds the functions' parameters,
// `ui/js/api.js` and `docs/commands.md` to it.
//
// This file is `include!`d by both, each with its own `app_command_list!`; keep it to the
// one macro call.
app_command_list! {
    session() -> Option<SessionDto>;
    signup(username: String, password: String) -> SessionDto;
    login(username: String, password: String) -> SessionDto;
    logout() -> ();
    username_available(username: String) -> AvailabilityDto;
    list_users() -> Vec<String>;
    list_chats() -> Vec<ChatSummaryDto>;
    create_dm(other: String) -> ChatSummaryDto;
    create_group(name: String, members: Vec<String>) -> ChatSummaryDto;
    open_chat(chat_id: String) -> ChatPageDto;
    older_messages(chat_id: String, before: String) -> OlderDto;
    send_text(chat_id: String, text: String) -> MessageDto;
    send_image(chat_id: String, data_base64: String, text: Option<String>, original: Option<bool>) -> MessageDto;
    reply(chat_id: String, to: String, text: String) -> MessageDto;
    edit_message(chat_id: String, message: String, text: String) -> Option<MessageDto>;
    delete_message(chat_id: String, message: String) -> Option<MessageDto>;
    hide_message(chat_id: String, message: String) -> ();
    react(chat_id: String, message: String, emoji: String, on: bool) -> Option<MessageDto>;
    choose_image() -> Option<PickedImageDto>;
    preview_image(data_base64: String) -> String;
    poll(chat_id: Option<String>, cursor: Option<String>) -> PollDto;
    subscribe_changes(on_change: Channel<ChangeSignal>) -> LiveStatus;
    set_typing(chat_id: Option<String>) -> ();
    set_unread_total(total: u32) -> ();
    caret_blink() -> Option<CaretBlinkDto>;
    set_caret_resting(resting: bool) -> ();
    preferences() -> PreferencesDto;
    set_preferences(preferences: PreferencesDto) -> PreferencesDto;
    mark_read(chat_id: String) -> ();
    search(query: String) -> Vec<SearchHitDto>;
    contact_keys(other: String) -> ContactDto;
    trust_keys(other: String, fingerprint: String) -> ContactDto;
    set_verified(other: String, verified: bool, fingerprint: Option<String>) -> ContactDto;
    change_password(old_password: String, new_password: String) -> ();
    show_recovery_key(password: String) -> String;
    recover_account(username: String, recovery_key: String, new_password: String) -> SessionDto;
    startup_notice() -> Option<String>;
    about() -> AboutDto;
    data_folder() -> String;
    set_data_folder(path: String) -> String;
    chats_place() -> PlaceDto;
    set_server(url: String, allow_plain_http: bool) -> PlaceDto;
    choose_data_folder() -> Option<String>;
    export_chat(chat_id: String) -> Option<ExportDto>;
    group_info(chat_id: String) -> GroupInfoDto;
    change_group(chat_id: String, change: GroupChangeDto) -> GroupInfoDto;
    delete_left_group(chat_id: String) -> ();
}
