/// Names the commands of `src/command_list.rs`, the one place they are declared.
macro_rules! app_command_list {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $result:ty;)*) => {
        const COMMANDS: &[&str] = &[$(stringify!($name)),*];
    };
}
include!("src/command_list.rs");

const CAPABILITY: &str = "capabilities/main.json";
/// What the capability grants besides the app's own commands.
const PLUGIN_PERMISSIONS: &[&str] = &["dialog:allow-open"];

fn main() {
    check_capability();
    // Declaring the commands makes capabilities decide who may call them
    // (by default every app command would be allowed).
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri build script failed");
}

/// The capability must grant exactly the declared commands (and the plugin permissions above):
/// a command added without its grant would fail only when a user clicks.
fn check_capability() {
    println!("cargo:rerun-if-changed={CAPABILITY}");
    println!("cargo:rerun-if-changed=src/command_list.rs");
    let text = std::fs::read_to_string(CAPABILITY).expect("read capabilities/main.json");
    let start = text.find("\"permissions\"").expect("a permissions list");
    let list = &text[start..start + text[start..].find(']').expect("the end of permissions")];
    let mut granted: Vec<String> = list
        .split('"')
        .skip(3)
        .step_by(2)
        .map(String::from)
        .collect();
    let mut wanted: Vec<String> = COMMANDS
        .iter()
        .map(|name| format!("allow-{}", name.replace('_', "-")))
        .chain(PLUGIN_PERMISSIONS.iter().map(|p| p.to_string()))
        .collect();
    granted.sort();
    wanted.sort();
    if granted != wanted {
        let missing: Vec<_> = wanted.iter().filter(|p| !granted.contains(p)).collect();
        let extra: Vec<_> = granted.iter().filter(|p| !wanted.contains(p)).collect();
        panic!(
            "{CAPABILITY} must grant exactly the commands of src/command_list.rs; \
             missing {missing:?}, not declared {extra:?}"
        );
    }
}
