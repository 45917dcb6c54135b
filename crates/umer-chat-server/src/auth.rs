//! Sign-up, pre-login, sign-in and sessions (FORMAT.md, "Signing in to a server"). The
//! server never sees a password or anything that opens keys: a client proves its password
//! with `server_auth_key`, which the server keeps only as an Argon2id hash, and receives the
//! sealed keys only once it has.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use umer_chat_core::crypto::{SEAL_LANES, SEAL_MEMORY_KIB, SEAL_PASSES};
use umer_chat_core::door;
use umer_chat_core::ids::now_ms;
use umer_chat_core::password::{self, StoredPassword};
use umer_chat_core::wire::{Prelogin, SessionAnswer};
use umer_chat_core::{DeviceId, UserKey};

use crate::db::{Database, NewSession, NewUser, SessionRow, SignUp};
use crate::error::{ApiError, ApiResult, JsonBody};
use crate::net::Peer;
use crate::push::Push;
use crate::Server;

/// Failed sign-ins of one account that are allowed in [`FAILURE_WINDOW_MS`].
pub const ACCOUNT_FAILURES_ALLOWED: i64 = 10;
/// Failed sign-ins from one address that are allowed in [`FAILURE_WINDOW_MS`].
pub const ADDRESS_FAILURES_ALLOWED: u32 = 30;
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Devices one account may be signed in on at once; a new sign-in past it ends the session
/// seen least recently. The server keeps read markers of as many devices per account, so a
/// client cannot put files of made-up devices in everyone's folder without end.
pub const MAX_DEVICES_PER_USER: usize = 32;

/// Who a request comes from: a live session's user and device.
#[derive(Debug, Clone)]
pub struct Signed {
    pub user: UserKey,
    pub device: DeviceId,
    pub session: SessionRow,
}

impl<D: Database> FromRequestParts<Arc<Server<D>>> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, server: &Arc<Server<D>>) -> ApiResult<Signed> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| ApiError::unauthorized("Sign in first: no session was given."))?;
        let session = server
            .db
            .session(&token_hash(token), now_ms())
            .await?
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "This session has ended (signed out, revoked or expired); sign in again.",
                )
            })?;
        let user = UserKey::parse(&session.user_key).map_err(|_| ApiError::internal())?;
        let device = DeviceId::parse(&session.device).map_err(|_| ApiError::internal())?;
        Ok(Signed {
            user,
            device,
            session,
        })
    }
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn parse_user(name: &str) -> ApiResult<UserKey> {
    UserKey::of(name).map_err(|e| ApiError::bad_request("bad_username", e.to_string()))
}

fn parse_device(device: &str) -> ApiResult<DeviceId> {
    DeviceId::parse(device).map_err(|_| {
        ApiError::bad_request("bad_device", "A device id is 16 lowercase hex characters.")
    })
}

/// `GET /v1/prelogin/{user}`. For a name nobody has, the answer is made up the same way
/// every time (an HMAC of the name under the server's secret), so it does not say who exists.
pub async fn prelogin<D: Database>(
    State(server): State<Arc<Server<D>>>,
    Path(name): Path<String>,
) -> ApiResult<Json<Prelogin>> {
    let key = parse_user(&name)?;
    if let Some(row) = server.db.user(key.as_str()).await? {
        let checked = door::check_user_record(&row.record).map_err(|_| ApiError::internal())?;
        let sealed = checked.sealed;
        if let (Some(m), Some(t), Some(p), Some(salt)) = (sealed.m, sealed.t, sealed.p, sealed.salt)
        {
            return Ok(Json(Prelogin {
                kdf: sealed.kdf,
                m,
                t,
                p,
                salt,
                changes: row.password_changes,
            }));
        }
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(&server.secret).expect("HMAC takes any key");
    mac.update(b"umer-chat/prelogin\0");
    mac.update(key.as_str().as_bytes());
    let made_up = mac.finalize().into_bytes();
    Ok(Json(Prelogin {
        kdf: "argon2id".into(),
        m: SEAL_MEMORY_KIB,
        t: SEAL_PASSES,
        p: SEAL_LANES,
        salt: STANDARD.encode(&made_up[..16]),
        changes: 0,
    }))
}

#[derive(Debug, Deserialize)]
pub struct SignUpRequest {
    /// `users/<key>.json`, its exact bytes as text.
    pub record: String,
    /// `server_auth_key`, base64 (32 bytes).
    pub auth_key: String,
    pub device: String,
}

fn auth_key_text(raw: &str) -> ApiResult<String> {
    match STANDARD.decode(raw) {
        Ok(bytes) if bytes.len() == 32 => Ok(STANDARD.encode(bytes)),
        _ => Err(ApiError::bad_request(
            "bad_auth_key",
            "The sign-in key is 32 bytes in base64.",
        )),
    }
}

/// The sign-in key as its canonical base64 (what is hashed) and as its bytes (what is signed).
fn auth_key_bytes(raw: &str) -> ApiResult<(String, [u8; 32])> {
    let text = auth_key_text(raw)?;
    let bytes = STANDARD
        .decode(&text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(ApiError::internal)?;
    Ok((text, bytes))
}

/// Argon2id on a blocking thread (it takes tens of milliseconds of a core and 19 MiB), at
/// most one per core at a time: a flood of sign-ins waits its turn rather than take every
/// core and gigabytes of memory.
async fn hashing<D: Database, T: Send + 'static>(
    server: &Server<D>,
    work: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    let _turn = server
        .hashing
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| ApiError::internal())
}

/// `POST /v1/users`: a new account from its record, made by the client, and its sign-in key.
pub async fn sign_up<D: Database>(
    State(server): State<Arc<Server<D>>>,
    JsonBody(request): JsonBody<SignUpRequest>,
) -> ApiResult<(StatusCode, Json<SessionAnswer>)> {
    let device = parse_device(&request.device)?;
    let auth_key = auth_key_text(&request.auth_key)?;
    let record = request.record.into_bytes();
    let checked = door::check_user_record(&record)?;
    let auth_hash = hashing(&server, move || password::hash(&auth_key)).await?;
    let skeletons = checked.name.skeletons();
    let outcome = server
        .db
        .sign_up(NewUser {
            key: checked.key.as_str(),
            record: &record,
            sign_key: &checked.public.sign_b64(),
            dh_key: &checked.public.dh_b64(),
            auth_hash: &auth_hash,
            skeletons: &skeletons,
            now: now_ms(),
        })
        .await?;
    match outcome {
        SignUp::Created => {}
        SignUp::Taken => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "username_taken",
                format!("The name {} is taken.", checked.name),
            ))
        }
        SignUp::LooksLike(existing) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "username_confusable",
                format!(
                    "The name {} looks too much like {existing}'s; choose another.",
                    checked.name
                ),
            ))
        }
    }
    tracing::info!(user = %checked.key, "signed up");
    let answer = new_session(&server, &checked.key, &device, None).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn new_session<D: Database>(
    server: &Server<D>,
    user: &UserKey,
    device: &DeviceId,
    record: Option<String>,
) -> ApiResult<SessionAnswer> {
    let mut token = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut token);
    let token = URL_SAFE_NO_PAD.encode(token);
    let mut id = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let id = URL_SAFE_NO_PAD.encode(id);
    let now = now_ms();
    server
        .db
        .create_session(NewSession {
            token_hash: &token_hash(&token),
            id: &id,
            user_key: user.as_str(),
            device: device.as_str(),
            now,
            expires_at: now.saturating_add(server.config.session_lifetime_ms),
        })
        .await?;
    let mut live = server.db.sessions_of(user.as_str(), now).await?;
    if live.len() > MAX_DEVICES_PER_USER {
        live.sort_by_key(|session| (session.last_seen, session.created_at));
        for oldest in &live[..live.len() - MAX_DEVICES_PER_USER] {
            if oldest.id != id
                && server
                    .db
                    .revoke_session(user.as_str(), &oldest.id, now)
                    .await?
            {
                let id = oldest.id.clone();
                server
                    .db
                    .publish(&server.hub, Push::SessionEnded { id })
                    .await?;
            }
        }
    }
    Ok(SessionAnswer {
        session: token,
        session_id: id,
        user: user.to_string(),
        record,
    })
}

#[derive(Debug, Deserialize)]
pub struct SignInRequest {
    pub user: String,
    pub device: String,
    pub auth_key: String,
}

fn too_many(message: &str) -> ApiError {
    let mut error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message);
    error.retry_after = Some((FAILURE_WINDOW_MS / 1000) as u64);
    error
}

/// `POST /v1/sessions`: proves the password with its sign-in key and opens a session for
/// one device; the answer carries the user's whole record, to open with the password.
pub async fn sign_in<D: Database>(
    State(server): State<Arc<Server<D>>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    JsonBody(request): JsonBody<SignInRequest>,
) -> ApiResult<(StatusCode, Json<SessionAnswer>)> {
    let now = now_ms();
    let address = peer.ip();
    if server.address_failures(address, now) >= ADDRESS_FAILURES_ALLOWED {
        return Err(too_many(
            "Too many failed sign-ins from this address; wait a quarter of an hour.",
        ));
    }
    let key = parse_user(&request.user)?;
    let device = parse_device(&request.device)?;
    let auth_key = auth_key_text(&request.auth_key)?;
    let window_start = now - FAILURE_WINDOW_MS;
    if server.db.failures(key.as_str(), window_start).await? >= ACCOUNT_FAILURES_ALLOWED {
        return Err(too_many(
            "Too many failed sign-ins to this account; wait a quarter of an hour.",
        ));
    }
    let row = server.db.user(key.as_str()).await?;
    if row.as_ref().is_some_and(|r| r.auth_hash.is_empty()) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "unclaimed",
            "This account came from a shared folder: claim it once with its keys.",
        ));
    }
    // An unknown name costs the same hash as a wrong password, and gets the same answer.
    let stored = row
        .as_ref()
        .map_or_else(|| server.decoy_hash.clone(), |r| r.auth_hash.clone());
    let proved = hashing(&server, move || {
        password::verify(&auth_key, &StoredPassword::Phc(stored)).is_some()
    })
    .await?;
    let Some(row) = row.filter(|_| proved) else {
        server
            .db
            .add_failure(key.as_str(), now, window_start)
            .await?;
        server.add_address_failure(address, now);
        tracing::info!(user = %key, %address, "sign-in refused");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong_password",
            "That name and password do not match an account here.",
        ));
    };
    server.db.clear_failures(key.as_str()).await?;
    let record = String::from_utf8(row.record).map_err(|_| ApiError::internal())?;
    tracing::info!(user = %key, "signed in");
    let answer = new_session(&server, &key, &device, Some(record)).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub device: String,
    pub created_at: i64,
    pub last_seen: i64,
    pub expires_at: i64,
    /// The session this request came with.
    pub current: bool,
}

/// `GET /v1/sessions`: the signed-in user's live sessions, one per device signed in.
pub async fn sessions<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
) -> ApiResult<Json<Vec<SessionInfo>>> {
    let rows = server
        .db
        .sessions_of(signed.user.as_str(), now_ms())
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|row| SessionInfo {
                current: row.id == signed.session.id,
                id: row.id,
                device: row.device,
                created_at: row.created_at,
                last_seen: row.last_seen,
                expires_at: row.expires_at,
            })
            .collect(),
    ))
}

/// `DELETE /v1/sessions/{id}`: ends one of the user's sessions (`current` for this one).
pub async fn revoke<D: Database>(
    State(server): State<Arc<Server<D>>>,
    signed: Signed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = if id == "current" {
        signed.session.id.clone()
    } else {
        id
    };
    if server
        .db
        .revoke_session(signed.user.as_str(), &id, now_ms())
        .await?
    {
        server
            .db
            .publish(&server.hub, Push::SessionEnded { id })
            .await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "You have no such session.",
        ))
    }
}

/// Failed sign-ins per address, in this process's memory (an address is one process's
/// concern; an account's count is in the database, for every process).
#[derive(Default)]
pub struct AddressFailures(std::sync::Mutex<std::collections::HashMap<IpAddr, (i64, u32)>>);

impl AddressFailures {
    pub fn count(&self, address: IpAddr, now: i64) -> u32 {
        let map = self.0.lock().expect("address failures");
        map.get(&address)
            .filter(|(start, _)| now - start < FAILURE_WINDOW_MS)
            .map_or(0, |(_, n)| *n)
    }

    pub fn add(&self, address: IpAddr, now: i64) {
        let mut map = self.0.lock().expect("address failures");
        // Bounded: a flood from many addresses costs a reset, not memory.
        if map.len() >= 100_000 {
            map.retain(|_, (start, _)| now - *start < FAILURE_WINDOW_MS);
        }
        let entry = map.entry(address).or_insert((now, 0));
        if now - entry.0 >= FAILURE_WINDOW_MS {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}

/// `GET /v1/users/{user}/unclaimed`: the whole record of an account imported from a folder
/// and not claimed yet, as the folder gave it to everyone who shared it; nothing once
/// claimed.
pub async fn unclaimed<D: Database>(
    State(server): State<Arc<Server<D>>>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = parse_user(&name)?;
    match server.db.user(key.as_str()).await? {
        Some(row) if row.auth_hash.is_empty() => {
            let record = String::from_utf8(row.record).map_err(|_| ApiError::internal())?;
            Ok(Json(serde_json::json!({ "record": record })))
        }
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_unclaimed",
            "There is no unclaimed account of that name.",
        )),
    }
}

/// `GET /v1/users/{user}/recovery`: the record without `sealed`, with `recovery`, for a
/// device that resets a forgotten password and has never signed in (the recovery key is 32
/// random bytes, so handing its seal out gives nothing to guess from, as a folder hands
/// it to everyone who shares it). The new password then goes as any new password does.
pub async fn recovery<D: Database>(
    State(server): State<Arc<Server<D>>>,
    Path(name): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let key = parse_user(&name)?;
    let Some(row) = server.db.user(key.as_str()).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_user",
            format!("There is no account {name:?} on this server."),
        ));
    };
    let record = door::recoverable_user_record(&row.record)?;
    let record = String::from_utf8(record).map_err(|_| ApiError::internal())?;
    Ok(Json(serde_json::json!({ "record": record })))
}

#[derive(Debug, Deserialize)]
pub struct ClaimRequest {
    pub user: String,
    pub device: String,
    pub auth_key: String,
    /// The identity key's signature over `door::claim_message(user, auth_key)`.
    pub sig: String,
}

#[derive(Deserialize)]
pub struct PasswordRequest {
    pub device: String,
    /// The user's whole record, its `sealed` now opened by the new password.
    pub record: String,
    /// The new password's sign-in key (base64).
    pub auth_key: String,
    /// One more than the new passwords the server has taken for this user.
    pub change: i64,
    /// The identity key's signature over `door::password_message`.
    pub sig: String,
}

/// `POST /v1/users/{user}/password`: a new password (changed, or set anew with the recovery
/// key). The identity key proves it, so neither a session nor the old password is needed;
/// the record keeps its keys, and the change's number is the next one, so an old change
/// cannot be sent again. Every session of the user ends; the device that sent it gets a
/// new one.
pub async fn set_password<D: Database>(
    State(server): State<Arc<Server<D>>>,
    Path(user): Path<String>,
    JsonBody(request): JsonBody<PasswordRequest>,
) -> ApiResult<Json<SessionAnswer>> {
    let key = parse_user(&user)?;
    let device = parse_device(&request.device)?;
    let (auth_key_b64, auth_key) = auth_key_bytes(&request.auth_key)?;
    let refused = |why: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_password_change",
            format!("That new password is refused: {why}."),
        )
    };
    let row = server
        .db
        .user(key.as_str())
        .await?
        .filter(|row| !row.auth_hash.is_empty())
        .ok_or_else(|| refused("there is no such signed-up account"))?;
    let record = request.record.into_bytes();
    let checked = door::check_user_record(&record)?;
    if checked.key != key
        || checked.public.sign_b64() != row.sign_key
        || checked.public.dh_b64() != row.dh_key
    {
        return Err(refused("the record is not this account's, with its keys"));
    }
    let keys = umer_chat_core::crypto::PublicKeys::from_b64(&row.sign_key, &row.dh_key)
        .ok_or_else(ApiError::internal)?;
    let change = u64::try_from(request.change).map_err(|_| refused("no such change"))?;
    if request.change != row.password_changes + 1 {
        return Err(refused(
            "it is not the next change (it was sent before, or another came first)",
        ));
    }
    if !door::check_password_change(&key, change, &auth_key, &record, &request.sig, &keys) {
        return Err(refused("it is not signed with the account's key"));
    }
    let auth_hash = hashing(&server, move || password::hash(&auth_key_b64)).await?;
    if !server
        .db
        .set_password(key.as_str(), &record, &auth_hash, request.change)
        .await?
    {
        return Err(refused("another change came first"));
    }
    for id in server.db.revoke_sessions(key.as_str(), now_ms()).await? {
        server
            .db
            .publish(&server.hub, Push::SessionEnded { id })
            .await?;
    }
    tracing::info!(user = %key, "set a new password");
    let record = String::from_utf8(record).map_err(|_| ApiError::internal())?;
    let answer = new_session(&server, &key, &device, Some(record)).await?;
    Ok(Json(answer))
}

/// `POST /v1/claims`: the owner of an imported account sets its sign-in key, proving it with
/// the identity key only the password opens; then signed in as at sign-in.
pub async fn claim<D: Database>(
    State(server): State<Arc<Server<D>>>,
    JsonBody(request): JsonBody<ClaimRequest>,
) -> ApiResult<(StatusCode, Json<SessionAnswer>)> {
    let key = parse_user(&request.user)?;
    let device = parse_device(&request.device)?;
    let (auth_key_b64, auth_key) = auth_key_bytes(&request.auth_key)?;
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_claim",
            "That claim is not signed with the account's key, or the account is claimed.",
        )
    };
    let row = server.db.user(key.as_str()).await?.ok_or_else(refused)?;
    let keys = umer_chat_core::crypto::PublicKeys::from_b64(&row.sign_key, &row.dh_key)
        .ok_or_else(ApiError::internal)?;
    if !row.auth_hash.is_empty() || !door::check_claim(&key, &auth_key, &request.sig, &keys) {
        return Err(refused());
    }
    let auth_hash = hashing(&server, move || password::hash(&auth_key_b64)).await?;
    if !server.db.claim_user(key.as_str(), &auth_hash).await? {
        return Err(refused());
    }
    tracing::info!(user = %key, "claimed an imported account");
    let record = String::from_utf8(row.record).map_err(|_| ApiError::internal())?;
    let answer = new_session(&server, &key, &device, Some(record)).await?;
    Ok((StatusCode::CREATED, Json(answer)))
}
