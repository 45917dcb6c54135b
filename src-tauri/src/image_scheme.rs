//! The `umer-image:` URI scheme: image bytes reach the webview as plain HTTP responses, not
//! as base64 through `invoke`.
//!
//! - `/<session>/<chat id>/<image name>`: the full image (the viewer);
//! - `/<session>/<chat id>/<image name>?thumb=<px>`: a thumbnail whose long side is at most
//!   `px` (16..=1280), made once by the core and cached, sealed, in the app's cache folder;
//! - `/<session>/preview/<token>`: the small preview of an image attached in the composer.
//!
//! `<session>` is the signed-in session's random image token, so that a URL WebKit still
//! holds from an earlier session (its cache outlives a sign-out) names nothing later.
//!
//! It serves only while a user is signed in, and only an image of a message this session
//! was given in that very chat (`Session::shown_images`); anything else gets a short text
//! 403 or 404, never bytes. WebKitGTK asks for `umer-image://localhost/...`, Windows and
//! Android for `http://umer-image.localhost/...`; only the path and query matter here.

use std::path::Path;

use tauri::http::{header, Request, Response, StatusCode};

use crate::state::AppState;

/// The scheme's name, as registered and as the CSP's `img-src` names it.
pub const SCHEME: &str = "umer-image";

/// Names are content hashes: a response never changes, and only this session sees it.
pub const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

/// How many image requests are served at once: about the cores of a phone or laptop. A
/// chat asks for dozens at once. Opening a full image only decrypts it; thumbnails, which
/// decode (up to 256 MiB each), are made one at a time by the core (`make_thumbnail`).
pub static WORKERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// The long side of the composer's preview of an attached image.
pub const PREVIEW_SIDE: u32 = 320;

/// Answers one request of the scheme for the session in `state`. `cache_dir` holds the
/// thumbnails (sealed with each chat's key). Blocking: call it off the main thread.
pub fn serve(state: &AppState, cache_dir: &Path, request: &Request<Vec<u8>>) -> Response<Vec<u8>> {
    if request.method() != tauri::http::Method::GET && request.method() != tauri::http::Method::HEAD
    {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, "Only GET is served.");
    }
    let Ok((store, user)) = state.signed_in() else {
        return refuse(StatusCode::FORBIDDEN, "Not signed in.");
    };
    let path = request.uri().path();
    let mut parts = path.trim_start_matches('/').split('/');
    let (Some(token), Some(first), Some(second), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return refuse(StatusCode::NOT_FOUND, "No such image.");
    };
    if state.image_token().as_deref() != Some(token) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This image link is from another session.",
        );
    }
    if first == "preview" {
        return match state.preview(second) {
            Some((mime, bytes)) => image(mime, bytes),
            None => refuse(StatusCode::NOT_FOUND, "No such preview."),
        };
    }
    let (chat, name) = (first, second);
    if !umer_chat_core::is_image_name(name) {
        return refuse(StatusCode::NOT_FOUND, "No such image.");
    }
    if state.chat_showing_image(name).as_deref() != Some(chat) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This image is not in a message of this chat that you were shown.",
        );
    }
    let thumb = match thumb_size(request.uri().query()) {
        Ok(thumb) => thumb,
        Err(()) => return refuse(StatusCode::BAD_REQUEST, "thumb must be a number of pixels."),
    };
    let result = match thumb {
        Some(px) => store.image_thumbnail(&user.key, chat, name, px, cache_dir),
        None => store.image_bytes(&user.key, chat, name),
    };
    match result {
        Ok((mime, bytes)) => image(mime, bytes),
        Err(e) => {
            let status = match e.code() {
                "not_a_member" | "chat_not_found" | "not_signed_in" => StatusCode::FORBIDDEN,
                "image_not_found" | "invalid_argument" => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            refuse(status, &e.to_string())
        }
    }
}

/// `thumb=<px>` from a query string: `Ok(None)` without one.
fn thumb_size(query: Option<&str>) -> Result<Option<u32>, ()> {
    let Some(query) = query else { return Ok(None) };
    let mut thumb = None;
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("thumb=") {
            thumb = Some(value.parse::<u32>().map_err(|_| ())?);
        }
    }
    Ok(thumb)
}

fn image(mime: &str, bytes: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, mime)
        .header(header::CACHE_CONTROL, CACHE_CONTROL)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(bytes)
        .expect("a valid response")
}

/// The answer while the app is still starting (no state yet).
pub fn unavailable() -> Response<Vec<u8>> {
    refuse(StatusCode::SERVICE_UNAVAILABLE, "The app is starting.")
}

fn refuse(status: StatusCode, message: &str) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(message.as_bytes().to_vec())
        .expect("a valid response")
}
