//! The server's HTTP API as a client speaks it (`docs/server.md`). Every refusal comes back
//! as the server's `{code, message}`; anything else that goes wrong is `unreachable`.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
pub use umer_chat_core::wire::{LinesPage, Prelogin, SessionAnswer as Session, StoredLine};

/// A refusal or failure, as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncError {
    pub code: String,
    pub message: String,
}

impl SyncError {
    pub fn new(code: &str, message: impl Into<String>) -> SyncError {
        SyncError {
            code: code.to_string(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl From<umer_chat_core::Error> for SyncError {
    fn from(error: umer_chat_core::Error) -> SyncError {
        SyncError::new(error.code(), error.to_string())
    }
}

pub type SyncResult<T> = Result<T, SyncError>;

/// Whether `url` may be used: `https://` anywhere, `http://` only to this machine (where
/// nothing travels over a network) unless `allow_plain` says so.
pub fn check_url(url: &str, allow_plain: bool) -> SyncResult<String> {
    let url = url.trim().trim_end_matches('/').to_string();
    let (plain, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => {
            return Err(SyncError::new(
                "bad_server",
                "A server's address starts with https:// (or http:// on this machine).",
            ))
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // A user name in the address (`http://127.0.0.1@elsewhere`) would make what is checked
    // here another host than the one connected to; and an address is all it should be.
    let odd = |c: char| c == '@' || c == '\\' || c.is_whitespace() || c.is_control();
    if authority.is_empty() || url.chars().any(odd) {
        return Err(SyncError::new(
            "bad_server",
            "That is not a server's address (https://host or https://host:port).",
        ));
    }
    if !plain {
        return Ok(url);
    }
    let host = authority;
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback || allow_plain {
        Ok(url)
    } else {
        Err(SyncError::new(
            "plain_http",
            format!(
                "{url} is plain http: anyone on the network could read the session and block \
                 the messages (they stay encrypted). Use https://, or allow plain http on purpose."
            ),
        ))
    }
}

/// One server, with or without a session.
#[derive(Clone)]
pub struct Remote {
    pub base: String,
    pub token: Option<String>,
    agent: ureq::Agent,
    /// Requests made so far (shared by clones), for the sync report.
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// A chat in `GET /v1/chats`.
#[derive(Debug, Deserialize)]
pub struct ChatListing {
    pub id: String,
    pub record: String,
    /// Changes other than lines so far (membership, keys, photos, members' read markers).
    pub changes: i64,
    /// The sequence number of its last line.
    pub last_seq: i64,
}

#[derive(Debug, Deserialize)]
pub struct Named {
    #[serde(alias = "key", alias = "id", alias = "name", alias = "file")]
    pub name: String,
    #[serde(alias = "line")]
    pub record: String,
}

impl Remote {
    pub fn new(base: &str) -> Remote {
        Remote {
            base: base.trim_end_matches('/').to_string(),
            token: None,
            // No redirect is followed: the session would go wherever it pointed.
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .redirects(0)
                .build(),
            requests: Default::default(),
        }
    }

    /// How many requests this remote (and its clones) has made.
    pub fn requests_made(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn with_token(mut self, token: &str) -> Remote {
        self.token = Some(token.to_string());
        self
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = self.agent.request(method, &format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }

    fn answer<T: DeserializeOwned>(result: Result<ureq::Response, ureq::Error>) -> SyncResult<T> {
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                // A refusal is small; more is not read.
                let mut bytes = Vec::new();
                let _ = std::io::Read::read_to_end(
                    &mut std::io::Read::take(response.into_reader(), 64 * 1024),
                    &mut bytes,
                );
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                return Err(SyncError::new(
                    body["code"].as_str().unwrap_or("server_error"),
                    body["message"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("The server answered {status}.")),
                ));
            }
            Err(e) => {
                return Err(SyncError::new(
                    "unreachable",
                    format!("The server cannot be reached ({e})."),
                ))
            }
        };
        if response.status() == 204 {
            return serde_json::from_value(Value::Null)
                .map_err(|e| SyncError::new("bad_answer", e.to_string()));
        }
        let text = response
            .into_string()
            .map_err(|e| SyncError::new("unreachable", e.to_string()))?;
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_str(text).map_err(|e| {
            SyncError::new(
                "bad_answer",
                format!("The server's answer is not understood ({e})."),
            )
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> SyncResult<T> {
        Self::answer(self.request("GET", path).call())
    }

    fn send<T: DeserializeOwned>(&self, method: &str, path: &str, body: Value) -> SyncResult<T> {
        Self::answer(self.request(method, path).send_json(body))
    }

    /// Whether an Umer Chat server answers at this address (`/healthz`).
    pub fn health(&self) -> SyncResult<()> {
        let not_one = || {
            SyncError::new(
                "bad_server",
                "That address answers, but not as an Umer Chat server.",
            )
        };
        match self.request("GET", "/healthz").call() {
            Ok(response) => {
                let body = response.into_string().map_err(|_| not_one())?;
                (body.trim() == "ok").then_some(()).ok_or_else(not_one)
            }
            Err(ureq::Error::Status(..)) => Err(not_one()),
            Err(e) => Err(SyncError::new(
                "unreachable",
                format!("The server cannot be reached ({e})."),
            )),
        }
    }

    pub fn prelogin(&self, user: &str) -> SyncResult<Prelogin> {
        self.get(&format!("/v1/prelogin/{}", encode_path(user)))
    }

    pub fn sign_up(&self, record: &str, auth_key: &[u8; 32], device: &str) -> SyncResult<Session> {
        let body =
            json!({"record": record, "auth_key": STANDARD.encode(auth_key), "device": device});
        self.send("POST", "/v1/users", body)
    }

    pub fn sign_in(&self, user: &str, auth_key: &[u8; 32], device: &str) -> SyncResult<Session> {
        let body = json!({"user": user, "auth_key": STANDARD.encode(auth_key), "device": device});
        self.send("POST", "/v1/sessions", body)
    }

    /// The whole record of an account imported from a folder and not claimed yet.
    pub fn unclaimed(&self, user: &str) -> SyncResult<String> {
        self.record_at(&format!("/v1/users/{}/unclaimed", encode_path(user)))
    }

    /// A user's record without `sealed`, with `recovery`: what a forgotten password is reset
    /// from on a device that has not signed in before.
    pub fn recovery(&self, user: &str) -> SyncResult<String> {
        self.record_at(&format!("/v1/users/{}/recovery", encode_path(user)))
    }

    fn record_at(&self, path: &str) -> SyncResult<String> {
        let answer: Value = self.get(path)?;
        answer["record"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| SyncError::new("bad_answer", "The server sent no record."))
    }

    /// `POST /v1/users/{user}/password`: a new password, proved by the identity key.
    pub fn set_password(
        &self,
        user: &str,
        device: &str,
        record: &[u8],
        auth_key: &[u8; 32],
        change: i64,
        sig: &str,
    ) -> SyncResult<Session> {
        let body = json!({
            "device": device,
            "record": String::from_utf8_lossy(record),
            "auth_key": STANDARD.encode(auth_key),
            "change": change,
            "sig": sig,
        });
        self.send(
            "POST",
            &format!("/v1/users/{}/password", encode_path(user)),
            body,
        )
    }

    /// Claims an imported account: sets its sign-in key, signed with its identity key.
    pub fn claim(
        &self,
        user: &str,
        device: &str,
        auth_key: &[u8; 32],
        sig: &str,
    ) -> SyncResult<Session> {
        let body = json!({
            "user": user,
            "device": device,
            "auth_key": STANDARD.encode(auth_key),
            "sig": sig,
        });
        self.send("POST", "/v1/claims", body)
    }

    pub fn sign_out(&self) -> SyncResult<()> {
        Self::answer::<Value>(self.request("DELETE", "/v1/sessions/current").call()).map(|_| ())
    }

    /// Every user's public record.
    pub fn directory(&self) -> SyncResult<Vec<Named>> {
        self.get("/v1/users")
    }

    /// The directory, unless it is the one tagged `known` (`None` then), with its tag.
    pub fn directory_if_changed(
        &self,
        known: Option<&str>,
    ) -> SyncResult<Option<(Vec<Named>, Option<String>)>> {
        let mut request = self.request("GET", "/v1/users");
        if let Some(tag) = known {
            request = request.set("If-None-Match", tag);
        }
        let result = request.call();
        if let Ok(response) = &result {
            if response.status() == 304 {
                return Ok(None);
            }
        }
        let tag = result
            .as_ref()
            .ok()
            .and_then(|response| response.header("ETag"))
            .map(str::to_string);
        Ok(Some((Self::answer(result)?, tag)))
    }

    /// The chats the user is in, with their records, and how far each has got.
    pub fn chats(&self) -> SyncResult<Vec<ChatListing>> {
        self.get("/v1/chats")
    }

    pub fn put_chat(&self, chat: &str, record: &str) -> SyncResult<()> {
        self.send::<Value>(
            "PUT",
            &format!("/v1/chats/{chat}"),
            json!({"record": record}),
        )
        .map(|_| ())
    }

    pub fn post_lines(&self, chat: &str, lines: &[String]) -> SyncResult<Vec<i64>> {
        #[derive(Deserialize)]
        struct Appended {
            seqs: Vec<i64>,
        }
        let answer: Appended = self.send(
            "POST",
            &format!("/v1/chats/{chat}/lines"),
            json!({"lines": lines}),
        )?;
        Ok(answer.seqs)
    }

    pub fn lines_after(&self, chat: &str, after: i64) -> SyncResult<LinesPage> {
        self.get(&format!("/v1/chats/{chat}/lines?after={after}"))
    }

    /// A group's membership lines, by file.
    pub fn membership(&self, chat: &str) -> SyncResult<Vec<Named>> {
        self.get(&format!("/v1/chats/{chat}/members"))
    }

    pub fn post_membership(&self, chat: &str, lines: &[String]) -> SyncResult<()> {
        self.send::<Value>(
            "POST",
            &format!("/v1/chats/{chat}/members"),
            json!({"lines": lines}),
        )
        .map(|_| ())
    }

    pub fn key_epochs(&self, chat: &str) -> SyncResult<Vec<Named>> {
        self.get(&format!("/v1/chats/{chat}/keys"))
    }

    pub fn put_key_epoch(&self, chat: &str, name: &str, record: &str) -> SyncResult<()> {
        self.send::<Value>(
            "PUT",
            &format!("/v1/chats/{chat}/keys/{name}"),
            json!({"record": record}),
        )
        .map(|_| ())
    }

    /// The read markers of a chat's members, `[{name: "<user>/<device>.json", record}]`.
    pub fn read_markers(&self, chat: &str) -> SyncResult<Vec<Named>> {
        self.get(&format!("/v1/chats/{chat}/reads"))
    }

    pub fn put_read_markers(&self, device: &str, bytes: &[u8]) -> SyncResult<()> {
        let request = self
            .request("PUT", &format!("/v1/reads/{device}"))
            .set("Content-Type", "application/json");
        Self::answer::<Value>(request.send_bytes(bytes)).map(|_| ())
    }

    pub fn image_names(&self, chat: &str) -> SyncResult<Vec<String>> {
        self.get(&format!("/v1/chats/{chat}/images"))
    }

    pub fn put_image(&self, chat: &str, name: &str, bytes: &[u8]) -> SyncResult<()> {
        let request = self
            .request("PUT", &format!("/v1/chats/{chat}/images/{name}"))
            .set("Content-Type", "application/octet-stream");
        Self::answer::<Value>(request.send_bytes(bytes)).map(|_| ())
    }

    pub fn image(&self, chat: &str, name: &str, max: u64) -> SyncResult<Vec<u8>> {
        let response = match self
            .request("GET", &format!("/v1/chats/{chat}/images/{name}"))
            .call()
        {
            Ok(response) => response,
            Err(e) => return Self::answer::<Value>(Err(e)).map(|_| Vec::new()),
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader().take(max + 1), &mut bytes)
            .map_err(|e| SyncError::new("unreachable", e.to_string()))?;
        if bytes.len() as u64 > max {
            return Err(SyncError::new(
                "bad_answer",
                "The server sent an image too big to be one.",
            ));
        }
        Ok(bytes)
    }
}

use std::io::Read as _;

/// `text` as one segment of a URL's path.
pub fn encode_path(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn plain_http_goes_only_to_this_machine_unless_allowed() {
        assert!(check_url("https://chat.example.org/", false).is_ok());
        assert!(check_url("http://127.0.0.1:8470", false).is_ok());
        assert!(check_url("http://localhost:8470", false).is_ok());
        assert!(check_url("http://[::1]:8470", false).is_ok());
        let refused = check_url("http://chat.example.org", false).unwrap_err();
        assert_eq!(refused.code, "plain_http");
        assert!(check_url("http://192.168.1.4:8470", false).is_err());
        assert!(check_url("http://127.0.0.1.example.org", false).is_err());
        assert!(check_url("http://192.168.1.4:8470", true).is_ok());
        assert_eq!(check_url("ftp://x", true).unwrap_err().code, "bad_server");
        // What is checked is the host connected to: no user name in front of another.
        for sly in [
            "http://127.0.0.1:80@evil.example",
            "http://localhost@evil.example:8470",
            "https://user@chat.example.org",
            "http://127.0.0.1 .evil.example",
            "https://",
        ] {
            assert_eq!(
                check_url(sly, false).unwrap_err().code,
                "bad_server",
                "{sly}"
            );
        }
    }
}
