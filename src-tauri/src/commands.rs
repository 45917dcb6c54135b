//! The app's commands: thin wrappers over `umer_chat_core::Store`. Each acts as the user
//! signed in in [`AppState`], and runs its file I/O on a blocking thread so the window
//! never freezes.

use std::path::PathBuf;

use base64::Engine;
use tauri::ipc::Channel;
use tauri::{AppHandle, Runtime, State, WebviewWindow};
use umer_chat_core::{
    ChatListWatch, Event, EventKey, FolderChanges, LogCursor, PhotoSize, Store, User, UserKey,
    Username, MAX_IMAGE_BYTES, PAGE_SIZE,
};

use umer_chat_core::content::{Content, Target};
use umer_chat_core::timeline::MessageView;

use crate::dto::*;
use crate::error::{CommandError, CommandResult};
use crate::image_scheme::PREVIEW_SIDE;
use crate::live::{ChangeSignal, LiveStatus, Look};
use crate::notify;
use crate::state::AppState;
use umer_chat_sync::link::LinkEvent;
use umer_chat_sync::Syncer;

const SEARCH_LIMIT: usize = 50;
/// The window's title (tauri.conf.json), before an unread count.
const APP_TITLE: &str = "Umer Chat";

/// Runs `f` on the blocking pool.
/// [`blocking`], for a command that writes to the folder: what it wrote then goes to the
/// server at once, when the chats are on one.
async fn writing<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> CommandResult<T> + Send + 'static,
) -> CommandResult<T> {
    let result = blocking(f).await;
    state.send_now();
    result
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> CommandResult<T> + Send + 'static,
) -> CommandResult<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(|e| CommandError {
            code: "internal",
            message: format!("A background task failed: {e}"),
        })?
}

fn session_dto(state: &AppState) -> Option<SessionDto> {
    let user = state.user()?;
    Some(SessionDto {
        username: user.name.to_string(),
        data_folder: state.data_folder().display().to_string(),
        recovery_key: None,
        image_token: state.image_token()?,
        server: state.server(),
    })
}

#[tauri::command]
pub async fn session(state: State<'_, AppState>) -> CommandResult<Option<SessionDto>> {
    Ok(session_dto(&state))
}

/// What a sign-in on this device brings: the user, their recovery key when this sign-in
/// made it (the one moment it is shown without asking), and on a server the syncer of the
/// device's copy.
struct SignedIn {
    user: User,
    recovery_key: Option<String>,
    syncer: Option<Syncer>,
}

impl SignedIn {
    /// A sign-in to a folder: the store knows whether it just made the keys.
    fn in_folder(store: &Store, user: User) -> SignedIn {
        SignedIn {
            recovery_key: store.new_recovery_key(&user.key),
            user,
            syncer: None,
        }
    }
}

/// Checks credentials with `check` off the main thread (which unlocks the user's keys in
/// the store), then signs that user in, and on a server keeps the device's copy in step.
async fn sign_in_with(
    state: &AppState,
    check: impl FnOnce(&Store) -> CommandResult<SignedIn> + Send + 'static,
) -> CommandResult<SessionDto> {
    let store = state.store();
    let task_store = store.clone();
    let signed_in = blocking(move || check(&task_store)).await?;
    if !state.sign_in(&store, signed_in.user) {
        return Err(CommandError {
            code: "not_signed_in",
            message: "The data folder changed while you were signing in. Sign in again.".into(),
        });
    }
    if let Some(syncer) = signed_in.syncer {
        connect(state, syncer);
    }
    let mut session = session_dto(state).ok_or_else(CommandError::not_signed_in)?;
    session.recovery_key = signed_in.recovery_key;
    Ok(session)
}

/// Keeps the signed-in user's folder in step with the server through `syncer`'s session,
/// telling the window of what the link brings.
fn connect(state: &AppState, syncer: Syncer) {
    let tell_the_ui = state.live().teller();
    state.connect(syncer, move |event| {
        tell_the_ui(match event {
            LinkEvent::Status(_) => FolderChanges::default(),
            // At once, not after the watcher's coalescing: this is the message's path.
            LinkEvent::Lines(chat) => FolderChanges {
                chats: [chat.clone()].into(),
                ..FolderChanges::default()
            },
        })
    });
}

#[tauri::command]
pub async fn signup(
    state: State<'_, AppState>,
    username: String,
    password: String,
) -> CommandResult<SessionDto> {
    let server = state.server_device();
    sign_in_with(&state, move |store| match server {
        None => {
            let user = store.create_user(&username, &password)?;
            Ok(SignedIn::in_folder(store, user))
        }
        Some(server) => {
            let (user, recovery_key, syncer) = server.sign_up(store, &username, &password)?;
            Ok(SignedIn {
                user,
                recovery_key: Some(recovery_key),
                syncer: Some(syncer),
            })
        }
    })
    .await
}

#[tauri::command]
pub async fn login(
    state: State<'_, AppState>,
    username: String,
    password: String,
) -> CommandResult<SessionDto> {
    let server = state.server_device();
    sign_in_with(&state, move |store| match server {
        None => {
            let user = store.verify_user(&username, &password)?;
            Ok(SignedIn::in_folder(store, user))
        }
        // Offline, a device that signed in here before opens its own copy; the link
        // connects when the server is back.
        Some(server) => {
            let signed_in = server.sign_in(store, &username, &password)?;
            Ok(SignedIn {
                recovery_key: store.new_recovery_key(&signed_in.user.key),
                user: signed_in.user,
                syncer: Some(signed_in.syncer),
            })
        }
    })
    .await
}

#[tauri::command]
pub async fn logout(state: State<'_, AppState>) -> CommandResult<()> {
    state.sign_out();
    Ok(())
}

#[tauri::command]
pub async fn username_available(
    state: State<'_, AppState>,
    username: String,
) -> CommandResult<AvailabilityDto> {
    let store = state.store();
    blocking(move || {
        let verdict = Username::parse(&username).and_then(|name| {
            if store.user_exists(name.as_str())? {
                Err(umer_chat_core::Error::UsernameTaken {
                    name: name.to_string(),
                })
            } else {
                Ok(())
            }
        });
        Ok(match verdict {
            Ok(()) => AvailabilityDto {
                available: true,
                message: None,
            },
            Err(e) if e.code() == "io" => return Err(e.into()),
            Err(e) => AvailabilityDto {
                available: false,
                message: Some(e.to_string()),
            },
        })
    })
    .await
}

#[tauri::command]
pub async fn list_users(state: State<'_, AppState>) -> CommandResult<Vec<String>> {
    let (store, _) = state.signed_in()?;
    let link = state.link();
    blocking(move || {
        // On a server, whoever signed up since: offline, those the folder knows.
        if let Some(link) = link {
            let _ = link.pull_directory();
        }
        Ok(store
            .list_users()?
            .into_iter()
            .map(|u| u.name.to_string())
            .collect())
    })
    .await
}

/// How long after the chat list the search index starts filling.
const SEARCH_INDEX_DELAY: std::time::Duration = std::time::Duration::from_secs(2);

#[tauri::command]
pub async fn list_chats(state: State<'_, AppState>) -> CommandResult<Vec<ChatSummaryDto>> {
    let (store, user) = state.signed_in()?;
    // A fresh watch sees every chat as changed: that is the full list, and it primes polls.
    let (chats, watch, summaries) = blocking(move || {
        let mut watch = ChatListWatch::default();
        let summaries = store.changed_chats(&user.key, &mut watch)?;
        let mut names = Names::new(&store, &user.key);
        let dtos = summaries.iter().map(|s| names.summary(s)).collect();
        // Messages are encrypted, so search reads them through the keys into an in-memory
        // index. Filling it in the background makes the first search as quick as later
        // ones; only after the list, and a moment later, so that it does not take the
        // cores from listing and drawing the chats at sign-in. A failure here only means
        // the first search does the work.
        std::thread::spawn(move || {
            std::thread::sleep(SEARCH_INDEX_DELAY);
            let _ = store.prepare_search(&user.key);
        });
        Ok((dtos, watch, summaries))
    })
    .await?;
    state.set_watch(watch);
    // What is there now never notifies.
    state.with_notified(|notified| notified.note(&summaries))?;
    Ok(chats)
}

#[tauri::command]
pub async fn create_dm(state: State<'_, AppState>, other: String) -> CommandResult<ChatSummaryDto> {
    let (store, user) = state.signed_in()?;
    writing(&state, move || {
        let chat = store.create_private_chat(&user.key, &other)?;
        let summary = store.chat_summary(&user.key, chat.id.as_str())?;
        Ok(Names::new(&store, &user.key).summary(&summary))
    })
    .await
}

#[tauri::command]
pub async fn create_group(
    state: State<'_, AppState>,
    name: String,
    members: Vec<String>,
) -> CommandResult<ChatSummaryDto> {
    let (store, user) = state.signed_in()?;
    writing(&state, move || {
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        let chat = store.create_group_chat(&user.key, &name, &members)?;
        let summary = store.chat_summary(&user.key, chat.id.as_str())?;
        Ok(Names::new(&store, &user.key).summary(&summary))
    })
    .await
}

#[tauri::command]
pub async fn open_chat(state: State<'_, AppState>, chat_id: String) -> CommandResult<ChatPageDto> {
    let (store, user) = state.signed_in()?;
    let receipts_on = state.preferences().send_read_receipts;
    blocking(move || {
        let view = store.get_chat(&user.key, &chat_id)?;
        let summary = store.chat_summary(&user.key, &chat_id)?;
        let mut names = Names::new(&store, &user.key);
        let receipts = match receipts_on {
            true => names.receipts(&store.receipts(&user.key, &chat_id)?),
            false => Vec::new(),
        };
        Ok(ChatPageDto {
            chat: names.summary(&summary),
            messages: names.messages(&view.page.messages),
            older_cursor: view.page.older.map(|k| k.to_cursor()),
            poll_cursor: view.cursor.encode(),
            receipts,
            changes: change_lines(&store, &user.key, &chat_id)?,
        })
    })
    .await
    .inspect(|page| state.show_images(&page.messages))
}

#[tauri::command]
pub async fn older_messages(
    state: State<'_, AppState>,
    chat_id: String,
    before: String,
) -> CommandResult<OlderDto> {
    let (store, user) = state.signed_in()?;
    blocking(move || {
        let before = EventKey::from_cursor(&before)?;
        let page = store.older_messages(&user.key, &chat_id, &before, PAGE_SIZE)?;
        Ok(OlderDto {
            messages: Names::new(&store, &user.key).messages(&page.messages),
            older_cursor: page.older.map(|k| k.to_cursor()),
        })
    })
    .await
    .inspect(|page| state.show_images(&page.messages))
}

#[tauri::command]
pub async fn send_text(
    state: State<'_, AppState>,
    chat_id: String,
    text: String,
) -> CommandResult<MessageDto> {
    let (store, user) = state.signed_in()?;
    writing(&state, move || {
        let event = store.append_message(&user.key, &chat_id, Some(&text), None)?;
        // Sent: no longer typing (a failure leaves a claim that runs out by itself).
        let _ = store.set_typing(&user.key, None);
        Ok(Names::new(&store, &user.key).sent(&event))
    })
    .await
}

/// The message a command names by its key (`<sender>/<id>`, as `MessageDto::key`).
fn message_target(key: &str) -> Result<Target, umer_chat_core::Error> {
    Target::parse_key(key).map_err(umer_chat_core::Error::InvalidArgument)
}

/// What the window shows for the message `event` is (a message) or is about (an edit, a
/// delete, a reaction), as the open chat has it folded now.
fn shown_after(store: &Store, user: &UserKey, chat_id: &str, event: &Event) -> Option<MessageDto> {
    let target = event.content.target().cloned().unwrap_or_else(|| Target {
        id: event.id.clone(),
        sender: event.sender.clone(),
    });
    let view = store
        .message_view(user, chat_id, &target)
        .ok()
        .flatten()
        .or_else(|| MessageView::lone(event))?;
    Some(Names::new(store, user).message(&view))
}

/// Answers the message `to` with `text`.
#[tauri::command]
pub async fn reply(
    state: State<'_, AppState>,
    chat_id: String,
    to: String,
    text: String,
) -> CommandResult<MessageDto> {
    let (store, user) = state.signed_in()?;
    writing(&state, move || {
        let content = Content::Message {
            text: Some(text),
            image: None,
            size: None,
            reply_to: Some(message_target(&to)?),
        };
        let event = store.append_content(&user.key, &chat_id, content)?;
        let _ = store.set_typing(&user.key, None);
        Ok(shown_after(&store, &user.key, &chat_id, &event)
            .unwrap_or_else(|| Names::new(&store, &user.key).sent(&event)))
    })
    .await
    .inspect(|m| state.show_images([m]))
}

/// Replaces the text of the user's own message.
#[tauri::command]
pub async fn edit_message(
    state: State<'_, AppState>,
    chat_id: String,
    message: String,
    text: String,
) -> CommandResult<Option<MessageDto>> {
    let (store, user) = state.signed_in()?;
    writing(&state, move || {
        let target = message_target(&message)?;
        let event = store.append_content(&user.key, &chat_id, Content::Edit { target, text })?;
        Ok(shown_after(&store, &user.key, &chat_id, &event))
    })
    .await
}

/// Deletes a message for everyone: the user's own, or in a group they created, anyone's.
#[tauri::command]
pub async fn delete_message(
    state: State<'_, AppState>,
    chat_id: String,
    message: String,
) -> CommandResult<Option<MessageDto>> {
    let (store, user) = state.signed_in()?;
    writing(&state, move || {
        let target = message_target(&message)?;
        let event = store.append_content(&user.key, &chat_id, Content::Delete { target })?;
        Ok(shown_after(&store, &user.key, &chat_id, &event))
    })
    .await
}

/// Hides a message on this device only ("delete for me"); the others still see it.
#[tauri::command]
pub async fn hide_message(
    state: State<'_, AppState>,
    chat_id: String,
    message: String,
) -> CommandResult<()> {
    let (store, user) = state.signed_in()?;
    blocking(move || {
        let target = message_target(&message)?;
        store.hide_for_me(&user.key, &chat_id, &target)?;
        Ok(())
    })
    .await
}

/// Adds (`on`) or takes back a reaction with `emoji`.
#[tauri::command]
pub async fn react(
    state: State<'_, AppState>,
    chat_id: String,
    message: String,
    emoji: String,
    on: bool,
) -> CommandResult<Option<MessageDto>> {
    let (store, user) = state.signed_in()?;
    writing(&state, move || {
        let target = message_target(&message)?;
        let content = if on {
            Content::React { target, emoji }
        } else {
            Content::Unreact { target, emoji }
        };
        let event = store.append_content(&user.key, &chat_id, content)?;
        Ok(shown_after(&store, &user.key, &chat_id, &event))
    })
    .await
}

#[tauri::command]
pub async fn send_image(
    state: State<'_, AppState>,
    chat_id: String,
    data_base64: String,
    text: Option<String>,
    original: Option<bool>,
) -> CommandResult<MessageDto> {
    let (store, user) = state.signed_in()?;
    check_base64_len(&data_base64)?;
    let size = if original == Some(true) {
        PhotoSize::Original
    } else {
        PhotoSize::Scaled
    };
    writing(&state, move || {
        let bytes = decode_base64(&data_base64)?;
        let image = store.save_image_sized(&user.key, &chat_id, &bytes, size)?;
        let event = store.append_message(&user.key, &chat_id, text.as_deref(), Some(&image))?;
        let _ = store.set_typing(&user.key, None);
        Ok(Names::new(&store, &user.key).sent(&event))
    })
    .await
    .inspect(|message| state.show_images([message]))
}

#[tauri::command]
pub async fn choose_image<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> CommandResult<Option<PickedImageDto>> {
    state.signed_in()?;
    blocking(move || {
        use tauri_plugin_dialog::DialogExt;
        let Some(picked) = app
            .dialog()
            .file()
            .add_filter("Images", &["png", "jpg", "jpeg", "gif", "webp"])
            .blocking_pick_file()
        else {
            return Ok(None);
        };
        let path = picked.into_path().map_err(|_| {
            CommandError::invalid(
                "This file cannot be opened here; paste or drop the image instead.",
            )
        })?;
        let bytes = std::fs::read(&path).map_err(|e| {
            CommandError::invalid(format!("Could not read {}: {e}", path.display()))
        })?;
        let kind = umer_chat_core::validate_image(&bytes)?;
        let preview = umer_chat_core::make_thumbnail(&bytes, PREVIEW_SIDE).ok();
        Ok(Some((kind, path, bytes, preview)))
    })
    .await?
    .map(|(kind, path, bytes, preview)| {
        let preview = match preview {
            Some((mime, thumb)) => Some(keep_preview(&state, mime, thumb)?),
            None => None,
        };
        Ok(PickedImageDto {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("image.{}", kind.ext)),
            mime: kind.mime,
            data_base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            preview,
        })
    })
    .transpose()
}

/// Keeps a small preview of an image attached in the composer for this session; gives the
/// `umer-image:` path that serves it. The bytes are only validated and scaled here; what
/// is sent is decided by `send_image`.
#[tauri::command]
pub async fn preview_image(
    state: State<'_, AppState>,
    data_base64: String,
) -> CommandResult<String> {
    state.signed_in()?;
    check_base64_len(&data_base64)?;
    let (mime, thumb) = blocking(move || {
        let bytes = decode_base64(&data_base64)?;
        Ok(umer_chat_core::make_thumbnail(&bytes, PREVIEW_SIDE)?)
    })
    .await?;
    keep_preview(&state, mime, thumb)
}

fn keep_preview(state: &AppState, mime: &'static str, thumb: Vec<u8>) -> CommandResult<String> {
    state
        .add_preview(mime, thumb)
        .map(|token| format!("preview/{token}"))
        .ok_or_else(CommandError::not_signed_in)
}

/// Refuses base64 too long for an image before decoding it: base64 is 4/3 of the bytes.
fn check_base64_len(data_base64: &str) -> CommandResult<()> {
    if data_base64.len() / 4 * 3 > MAX_IMAGE_BYTES + 3 {
        return Err(umer_chat_core::Error::ImageTooLarge {
            len: data_base64.len() / 4 * 3,
            max: MAX_IMAGE_BYTES,
        }
        .into());
    }
    Ok(())
}

fn decode_base64(data_base64: &str) -> CommandResult<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(data_base64.trim())
        .map_err(|_| CommandError::invalid("The image data is not valid base64."))
}

#[tauri::command]
pub async fn poll<R: Runtime>(
    app: AppHandle<R>,
    window: WebviewWindow<R>,
    state: State<'_, AppState>,
    chat_id: Option<String>,
    cursor: Option<String>,
) -> CommandResult<PollDto> {
    let (store, user) = state.signed_in()?;
    let mut watch = state.with_watch(std::mem::take)?;
    let mut notified = state.with_notified(std::mem::take)?;
    // Notify only while the user is elsewhere (unknown focus: assume they are here).
    let preferences = state.preferences();
    let away = !window.is_focused().unwrap_or(true);
    let look = state.live().take_look();
    let refresh_ms = state.live().beat_ms();
    let receipts_on = preferences.send_read_receipts;
    let user_key = user.key.clone();
    let (result, watch) = blocking(move || {
        let mut names = Names::new(&store, &user.key);
        let (messages, cursor, receipts, changes) = match (chat_id, cursor) {
            (Some(chat_id), Some(cursor)) => {
                let cursor = LogCursor::decode(&cursor)?;
                let (events, next) = store.poll(&user.key, &chat_id, &cursor)?;
                let receipts = match receipts_on {
                    true => names.receipts(&store.receipts(&user.key, &chat_id)?),
                    false => Vec::new(),
                };
                let changes = change_lines(&store, &user.key, &chat_id)?;
                let messages = names.messages(&events);
                (messages, Some(next.encode()), receipts, changes)
            }
            _ => (Vec::new(), None, Vec::new(), Vec::new()),
        };
        let changed = match look {
            Look::Everything => store.changed_chats(&user.key, &mut watch),
            Look::Only { mut chats, users } => store
                .chats_with_members(&user.key, &users)
                .and_then(|theirs| {
                    chats.extend(theirs);
                    store.changed_chats_among(&user.key, &mut watch, &chats)
                }),
        };
        let notices = match &changed {
            Ok(changed) => notified.notices(changed, &user.key, &preferences, &mut names),
            Err(_) => Vec::new(),
        };
        let chats = changed.map(|changed| changed.iter().map(|s| names.summary(s)).collect());
        let gone: Vec<String> = watch.take_gone().iter().map(|id| id.to_string()).collect();
        // Presence is a hint: a folder that cannot be listed shows nobody typing.
        let typing = names.typing(&store.typing_now(&user.key).unwrap_or_default());
        // The watch goes back even when listing failed, so the next poll is not a full one.
        Ok((
            chats.map(|chats| PollDto {
                messages,
                cursor,
                chats,
                typing,
                receipts,
                changes,
                refresh_ms,
                gone,
                connection: None,
            }),
            (watch, notified, notices),
        ))
    })
    .await?;
    let (watch, notified, notices) = watch;
    state.set_watch(watch);
    let _ = state.with_notified(|n| *n = notified);
    if away {
        notify::show(&app, &user_key, &notices);
    }
    let mut result = result.inspect_err(|_| state.live().poll_failed())?;
    state.show_images(&result.messages);
    result.connection = connection_dto(&state);
    Ok(result)
}

fn connection_dto(state: &AppState) -> Option<ConnectionDto> {
    let server = state.server()?;
    let status = state.connection()?;
    let user = state.user()?;
    Some(ConnectionDto {
        server,
        connected: status.connected,
        waiting: status.waiting,
        waiting_messages: status
            .waiting_ids
            .iter()
            .map(|id| format!("{}/{id}", user.key))
            .collect(),
        session_ended: status
            .problem
            .as_ref()
            .is_some_and(|problem| problem.code == "not_signed_in"),
        problem: status.problem.map(|problem| problem.message),
    })
}

/// The total unread count, for the window title ("(3) Umer Chat") and, where the platform
/// has one, the taskbar or dock badge.
#[tauri::command]
pub async fn set_unread_total<R: Runtime>(
    window: WebviewWindow<R>,
    total: u32,
) -> CommandResult<()> {
    let title = match total {
        0 => APP_TITLE.to_string(),
        n => format!("({n}) {APP_TITLE}"),
    };
    window.set_title(&title)?;
    // Unsupported on Windows and most Linux desktops: the title still says it. (Tauri has
    // no badge on Android; iOS would need the notification plugin's.)
    #[cfg(desktop)]
    let _ = window.set_badge_count((total > 0).then_some(i64::from(total)));
    Ok(())
}

/// How the caret blinks, where the UI should ask the app to rest it once the user has left it
/// alone (Linux, where WebKit blinks it for ever); `None` elsewhere, or when it does not blink.
#[tauri::command]
pub fn caret_blink() -> CommandResult<Option<CaretBlinkDto>> {
    #[cfg(target_os = "linux")]
    return Ok(crate::caret::blink());
    #[cfg(not(target_os = "linux"))]
    Ok(None)
}

/// Stops the caret's blink (the UI asks while the caret is shown), or starts it again (the
/// app also does on every key and click it sees; see `caret.rs`). Nothing where the caret is
/// not rested.
#[tauri::command]
pub fn set_caret_resting<R: Runtime>(app: AppHandle<R>, resting: bool) -> CommandResult<()> {
    #[cfg(target_os = "linux")]
    app.run_on_main_thread(move || {
        if resting {
            crate::caret::rest()
        } else {
            crate::caret::wake()
        }
    })?;
    #[cfg(not(target_os = "linux"))]
    let _ = (app, resting);
    Ok(())
}

/// Says the user is typing in `chat_id` (or, with none, stopped): a presence file others
/// see as "… is typing". Written at most every few seconds; nothing at all when the user
/// turned typing indicators off.
#[tauri::command]
pub async fn set_typing(state: State<'_, AppState>, chat_id: Option<String>) -> CommandResult<()> {
    let (store, user) = state.signed_in()?;
    if !state.preferences().send_typing_indicators {
        return Ok(());
    }
    blocking(move || {
        store.set_typing(&user.key, chat_id.as_deref())?;
        Ok(())
    })
    .await?;
    state.send_typing();
    Ok(())
}

/// This device's preferences.
#[tauri::command]
pub async fn preferences(state: State<'_, AppState>) -> CommandResult<PreferencesDto> {
    Ok((&state.preferences()).into())
}

/// Saves this device's preferences; answers with them as saved.
#[tauri::command]
pub async fn set_preferences(
    state: State<'_, AppState>,
    preferences: PreferencesDto,
) -> CommandResult<PreferencesDto> {
    state.set_preferences(preferences.into())?;
    Ok((&state.preferences()).into())
}

/// Signals on `on_change` whenever the data folder changes, so the UI polls at once.
/// Works signed in or not (a signal carries no content); the answer says whether changes
/// arrive live or only on the UI's timer.
#[tauri::command]
pub async fn subscribe_changes(
    state: State<'_, AppState>,
    on_change: Channel<ChangeSignal>,
) -> CommandResult<LiveStatus> {
    Ok(state.live().subscribe(on_change))
}

#[tauri::command]
pub async fn mark_read(state: State<'_, AppState>, chat_id: String) -> CommandResult<()> {
    let (store, user) = state.signed_in()?;
    writing(&state, move || Ok(store.mark_read(&user.key, &chat_id)?)).await
}

#[tauri::command]
pub async fn search(state: State<'_, AppState>, query: String) -> CommandResult<Vec<SearchHitDto>> {
    let (store, user) = state.signed_in()?;
    blocking(move || {
        let hits = store.search(&user.key, &query, SEARCH_LIMIT)?;
        let mut names = Names::new(&store, &user.key);
        hits.into_iter()
            .map(|hit| {
                // The record names the chat; a full summary would scan its logs per hit.
                let chat = store.member_chat(&user.key, hit.chat.as_str())?;
                Ok(SearchHitDto {
                    chat: hit.chat.to_string(),
                    chat_title: names.title(&chat),
                    message: names.message(&hit.message),
                })
            })
            .collect()
    })
    .await
    .inspect(|hits: &Vec<SearchHitDto>| state.show_images(hits.iter().map(|h| &h.message)))
}

/// `other`'s keys as this device sees them: fingerprint, safety number, changed, verified.
#[tauri::command]
pub async fn contact_keys(state: State<'_, AppState>, other: String) -> CommandResult<ContactDto> {
    let (store, user) = state.signed_in()?;
    blocking(move || Ok(store.contact_keys(&user.key, &other)?.into())).await
}

/// Accepts `other`'s keys after they changed: those with `fingerprint`, the one the Verify
/// view showed (`fingerprint_mismatch` if their record shows other keys by now).
#[tauri::command]
pub async fn trust_keys(
    state: State<'_, AppState>,
    other: String,
    fingerprint: String,
) -> CommandResult<ContactDto> {
    let (store, user) = state.signed_in()?;
    blocking(move || Ok(store.trust_keys(&user.key, &other, &fingerprint)?.into())).await
}

/// Marks `other`'s current keys as compared in person (or not), on this device; marking
/// them needs the `fingerprint` the Verify view showed.
#[tauri::command]
pub async fn set_verified(
    state: State<'_, AppState>,
    other: String,
    verified: bool,
    fingerprint: Option<String>,
) -> CommandResult<ContactDto> {
    let (store, user) = state.signed_in()?;
    blocking(move || {
        Ok(store
            .set_verified(&user.key, &other, verified, fingerprint.as_deref())?
            .into())
    })
    .await
}

/// Re-seals the signed-in user's keys under a new password; needs the current one.
#[tauri::command]
pub async fn change_password(
    state: State<'_, AppState>,
    old_password: String,
    new_password: String,
) -> CommandResult<()> {
    let (store, user) = state.signed_in()?;
    let server = state.server_device();
    let syncer = blocking(move || {
        let Some(server) = server else {
            store.change_password(user.key.as_str(), &old_password, &new_password)?;
            return Ok(None);
        };
        // The record and the server's sign-in key change together, or neither does.
        Ok(Some(server.change_password(
            &store,
            user.key.as_str(),
            &old_password,
            &new_password,
        )?))
    })
    .await?;
    // The server ended every session of the user; this device goes on with its new one.
    if let Some(syncer) = syncer {
        connect(&state, syncer);
    }
    Ok(())
}

/// The signed-in user's recovery key, after checking their password again.
#[tauri::command]
pub async fn show_recovery_key(
    state: State<'_, AppState>,
    password: String,
) -> CommandResult<String> {
    let (store, user) = state.signed_in()?;
    blocking(move || Ok(store.recovery_key(&user.key, &password)?)).await
}

/// Sets a new password with the recovery key, for a forgotten password, and signs in.
#[tauri::command]
pub async fn recover_account(
    state: State<'_, AppState>,
    username: String,
    recovery_key: String,
    new_password: String,
) -> CommandResult<SessionDto> {
    let server = state.server_device();
    sign_in_with(&state, move |store| {
        let Some(server) = server else {
            let user = store.recover_account(&username, &recovery_key, &new_password)?;
            return Ok(SignedIn::in_folder(store, user));
        };
        // The record and the server's sign-in key change together, or neither does.
        let (user, syncer) = server.recover(store, &username, &recovery_key, &new_password)?;
        Ok(SignedIn {
            user,
            recovery_key: None,
            syncer: Some(syncer),
        })
    })
    .await
}

#[tauri::command]
pub async fn startup_notice(state: State<'_, AppState>) -> CommandResult<Option<String>> {
    Ok(state.take_startup_notice())
}

/// What Settings' About shows: the app's version, the folder format it writes, and where
/// this device keeps the data folder and its own config.
#[tauri::command]
pub async fn about(state: State<'_, AppState>) -> CommandResult<AboutDto> {
    Ok(AboutDto {
        version: env!("CARGO_PKG_VERSION").to_string(),
        folder_format: umer_chat_core::format::FORMAT_VERSION,
        line_version: umer_chat_core::format::LINE_VERSION,
        data_folder: state.data_folder().display().to_string(),
        config_folder: state.config_folder().display().to_string(),
    })
}

/// Where this device's chats are: a folder, or a server (and the device's copy).
#[tauri::command]
pub async fn chats_place(state: State<'_, AppState>) -> CommandResult<PlaceDto> {
    Ok(place_dto(&state))
}

fn place_dto(state: &AppState) -> PlaceDto {
    PlaceDto {
        folder: state.data_folder().display().to_string(),
        server: state.server(),
        default_folder: state.default_data_folder().display().to_string(),
    }
}

/// Puts this device's chats on the server at `url`, and signs out. `http://` is taken only
/// to this machine, unless the person said so after being told why (`plain_http`):
/// anywhere else it carries the session in the clear.
#[tauri::command]
pub async fn set_server(
    state: State<'_, AppState>,
    url: String,
    allow_plain_http: bool,
) -> CommandResult<PlaceDto> {
    let url = umer_chat_sync::check_url(&url, allow_plain_http)?;
    let state = state.inner();
    let probe = umer_chat_sync::Remote::new(&url);
    blocking(move || Ok(probe.health()?)).await?;
    state.set_server(url)?;
    Ok(place_dto(state))
}

#[tauri::command]
pub async fn data_folder(state: State<'_, AppState>) -> CommandResult<String> {
    Ok(state.data_folder().display().to_string())
}

#[tauri::command]
pub async fn set_data_folder(state: State<'_, AppState>, path: String) -> CommandResult<String> {
    let path = PathBuf::from(path.trim());
    if !path.is_absolute() {
        return Err(CommandError::invalid(
            "Give the full path of the folder, e.g. /home/you/Sync/umer-chat.",
        ));
    }
    let state = state.inner();
    Ok(state.set_data_folder(path)?.display().to_string())
}

#[tauri::command]
pub async fn choose_data_folder<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
) -> CommandResult<Option<String>> {
    #[cfg(desktop)]
    {
        use tauri_plugin_dialog::DialogExt;
        let picked = blocking(move || Ok(app.dialog().file().blocking_pick_folder())).await?;
        let Some(picked) = picked else {
            return Ok(None);
        };
        let path = picked.into_path().map_err(|_| {
            CommandError::invalid("This folder cannot be used; pick a local folder.")
        })?;
        Ok(Some(state.set_data_folder(path)?.display().to_string()))
    }
    #[cfg(mobile)]
    {
        let _ = (app, state);
        Err(CommandError::invalid(
            "On phones the data folder is the app's own; share it from a desktop.",
        ))
    }
}

/// Exports a chat, decrypted, to a zip the user picks in a save dialog (the UI has asked
/// them first: the export is not encrypted). `None` when they cancelled.
#[tauri::command]
pub async fn export_chat<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    chat_id: String,
) -> CommandResult<Option<ExportDto>> {
    let (store, user) = state.signed_in()?;
    #[cfg(desktop)]
    {
        use tauri_plugin_dialog::DialogExt;
        let title = {
            let chat = store.member_chat(&user.key, &chat_id)?;
            Names::new(&store, &user.key).title(&chat)
        };
        let suggested = export_file_name(&title);
        let picked = blocking(move || {
            Ok(app
                .dialog()
                .file()
                .set_file_name(suggested)
                .add_filter("Zip archive", &["zip"])
                .blocking_save_file())
        })
        .await?;
        let Some(picked) = picked else {
            return Ok(None);
        };
        let path = picked
            .into_path()
            .map_err(|_| CommandError::invalid("Pick a file on this device to export to."))?;
        blocking(move || {
            let report = store.export_chat(&user.key, &chat_id, &path)?;
            Ok(Some(ExportDto {
                path: path.display().to_string(),
                messages: report.messages,
                photos: report.photos,
                missing_photos: report.missing_photos,
            }))
        })
        .await
    }
    #[cfg(mobile)]
    {
        let _ = (app, store, user, chat_id);
        Err(CommandError::invalid(
            "Exporting is not available on phones yet; export from a desktop.",
        ))
    }
}

/// A file name for a chat's export: its title, without characters file systems refuse.
#[cfg(desktop)]
fn export_file_name(title: &str) -> String {
    let clean: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == ' ' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(60)
        .collect();
    let clean = clean.trim();
    format!(
        "{} (Umer Chat).zip",
        if clean.is_empty() { "chat" } else { clean }
    )
}

/// Group `chat_id` as this device resolves it: its name, members (with admin marks), and
/// whom the signed-in user, if an admin, may add.
#[tauri::command]
pub async fn group_info(
    state: State<'_, AppState>,
    chat_id: String,
) -> CommandResult<GroupInfoDto> {
    let (store, user) = state.signed_in()?;
    blocking(move || group_info_of(&store, &user.key, &chat_id)).await
}

/// Makes one change to group `chat_id` as the signed-in user (who must be allowed to:
/// `not_allowed` otherwise), then gives the group as it is now. After `leave` the user is
/// no longer a member: the answer is `not_a_member`'s, and the chat goes from their list.
#[tauri::command]
pub async fn change_group(
    state: State<'_, AppState>,
    chat_id: String,
    change: GroupChangeDto,
) -> CommandResult<GroupInfoDto> {
    use umer_chat_core::membership::{Change, GroupName};
    let (store, user) = state.signed_in()?;
    writing(&state, move || {
        let person = || -> CommandResult<UserKey> {
            let name = change
                .user
                .as_deref()
                .ok_or_else(|| CommandError::invalid("Say whom the change is about."))?;
            Ok(store.get_user(name)?.key)
        };
        let change = match change.kind.as_str() {
            "add" => Change::Add { user: person()? },
            "remove" => Change::Remove { user: person()? },
            "leave" => Change::Leave,
            "make_admin" => Change::MakeAdmin { user: person()? },
            "remove_admin" => Change::RemoveAdmin { user: person()? },
            "rename" => Change::Rename {
                name: GroupName::Plain(change.name.clone().unwrap_or_default()),
            },
            other => {
                return Err(CommandError::invalid(format!(
                    "{other:?} is not a change a group knows."
                )))
            }
        };
        store.change_group(&user.key, &chat_id, change)?;
        group_info_of(&store, &user.key, &chat_id)
    })
    .await
}

/// Deletes group `chat_id`, which the signed-in user left or was removed from, from this
/// device: local state only.
#[tauri::command]
pub async fn delete_left_group(state: State<'_, AppState>, chat_id: String) -> CommandResult<()> {
    let (store, user) = state.signed_in()?;
    blocking(move || Ok(store.delete_left_group(&user.key, &chat_id)?)).await
}

/// The lines group `chat_id`'s timeline shows about its changes (none for a DM).
fn change_lines(store: &Store, me: &UserKey, chat_id: &str) -> CommandResult<Vec<ChangeLineDto>> {
    Ok(store
        .group_changes(me, chat_id)?
        .into_iter()
        .map(ChangeLineDto::from)
        .collect())
}

fn group_info_of(store: &Store, me: &UserKey, chat_id: &str) -> CommandResult<GroupInfoDto> {
    let group = store.group_membership(me, chat_id)?;
    let state = group.state();
    let mut members: Vec<GroupMemberDto> = state
        .members
        .iter()
        .map(|key| GroupMemberDto {
            key: key.to_string(),
            name: store.display_name(key),
            admin: state.admins.contains(key),
            creator: *key == state.creator,
            me: key == me,
        })
        .collect();
    members.sort_by_key(|m| (!m.me, m.name.to_lowercase()));
    let i_am_admin = state.admins.contains(me);
    let mut others: Vec<PersonDto> = match i_am_admin {
        true => store
            .list_users()?
            .into_iter()
            .filter(|u| !state.members.contains(&u.key))
            .map(|u| PersonDto {
                key: u.key.to_string(),
                name: u.name.to_string(),
            })
            .collect(),
        false => Vec::new(),
    };
    others.sort_by_key(|p| p.name.to_lowercase());
    Ok(GroupInfoDto {
        id: chat_id.to_string(),
        name: group.name.clone(),
        members,
        i_am_admin,
        others,
    })
}
