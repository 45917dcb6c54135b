//! What a failed command sends to the UI: `{ code, message }`.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct CommandError {
    pub code: &'static str,
    pub message: String,
}

pub type CommandResult<T> = Result<T, CommandError>;

impl CommandError {
    pub fn not_signed_in() -> Self {
        CommandError {
            code: "not_signed_in",
            message: "You are signed out. Log in again.".into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        CommandError {
            code: "invalid_argument",
            message: message.into(),
        }
    }
}

impl From<umer_chat_core::Error> for CommandError {
    fn from(e: umer_chat_core::Error) -> Self {
        CommandError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<tauri::Error> for CommandError {
    fn from(e: tauri::Error) -> Self {
        CommandError {
            code: "internal",
            message: format!("Something went wrong inside the app: {e}"),
        }
    }
}

impl From<umer_chat_sync::SyncError> for CommandError {
    fn from(e: umer_chat_sync::SyncError) -> Self {
        // The codes a person acts on pass as they are; the others are the server's refusals,
        // whose message says which.
        const PASSED: &[&str] = &[
            "unreachable",
            "wrong_password",
            "username_taken",
            "username_confusable",
            "bad_username",
            "too_many_attempts",
            "not_signed_in",
            "bad_server",
            "unknown_user",
            "wrong_recovery_key",
            "plain_http",
            "io",
        ];
        CommandError {
            code: PASSED
                .iter()
                .find(|code| **code == e.code)
                .copied()
                .unwrap_or("server_refused"),
            message: e.message,
        }
    }
}
