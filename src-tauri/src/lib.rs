//! Umer Chat, the Tauri app: a window over `umer-chat-core`.
//!
//! [`builder`] is generic over the runtime, so tests drive the same commands through
//! `tauri::test::mock_builder()`.

#[cfg(target_os = "linux")]
mod caret;
mod commands;
mod dto;
mod error;
pub mod image_scheme;
mod live;
mod memory;
mod notify;
mod state;

use tauri::{Manager, Runtime};

pub use error::CommandError;
pub use state::AppState;

/// A command as `command_list.rs` declares it.
#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    /// `(name, type)` of each argument, as the Rust function takes it.
    pub args: &'static [(&'static str, &'static str)],
    pub result: &'static str,
}

macro_rules! app_command_list {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $result:ty;)*) => {
        /// Every command the UI may call, from `command_list.rs`.
        pub const COMMANDS: &[CommandSpec] = &[$(CommandSpec {
            name: stringify!($name),
            args: &[$((stringify!($arg), stringify!($ty))),*],
            result: stringify!($result),
        }),*];

        /// The invoke handler of exactly the declared commands.
        fn invoke_handler<R: Runtime>() -> impl Fn(tauri::ipc::Invoke<R>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$(commands::$name),*]
        }
    };
}
include!("command_list.rs");

/// The app without a context: plugins and commands. State is added by the caller.
pub fn builder<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_notification::init())
        .invoke_handler(invoke_handler())
        .register_asynchronous_uri_scheme_protocol(
            image_scheme::SCHEME,
            |ctx, request, responder| {
                // Decrypting and scaling take a while: never on the main thread, and a few at a
                // time (a photo decodes to tens of megabytes; a chat asks for dozens at once).
                let app = ctx.app_handle().clone();
                tauri::async_runtime::spawn(async move {
                    let _turn = image_scheme::WORKERS.acquire().await;
                    let response = tauri::async_runtime::spawn_blocking(move || {
                        match app.try_state::<AppState>() {
                            Some(state) => {
                                image_scheme::serve(&state, &thumbnail_dir(&app), &request)
                            }
                            None => image_scheme::unavailable(),
                        }
                    })
                    .await
                    .unwrap_or_else(|_| image_scheme::unavailable());
                    responder.respond(response);
                });
            },
        )
}

/// Where thumbnails are cached: `<app cache>/thumbnails`, local to this device (sealed
/// with each chat's key, like the images in the shared folder).
fn thumbnail_dir<R: Runtime>(app: &tauri::AppHandle<R>) -> std::path::PathBuf {
    app.path()
        .app_cache_dir()
        .unwrap_or_else(|_| std::env::temp_dir().join("umer-chat-cache"))
        .join("thumbnails")
}

#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    #[cfg(target_os = "linux")]
    avoid_software_gl_compositing();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    memory::give_large_blocks_back_to_the_os();
    builder(tauri::Builder::default())
        .setup(|app| {
            let paths = app.path();
            // Desktop honours $UMER_CHAT_CONFIG_DIR (tests, several devices on one machine);
            // the OS folders come from Tauri's resolver, which is also right on mobile.
            let config_dir = match std::env::var_os(umer_chat_core::config::CONFIG_DIR_ENV) {
                Some(dir) => dir.into(),
                None => paths.app_config_dir()?,
            };
            // The chat data lives in a subfolder of the app-data folder, which is also
            // WebKit's; data an older version kept beside WebKit's files is moved there.
            let state = AppState::open_in_app_data(&config_dir, paths.app_data_dir()?)?;
            state.use_thumbnail_cache(thumbnail_dir(app.handle()));
            app.manage(state);
            notify::open_chats_on_click(app.handle());
            #[cfg(target_os = "linux")]
            if let Some(window) = app.get_webview_window("main") {
                memory::keep_no_unused_images(&window)?;
                window.with_webview(|webview| caret::install(&webview.inner()))?;
            }
            Ok(())
        })
        .run(tauri::generate_context!())
        .expect("error while running Umer Chat");
}

/// WebKitGTK composites pages with OpenGL. On a machine with no GPU (a VM, a remote or
/// virtual display) that OpenGL is Mesa's llvmpipe, which draws every frame on the CPU:
/// there, each caret blink cost about 20 ms of CPU, and an idle window with the composer
/// focused used 2.5 CPU-seconds a minute (BENCHMARKS.md). WebKit's non-composited path
/// draws the same pages for a fifth of that. So without a usable DRM render node, use it,
/// unless the user set `WEBKIT_DISABLE_COMPOSITING_MODE` themselves. Machines with a GPU
/// are unchanged.
#[cfg(target_os = "linux")]
fn avoid_software_gl_compositing() {
    const VAR: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
    let has_render_node = std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            entry.file_name().to_string_lossy().starts_with("renderD")
                && std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(entry.path())
                    .is_ok()
        })
    });
    if !has_render_node && std::env::var_os(VAR).is_none() {
        // Called first thing in `run`, before any other thread exists.
        std::env::set_var(VAR, "1");
    }
}

#[cfg(test)]
mod tests;
