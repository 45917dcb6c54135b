//! What a file name in the data folder means: ours, a sync tool's leftover, or a conflict copy.

/// How a directory entry's name is classified before anything reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryName {
    /// A name this store may read. For a conflict copy, `original` is the name it copies.
    Regular,
    /// A sync tool's or our own half-written temp file (`.syncthing.*.tmp`, `~syncthing~*`,
    /// `.umer-tmp-*`, any hidden file).
    TempFile,
    /// A conflict copy made by a sync tool; `original` is the name of the file it copies.
    ConflictCopy { original: String },
}

/// Prefix of our own temp files, so readers skip them like a sync tool's.
pub const TEMP_PREFIX: &str = ".umer-tmp-";

pub fn classify(name: &str) -> EntryName {
    if name.starts_with('.') || name.starts_with('~') || name.ends_with(".tmp") {
        return EntryName::TempFile;
    }
    if let Some(original) = conflict_original(name) {
        return EntryName::ConflictCopy { original };
    }
    EntryName::Regular
}

/// Recovers the original name from a Syncthing (`a.sync-conflict-20240101-120000-ABCDEFG.jsonl`)
/// or Dropbox/Nextcloud-style (`a (Bob's conflicted copy 2024-01-01).jsonl`,
/// `a (conflicted copy 2024-01-01 120000).jsonl`, `a_conflict-20240101-120000.jsonl`) copy.
fn conflict_original(name: &str) -> Option<String> {
    if let Some(start) = name.find(".sync-conflict-") {
        let rest = &name[start + ".sync-conflict-".len()..];
        let ext = rest.find('.').map(|dot| &rest[dot..]).unwrap_or("");
        return Some(format!("{}{}", &name[..start], ext));
    }
    if let Some(open) = name.find(" (") {
        let close = name[open..].find(')')? + open;
        let inside = &name[open + 2..close];
        if inside.contains("conflicted copy") || inside.contains("Conflicted copy") {
            return Some(format!("{}{}", &name[..open], &name[close + 1..]));
        }
    }
    if let Some(start) = name.find("_conflict-") {
        let rest = &name[start..];
        let ext = rest.find('.').map(|dot| &rest[dot..]).unwrap_or("");
        return Some(format!("{}{}", &name[..start], ext));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_files_of_sync_tools_and_ours() {
        for name in [
            ".syncthing.alice.d1.jsonl.tmp",
            "~syncthing~alice.d1.jsonl.tmp",
            ".umer-tmp-abc",
            ".DS_Store",
            "alice.json.tmp",
        ] {
            assert_eq!(classify(name), EntryName::TempFile, "{name}");
        }
    }

    #[test]
    fn conflict_copies_name_their_original() {
        let cases = [
            (
                "alice.0011aabb.sync-conflict-20240101-120000-ABCDEFG.jsonl",
                "alice.0011aabb.jsonl",
            ),
            (
                "alice.json (Bob's conflicted copy 2024-01-01)",
                "alice.json",
            ),
            (
                "alice.0011aabb (conflicted copy 2024-01-01 120000).jsonl",
                "alice.0011aabb.jsonl",
            ),
            ("chat_conflict-20240101-120000.json", "chat.json"),
        ];
        for (copy, original) in cases {
            assert_eq!(
                classify(copy),
                EntryName::ConflictCopy {
                    original: original.to_string()
                },
                "{copy}"
            );
        }
    }

    #[test]
    fn regular_names_stay_regular() {
        for name in [
            "alice.json",
            "alice.0011aabb.jsonl",
            "chat.json",
            "a (1).png",
        ] {
            assert_eq!(classify(name), EntryName::Regular, "{name}");
        }
    }
}
