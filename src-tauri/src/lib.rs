//! Umer Chat, the Tauri app: a window over `umer-chat-core`.
//!
//! [`builder`] is generic over the runtime, so tests drive the same commands through
//! `tauri::test::mock_builder()`.

mod commands;
mod dto;
mod error;
mod state;

use tauri::{Manager, Runtime};

pub use error::CommandError;
pub use state::AppState;

/// Every command the UI may call; the capability file grants exactly these.
#[macro_export]
macro_rules! app_commands {
    () => {
        tauri::generate_handler![
            $crate::commands::session,
            $crate::commands::signup,
            $crate::commands::login,
            $crate::commands::logout,
            $crate::commands::username_available,
            $crate::commands::list_users,
            $crate::commands::list_chats,
            $crate::commands::create_dm,
            $crate::commands::create_group,
            $crate::commands::open_chat,
            $crate::commands::older_messages,
            $crate::commands::send_text,
            $crate::commands::send_image,
            $crate::commands::choose_image,
            $crate::commands::image_data,
            $crate::commands::poll,
            $crate::commands::mark_read,
            $crate::commands::search,
            $crate::commands::startup_notice,
            $crate::commands::data_folder,
            $crate::commands::set_data_folder,
            $crate::commands::choose_data_folder,
        ]
    };
}

/// The app without a context: plugins and commands. State is added by the caller.
pub fn builder<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .plugin(tauri_plugin_dialog::init())
        .invoke_handler(app_commands!())
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    builder(tauri::Builder::default())
        .setup(|app| {
            let paths = app.path();
            // Desktop honours $UMER_CHAT_CONFIG_DIR (tests, several devices on one machine);
            // the OS folders come from Tauri's resolver, which is also right on mobile.
            let config_dir = match std::env::var_os(umer_chat_core::config::CONFIG_DIR_ENV) {
                Some(dir) => dir.into(),
                None => paths.app_config_dir()?,
            };
            let state = AppState::open(&config_dir, paths.app_data_dir()?)?;
            app.manage(state);
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("error while running Umer Chat");
}

#[cfg(test)]
mod tests;
