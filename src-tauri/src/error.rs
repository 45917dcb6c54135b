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
