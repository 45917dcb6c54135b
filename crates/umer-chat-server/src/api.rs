//! The directory, chats and lines. Everything a client stores passes the core's door
//! (`umer_chat_core::door`) first; everything it reads is of chats it is a member of.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use umer_chat_core::crypto::PublicKeys;
use umer_chat_core::door;
use umer_chat_core::format::{log_file_name, ChatRecordFile};
use umer_chat_core::groups::{parse_membership_line, with_ops};
use umer_chat_core::ids::now_ms;
use umer_chat_core::wire::{LinesPage, StoredLine};
use umer_chat_core::{ChatId, ChatKind, ChatRecord, DeviceId, UserKey};

use crate::auth::Signed;
use crate::db::{ChatFile, Database, LineRow, NewLine, WriteOnce};
use crate::error::{ApiError, ApiResult, JsonBody, QueryOf};
use crate::push::Push;
use crate::Server;

/// Lines one request may carry, and lines one page gives.
pub const MAX_LINES_PER_REQUEST: usize = 500;
pub const MAX_LINES_PER_PAGE: i64 = 1000;

#[derive(Debug, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub key: String,
    /// `users/<key>.json` without its sealed keys (`door::public_user_record`).
    pub record: String,
}

/// `GET /v1/users`: every user's public record.
pub async fn directory<D: Database>(
    State(server): State<Arc<Server<D>>>,
    _signed: Signed,
    headers: axum::http::HeaderMap,
) -> ApiResult<axum::response::Response> {
    use axum::http::header::{CONTENT_TYPE, ETAG, IF_NONE_MATCH};
    use axum::response::IntoResponse;
    let mut out = Vec::new();
    for row in server.db.users().await? {
        let public = door::public_user_record(&row.record).map_err(|_| ApiError::internal())?;
        out.push(DirectoryEntry {
            key: row.key,
            record: String::from_utf8(public).map_err(|_| ApiError::internal())?,
        });
    }
    // A device syncs the directory at every round; unchanged, it is not sent again.
    let body = serde_json::to_vec(&out).expect("the directory serialises");
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&body);
    let tag: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    let tag = format!("\"{tag}\"");
    if headers
        .get(IF_NONE_MATCH)
        .is_some_and(|asked| asked.as_bytes() == tag.as_bytes())
    {
        return Ok((StatusCode::NOT_MODIFIED, [(ETAG, tag)]).into_response());
    }
    Ok((
        [(ETAG, tag), (CONTENT_TYPE, "application/json".to_string())],
        body,
    )
        .into_response())
}

async fn public_keys<D: Database>(
    server: &Server<D>,
    user: &UserKey,
) -> ApiResult<Option<PublicKeys>> {
    Ok(server
        .db
        .user(user.as_str())
        .await?
        .and_then(|row| PublicKeys::from_b64(&row.sign_key, &row.dh_key)))
}

fn parse_chat_id(id: &str) -> ApiResult<ChatId> {
    ChatId::parse(id).map_err(|_| ApiError::no_such_chat(id))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RecordBody {
    /// The file's exact bytes, as text.
    pub record: String,
}

/// `PUT /v1/chats/{id}`: a chat's record, written once, by a member (a group's by its
/// creator). Sending the same bytes again is a success that changes nothing.
pub async fn put_chat<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RecordBody>,
) -> ApiResult<StatusCode> {
    let id = ChatId::parse(&id)
        .map_err(|_| ApiError::bad_request("bad_chat_id", "That is not a chat id."))?;
    let author_keys = public_keys(&server, &signed.user).await?;
    let record = door::check_chat_record(body.record.as_bytes(), &id, &signed.user, |user| {
        (user == &signed.user).then_some(author_keys).flatten()
    })?;
    for member in &record.members {
        if server.db.user(member.as_str()).await?.is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_user",
                format!("{member} has no account on this server."),
            ));
        }
    }
    let members: Vec<String> = record.members.iter().map(|m| m.to_string()).collect();
    written_once(
        &server,
        &id,
        server
            .db
            .create_chat(id.as_str(), body.record.as_bytes(), &members, now_ms())
            .await?,
        &format!("Chat {id}'s record"),
        // A new chat: who is in it.
        true,
    )
    .await
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChatEntry {
    pub id: String,
    pub record: String,
    /// Changes other than lines so far: a device that saw this many has nothing else to
    /// fetch of the chat but lines.
    pub changes: i64,
    /// The sequence number of the chat's last line.
    pub last_seq: i64,
}

/// `GET /v1/chats`: the chats the user is in, with their records.
pub async fn chats<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
) -> ApiResult<Json<Vec<ChatEntry>>> {
    let rows = server.db.member_chats(signed.user.as_str()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(ChatEntry {
            id: row.id,
            record: String::from_utf8(row.record).map_err(|_| ApiError::internal())?,
            changes: row.changes,
            last_seq: row.last_seq,
        });
    }
    Ok(Json(out))
}

/// The chat `id` with its record, when `user` is a member of it.
async fn member_chat<D: Database>(
    server: &Server<D>,
    user: &UserKey,
    id: &str,
) -> ApiResult<ChatRecord> {
    let chat = parse_chat_id(id)?;
    if !server.db.is_member(chat.as_str(), user.as_str()).await? {
        return Err(ApiError::no_such_chat(id));
    }
    resolved_chat(server, &chat).await
}

/// A stored chat's record with its stored membership changes applied, as every reader
/// applies them (their signatures were checked at the door).
async fn resolved_chat<D: Database>(server: &Server<D>, chat: &ChatId) -> ApiResult<ChatRecord> {
    let bytes = server
        .db
        .chat(chat.as_str())
        .await?
        .ok_or_else(|| ApiError::no_such_chat(chat.as_str()))?;
    let record = parse_stored_record(&bytes).ok_or_else(ApiError::internal)?;
    if record.kind != ChatKind::Group {
        return Ok(record);
    }
    let mut ops = Vec::new();
    for (sender, device, line) in server.db.membership_lines(chat.as_str()).await? {
        let (Ok(sender), Ok(device)) = (UserKey::parse(&sender), DeviceId::parse(&device)) else {
            return Err(ApiError::internal());
        };
        // Checked at the door against the clock then; only the shape is read again.
        if let Ok(parsed) = parse_membership_line(&line, chat, &sender, &device, i64::MAX / 2) {
            ops.push(parsed.found);
        }
    }
    Ok(with_ops(&record, &ops))
}

/// A record the door accepted before.
fn parse_stored_record(bytes: &[u8]) -> Option<ChatRecord> {
    ChatRecordFile::split(bytes).ok()?.parse().ok()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LinesBody {
    /// Log lines, each without its newline.
    pub lines: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Appended {
    /// Each line's sequence number in the chat, in the order sent.
    pub seqs: Vec<i64>,
}

/// `POST /v1/chats/{id}/lines`: lines of the signed-in user's device, in order. Every line
/// is checked before any is stored: one refused line refuses the request, and nothing of
/// it is kept. A line sent again keeps its first number.
pub async fn append<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<LinesBody>,
) -> ApiResult<Json<Appended>> {
    let (chat, checked) = check_lines(&server, &signed, &id, &body, door::check_line).await?;
    let mut seqs = Vec::with_capacity(checked.len());
    for (line, checked) in body.lines.iter().zip(&checked) {
        let seq = server
            .db
            .append_line(NewLine {
                chat: chat.id.as_str(),
                sender: checked.sender.as_str(),
                device: checked.device.as_str(),
                id: &checked.id,
                month: &checked.month,
                bytes: line.as_bytes(),
            })
            .await?;
        seqs.push(seq);
    }
    if let Some(&seq) = seqs.iter().max() {
        let push = Push::Line {
            chat: chat.id.to_string(),
            seq,
        };
        server.db.publish(&server.hub, push).await?;
    }
    Ok(Json(Appended { seqs }))
}

#[derive(Debug, Deserialize)]
pub struct LinesQuery {
    #[serde(default)]
    pub after: i64,
    pub limit: Option<i64>,
}

/// `GET /v1/chats/{id}/lines?after=SEQ&limit=N`: the chat's lines after a cursor.
pub async fn lines<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(id): Path<String>,
    QueryOf(query): QueryOf<LinesQuery>,
) -> ApiResult<Json<LinesPage>> {
    let chat = member_chat(&server, &signed.user, &id).await?;
    let limit = query
        .limit
        .unwrap_or(MAX_LINES_PER_PAGE)
        .clamp(1, MAX_LINES_PER_PAGE);
    let rows = server
        .db
        .lines_after(chat.id.as_str(), query.after.max(0), limit)
        .await?;
    let next = rows.last().map_or(query.after.max(0), |row| row.seq);
    Ok(Json(LinesPage {
        lines: stored_lines(rows)?,
        next,
    }))
}

/// Stored lines as a client gets them, with where each goes in a folder.
pub fn stored_lines<R: std::borrow::Borrow<LineRow>>(
    rows: impl IntoIterator<Item = R>,
) -> ApiResult<Vec<StoredLine>> {
    let mut lines = Vec::new();
    for row in rows {
        let row = row.borrow();
        let (Ok(sender), Ok(device)) = (UserKey::parse(&row.sender), DeviceId::parse(&row.device))
        else {
            return Err(ApiError::internal());
        };
        lines.push(StoredLine {
            seq: row.seq,
            month: row.month.clone(),
            file: log_file_name(&sender, &device),
            line: std::str::from_utf8(&row.bytes)
                .map_err(|_| ApiError::internal())?
                .to_string(),
        });
    }
    Ok(lines)
}

/// Tells every socket (of every process) that something of `chat` other than its lines
/// changed; `members` when who is in it may have (each socket then asks the database).
async fn changed<D: Database>(server: &Server<D>, chat: &ChatId, members: bool) -> ApiResult<()> {
    server.db.count_change(chat.as_str()).await?;
    let push = Push::Changed {
        chat: chat.to_string(),
        members,
    };
    Ok(server.db.publish(&server.hub, push).await?)
}

/// `POST /v1/chats/{id}/members`: lines of the signed-in device's membership file of a
/// group, each a signed change; all are checked before any is stored. The group's members
/// are then resolved again, as every reader resolves them.
pub async fn change_members<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<LinesBody>,
) -> ApiResult<Json<Value>> {
    let (chat, checked) =
        check_lines(&server, &signed, &id, &body, door::check_membership_line).await?;
    for (line, found) in body.lines.iter().zip(&checked) {
        server
            .db
            .add_membership_line(
                chat.id.as_str(),
                &found.op.id,
                signed.user.as_str(),
                signed.device.as_str(),
                line.as_bytes(),
            )
            .await?;
    }
    let now_members: Vec<String> = resolved_chat(&server, &chat.id)
        .await?
        .current_members()
        .iter()
        .map(|m| m.to_string())
        .collect();
    server
        .db
        .replace_members(chat.id.as_str(), &now_members)
        .await?;
    changed(&server, &chat.id, true).await?;
    Ok(Json(json!({"members": now_members})))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MembershipFile {
    /// `<user>.<device>.jsonl`
    pub file: String,
    pub line: String,
}

/// `GET /v1/chats/{id}/members`: every membership line of a group, by file.
pub async fn membership<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<MembershipFile>>> {
    let chat = member_chat(&server, &signed.user, &id).await?;
    let mut out = Vec::new();
    for (sender, device, line) in server.db.membership_lines(chat.id.as_str()).await? {
        let (Ok(sender), Ok(device)) = (UserKey::parse(&sender), DeviceId::parse(&device)) else {
            return Err(ApiError::internal());
        };
        out.push(MembershipFile {
            file: log_file_name(&sender, &device),
            line: String::from_utf8(line).map_err(|_| ApiError::internal())?,
        });
    }
    Ok(Json(out))
}

/// `PUT /v1/chats/{id}/keys/{name}`: a key epoch (`<kid>.json`), written once, by its maker.
pub async fn put_key_epoch<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path((id, name)): Path<(String, String)>,
    JsonBody(body): JsonBody<RecordBody>,
) -> ApiResult<StatusCode> {
    let chat = member_chat(&server, &signed.user, &id).await?;
    let keys = own_keys(&server, &signed.user).await?;
    door::check_key_epoch(body.record.as_bytes(), &name, &chat, &signed.user, &keys)?;
    written_once(
        &server,
        &chat.id,
        server
            .db
            .put_file(
                ChatFile::KeyEpoch,
                chat.id.as_str(),
                &name,
                body.record.as_bytes(),
            )
            .await?,
        &name,
        false,
    )
    .await
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NamedRecord {
    pub name: String,
    pub record: String,
}

/// `GET /v1/chats/{id}/keys`: the chat's key epochs.
pub async fn key_epochs<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<NamedRecord>>> {
    let chat = member_chat(&server, &signed.user, &id).await?;
    let mut out = Vec::new();
    for name in server
        .db
        .file_names(ChatFile::KeyEpoch, chat.id.as_str())
        .await?
    {
        if let Some(bytes) = server
            .db
            .file(ChatFile::KeyEpoch, chat.id.as_str(), &name)
            .await?
        {
            out.push(NamedRecord {
                name,
                record: String::from_utf8(bytes).map_err(|_| ApiError::internal())?,
            });
        }
    }
    Ok(Json(out))
}

/// `PUT /v1/chats/{id}/images/{name}`: a sealed image (`<sha256>.enc`, its bytes as the
/// body), by a member; the name must be the hash of the bytes, so it is written once.
pub async fn put_image<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path((id, name)): Path<(String, String)>,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let chat = member_chat(&server, &signed.user, &id).await?;
    if name != umer_chat_core::sealed_image_name(&bytes) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_image",
            "An image's name is the SHA-256 of its sealed bytes, then .enc.",
        ));
    }
    if umer_chat_core::crypto::image_kid(&bytes).is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_image",
            "That is not a sealed image.",
        ));
    }
    written_once(
        &server,
        &chat.id,
        server
            .db
            .put_file(ChatFile::Image, chat.id.as_str(), &name, &bytes)
            .await?,
        &name,
        false,
    )
    .await
}

/// `GET /v1/chats/{id}/images/{name}`: a sealed image's bytes.
pub async fn image<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path((id, name)): Path<(String, String)>,
) -> ApiResult<Vec<u8>> {
    let chat = member_chat(&server, &signed.user, &id).await?;
    server
        .db
        .file(ChatFile::Image, chat.id.as_str(), &name)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "image_not_found",
                "There is no such image in this chat.",
            )
        })
}

/// `GET /v1/chats/{id}/images`: the names of the chat's images.
pub async fn image_names<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<String>>> {
    let chat = member_chat(&server, &signed.user, &id).await?;
    Ok(Json(
        server
            .db
            .file_names(ChatFile::Image, chat.id.as_str())
            .await?,
    ))
}

/// The answer to a write-once store of something of `chat`; a new one is pushed to the
/// chat's sockets (of every process) as a change, and so is one sent again: the first
/// sending may have stored it and failed before counting the change (a retry is how a
/// client finds out), and a change counted twice costs a device one more look.
async fn written_once<D: Database>(
    server: &Server<D>,
    chat: &ChatId,
    outcome: WriteOnce,
    name: &str,
    members: bool,
) -> ApiResult<StatusCode> {
    if outcome != WriteOnce::Different {
        changed(server, chat, members).await?;
    }
    match outcome {
        WriteOnce::Created => Ok(StatusCode::CREATED),
        WriteOnce::Same => Ok(StatusCode::OK),
        WriteOnce::Different => Err(ApiError::new(
            StatusCode::CONFLICT,
            "record_exists",
            format!("{name} is stored already with other bytes; it is written once."),
        )),
    }
}

/// The chat `id` (for a member) and each line of `body` checked by `check`, in order; the
/// first refusal refuses them all.
async fn check_lines<D: Database, T>(
    server: &Server<D>,
    signed: &Signed,
    id: &str,
    body: &LinesBody,
    check: impl Fn(&[u8], &ChatRecord, door::Writer<'_>, i64) -> Result<T, door::Refusal>,
) -> ApiResult<(ChatRecord, Vec<T>)> {
    if body.lines.len() > MAX_LINES_PER_REQUEST {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_lines",
            format!("Send at most {MAX_LINES_PER_REQUEST} lines at once."),
        ));
    }
    let chat = member_chat(server, &signed.user, id).await?;
    let keys = own_keys(server, &signed.user).await?;
    let writer = door::Writer {
        user: &signed.user,
        device: &signed.device,
        keys: &keys,
    };
    let now = now_ms();
    let checked = body
        .lines
        .iter()
        .map(|line| check(line.as_bytes(), &chat, writer, now))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((chat, checked))
}

async fn own_keys<D: Database>(server: &Server<D>, user: &UserKey) -> ApiResult<PublicKeys> {
    public_keys(server, user)
        .await?
        .ok_or_else(ApiError::internal)
}

/// `PUT /v1/reads/{device}`: the signed-in device's read markers (`reads/<user>/<device>.json`,
/// its bytes as the body), replaced whole. Each chat they name that the user is in is told.
pub async fn put_read_markers<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(device): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    if device != signed.device.as_str() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_device",
            "Read markers are sent by their own device.",
        ));
    }
    let keys = own_keys(&server, &signed.user).await?;
    let writer = door::Writer {
        user: &signed.user,
        device: &signed.device,
        keys: &keys,
    };
    let chats = door::check_read_markers(&bytes, writer)?;
    server
        .db
        .put_read_markers(
            signed.user.as_str(),
            signed.device.as_str(),
            &bytes,
            now_ms(),
            crate::auth::MAX_DEVICES_PER_USER as i64,
        )
        .await?;
    for chat in chats {
        if server
            .db
            .is_member(chat.as_str(), signed.user.as_str())
            .await?
        {
            changed(&server, &chat, false).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/chats/{id}/reads`: the read markers of the chat's members now, as
/// `[{name: "<user>/<device>.json", record}]`.
pub async fn read_markers<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<NamedRecord>>> {
    let chat = member_chat(&server, &signed.user, &id).await?;
    let mut out = Vec::new();
    for (user, device, bytes) in server.db.members_read_markers(chat.id.as_str()).await? {
        out.push(NamedRecord {
            name: format!("{user}/{device}.json"),
            record: String::from_utf8(bytes).map_err(|_| ApiError::internal())?,
        });
    }
    Ok(Json(out))
}
