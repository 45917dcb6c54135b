//! The only ways this crate writes files, each crash-safe on its own:
//! - [`write_atomic`]: temp file in the same directory, fsync, rename, fsync the directory.
//! - [`write_once`]: the same, but never replaces a file that already exists.
//! - [`AppendFile`]: one `write` of a whole line, then fsync, under a local lock.
//!
//! And the only ways it opens files of the data folder, which anyone who shares the folder
//! can fill with anything: [`open_regular`] never follows a symlink, never blocks on a FIFO
//! and hands back only regular files; [`read_capped`] also bounds the length.
//! [`ensure_dir_within`] makes sure no folder on the way to a write is a symlink, and
//! [`AppendFile::open_within`] opens a log (on Linux) in one call that follows no symlink.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::names::TEMP_PREFIX;

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a mix.
/// A symlink at `path` is replaced, never followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = write_temp_beside(path, bytes)?;
    temp.persist(path)
        .map_err(|e| Error::io("replace", path)(e.error))?;
    sync_dir(parent(path))
}

/// Creates `path` with `bytes` unless something (even a dangling symlink) is there already.
/// Returns `false` when it was, in which case the existing entry is left untouched.
pub fn write_once(path: &Path, bytes: &[u8]) -> Result<bool> {
    if fs::symlink_metadata(path).is_ok() {
        return Ok(false);
    }
    let temp = write_temp_beside(path, bytes)?;
    match temp.persist_noclobber(path) {
        Ok(_) => {
            sync_dir(parent(path))?;
            Ok(true)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(Error::io("create", path)(e.error)),
    }
}

fn write_temp_beside(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    let dir = parent(path);
    fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(TEMP_PREFIX);
    // tempfile's default is 0600; folder records must be readable by the other OS users
    // who share the drive, so let the umask decide, as for any other file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut temp = builder
        .tempfile_in(dir)
        .map_err(Error::io("create a temp file in", dir))?;
    temp.write_all(bytes)
        .and_then(|_| temp.as_file().sync_all())
        .map_err(Error::io("write", temp.path()))?;
    Ok(temp)
}

fn parent(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("."))
}

/// What an entry of the data folder is, for messages and the skip report.
pub fn entry_kind(meta: &Metadata) -> &'static str {
    let kind = meta.file_type();
    if kind.is_symlink() {
        return "symlink";
    }
    if kind.is_dir() {
        return "folder";
    }
    if kind.is_file() {
        return "file";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "FIFO";
        }
        if kind.is_socket() {
            return "socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "device";
        }
    }
    "special file"
}

/// Options that never follow a symlink in the last component and never block on a FIFO.
fn no_follow(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // Open a reparse point (symlink, junction) itself instead of what it points to;
        // the handle's type is checked below.
        const FILE_FLAG_OPEN_REPARSE_POINT: u32 = 0x0020_0000;
        options.custom_flags(FILE_FLAG_OPEN_REPARSE_POINT);
    }
    options
}

/// Maps an open error caused by what the entry is (a symlink, a socket) to `NotARegularFile`.
fn open_error(path: &Path, action: &'static str, e: std::io::Error) -> Error {
    #[cfg(unix)]
    {
        // O_NOFOLLOW on a symlink gives ELOOP; opening a socket gives ENXIO.
        match e.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::EMLINK) => return Error::not_regular(path, "symlink"),
            Some(libc::ENXIO) | Some(libc::EOPNOTSUPP) => {
                let kind = fs::symlink_metadata(path)
                    .map(|m| entry_kind(&m))
                    .unwrap_or("special file");
                return Error::not_regular(path, kind);
            }
            _ => {}
        }
    }
    if e.kind() == std::io::ErrorKind::IsADirectory {
        return Error::not_regular(path, "folder");
    }
    Error::io(action, path)(e)
}

/// Checks that an open handle is a regular file, and gives its metadata.
fn regular(file: File, path: &Path) -> Result<(File, Metadata)> {
    let meta = file.metadata().map_err(Error::io("stat", path))?;
    if meta.is_file() && !meta.file_type().is_symlink() {
        Ok((file, meta))
    } else {
        Err(Error::not_regular(path, entry_kind(&meta)))
    }
}

/// Opens `path` for reading only if it is a regular file. `Ok(None)` when nothing is there.
pub fn open_regular(path: &Path) -> Result<Option<(File, Metadata)>> {
    match no_follow(OpenOptions::new().read(true)).open(path) {
        Ok(file) => regular(file, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(path, "open", e)),
    }
}

/// Reads a regular file of at most `max` bytes. `Ok(None)` when nothing is there.
pub fn read_capped(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    let Some((file, meta)) = open_regular(path)? else {
        return Ok(None);
    };
    let too_large = |len| Error::FileTooLarge {
        path: path.to_path_buf(),
        len,
        max,
    };
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after the stat: read one byte more than allowed to notice.
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(Error::io("read", path))?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// Makes sure every folder from `root` (exclusive) down to `dir` (inclusive) is a real
/// folder, creating missing ones and fsyncing each new one's parent, so that a write under
/// `dir` cannot be sent outside the data folder by a symlink someone put on the way.
/// Anything else found where a folder belongs (a symlink, a file, a FIFO) is moved aside
/// within its own folder, never deleted or followed (see [`move_aside`]).
pub fn ensure_dir_within(root: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(root).map_err(|_| {
        Error::InvalidArgument(format!(
            "{} is not inside the data folder {}.",
            dir.display(),
            root.display()
        ))
    })?;
    let mut current = root.to_path_buf();
    for component in rel.components() {
        let Component::Normal(name) = component else {
            return Err(Error::InvalidArgument(format!(
                "{} is not a plain path inside the data folder.",
                dir.display()
            )));
        };
        let parent_dir = current.clone();
        current.push(name);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() && !meta.file_type().is_symlink() => continue,
            Ok(_) => {
                move_aside(&current)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("stat", &current)(e)),
        }
        match fs::create_dir(&current) {
            Ok(()) => sync_dir(&parent_dir)?,
            // Another process made it at the same moment: check what it is.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let meta = fs::symlink_metadata(&current).map_err(Error::io("stat", &current))?;
                if !meta.is_dir() || meta.file_type().is_symlink() {
                    return Err(Error::not_regular(&current, entry_kind(&meta)));
                }
            }
            Err(e) => return Err(Error::io("create folder", &current)(e)),
        }
    }
    Ok(())
}

/// Renames an entry that squats a path only this device writes (a symlink or FIFO where
/// our log or a folder belongs) to a hidden name beside it. Renaming a symlink moves the
/// link itself, so nothing outside the folder is touched, and nothing is deleted: readers
/// skip hidden names and `doctor` lists them.
pub fn move_aside(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let aside = parent(path).join(format!(
        "{MOVED_ASIDE_PREFIX}{}-{name}",
        crate::ids::new_event_id()
    ));
    fs::rename(path, &aside).map_err(Error::io("move aside", path))?;
    sync_dir(parent(path))?;
    Ok(aside)
}

/// `root` made absolute, when no symlink is anywhere on its way: only then can a log under
/// it be opened by the kernel refusing every symlink on the way (see
/// [`AppendFile::open_within`]). Checked once, when a store opens; a root that becomes a
/// symlink later only makes those opens fail with an error.
pub fn symlink_free_root(root: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(root).ok()?;
    (fs::canonicalize(&absolute).ok()? == absolute).then_some(absolute)
}

/// What the one-call open of a log gave.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // only Linux has the call
enum QuickOpen {
    Opened(File),
    /// Something is in the way: a folder missing or not a folder, a symlink anywhere, or
    /// something other than a file at the log's own name.
    Refused(std::io::Error),
    /// Not on this system: not Linux, or a kernel before 5.6 (or a sandbox) without openat2.
    Unavailable,
}

/// Opens `path` (absolute, under a root with no symlink) to append to, creating it, in one
/// `openat2` call that refuses a symlink in any of its components.
fn open_append_no_symlinks(path: &Path) -> QuickOpen {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{openat2, Mode, OFlags, ResolveFlags, CWD};
        use std::sync::atomic::{AtomicBool, Ordering};
        // A kernel without the call says so once; the careful way is taken from then on.
        static UNAVAILABLE: AtomicBool = AtomicBool::new(false);
        if UNAVAILABLE.load(Ordering::Relaxed) {
            return QuickOpen::Unavailable;
        }
        let flags = OFlags::RDWR
            | OFlags::APPEND
            | OFlags::CREATE
            | OFlags::NOFOLLOW
            | OFlags::NONBLOCK
            | OFlags::CLOEXEC;
        let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match openat2(CWD, path, flags, Mode::from_raw_mode(0o666), resolve) {
            Ok(fd) => QuickOpen::Opened(File::from(fd)),
            Err(e) if e == rustix::io::Errno::NOSYS => {
                UNAVAILABLE.store(true, Ordering::Relaxed);
                QuickOpen::Unavailable
            }
            Err(e) => QuickOpen::Refused(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        QuickOpen::Unavailable
    }
}

/// How often an append clears what is in its log's way and opens it again before it gives
/// up with an error: someone who keeps swapping things in faster than that wins an error,
/// never a write through a symlink.
const OPEN_ROUNDS: usize = 4;

/// Prefix of entries moved out of our way by [`move_aside`].
pub const MOVED_ASIDE_PREFIX: &str = ".umer-moved-aside-";

/// Opens (creating if needed) a lock file of this device, without following a symlink.
pub fn open_lock_file(path: &Path) -> Result<File> {
    let open = || no_follow(OpenOptions::new().create(true).truncate(false).write(true)).open(path);
    let file = match open() {
        Ok(file) => file,
        Err(e) => match open_error(path, "open", e) {
            Error::NotARegularFile { .. } => {
                move_aside(path)?;
                open().map_err(|e| open_error(path, "open", e))?
            }
            other => return Err(other),
        },
    };
    let (file, _) = regular(file, path)?;
    Ok(file)
}

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO swapped in for the folder fails at once instead of blocking the open.
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK)
            .open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("sync folder", dir))?;
    }
    // Windows cannot open a directory for fsync; its rename is already journaled (NTFS).
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// What a log with more than one link is called in `NotARegularFile`.
const HARD_LINKED: &str = "file with other hard links";

/// An append-only log file, open and locked against other processes on this machine.
pub struct AppendFile {
    file: File,
    len: u64,
}

impl AppendFile {
    /// Opens (creating if needed) and locks `path`, a log under the data folder `root` that
    /// only this device writes; a torn last line is cut off first. Only a regular file with
    /// one link is ever opened: a symlink, FIFO or folder that someone put at our own log's
    /// path is moved aside first (see [`move_aside`]), so the repair can only ever cut our
    /// own file, and every folder on the way is made a real one ([`ensure_dir_within`]).
    ///
    /// With `quick_root` ([`symlink_free_root`] of `root`) on Linux, the log is opened by one
    /// `openat2` that refuses a symlink anywhere on the way, so nothing swapped in between a
    /// check and the open can send the write elsewhere; what is in the way is cleared and
    /// the open tried again. Elsewhere the folders are checked, then the log is opened by
    /// its path without following a symlink at its own name.
    pub fn open_within(root: &Path, quick_root: Option<&Path>, path: &Path) -> Result<Self> {
        let dir = parent(path);
        // Only plain names below the root: no `..` can lead the quick open out of it.
        let quick = quick_root.and_then(|quick_root| {
            let rel = path.strip_prefix(root).ok()?;
            rel.components()
                .all(|c| matches!(c, Component::Normal(_)))
                .then(|| quick_root.join(rel))
        });
        let Some(quick) = quick else {
            ensure_dir_within(root, dir)?;
            return Self::open_locked(path);
        };
        let mut refused = None;
        for _ in 0..OPEN_ROUNDS {
            match open_append_no_symlinks(&quick) {
                QuickOpen::Opened(file) => match Self::lock(file, path) {
                    Err(Error::NotARegularFile { kind, .. }) if kind != HARD_LINKED => {
                        move_aside(path)?;
                    }
                    other => return other,
                },
                QuickOpen::Refused(e) => {
                    // A folder missing or squatted is made a real one; a squatter at the
                    // log's own name (a symlink, folder, socket) is moved aside.
                    ensure_dir_within(root, dir)?;
                    if fs::symlink_metadata(path).is_ok_and(|meta| !meta.is_file()) {
                        move_aside(path)?;
                    }
                    refused = Some(e);
                }
                QuickOpen::Unavailable => {
                    ensure_dir_within(root, dir)?;
                    return Self::open_locked(path);
                }
            }
        }
        Err(match refused {
            Some(e) => open_error(path, "open", e),
            None => Error::not_regular(path, "entry that keeps changing"),
        })
    }

    /// Opens (creating if needed) and locks `path` by its path, without following a symlink
    /// at its own name. Its folder must exist: [`AppendFile::open_within`] makes it,
    /// checking every folder on the way.
    pub fn open_locked(path: &Path) -> Result<Self> {
        let open = || {
            no_follow(OpenOptions::new().read(true).append(true).create(true))
                .open(path)
                .map_err(|e| open_error(path, "open", e))
        };
        match open().and_then(|file| Self::lock(file, path)) {
            // A hard-linked file stays where it is: it may be our own log, and it is refused.
            Err(Error::NotARegularFile { kind, .. }) if kind != HARD_LINKED => {
                move_aside(path)?;
                Self::lock(open()?, path)
            }
            other => other,
        }
    }

    /// Checks what an opened log is, then locks it: a regular file with one link (anything
    /// else is `NotARegularFile`, checked before the lock so that nothing else is ever
    /// locked or waited on). A new file's folder entry is made durable, and a torn last line
    /// is cut off.
    fn lock(file: File, path: &Path) -> Result<Self> {
        let (file, meta) = regular(file, path)?;
        #[cfg(unix)]
        if std::os::unix::fs::MetadataExt::nlink(&meta) > 1 {
            // A hard link could tie our log to a file elsewhere; never write through one.
            return Err(Error::not_regular(path, HARD_LINKED));
        }
        #[cfg(not(unix))]
        let _ = meta;
        file.lock().map_err(Error::io("lock", path))?;
        // The length once locked: another process of this device may have just appended.
        let mut len = file.metadata().map_err(Error::io("stat", path))?.len();
        if len == 0 {
            // A new file: make its directory entry durable before anything is acknowledged.
            sync_dir(parent(path))?;
        }
        let complete = complete_len(&file, len).map_err(Error::io("read", path))?;
        if complete != len {
            file.set_len(complete)
                .and_then(|_| file.sync_all())
                .map_err(Error::io("repair the torn last line of", path))?;
            len = complete;
        }
        Ok(AppendFile { file, len })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one complete line with a single write, then fsyncs. `line` has no newline.
    pub fn append_line(&mut self, line: &str, path: &Path) -> Result<()> {
        debug_assert!(!line.contains('\n'));
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.append_lines(&bytes, path)
    }

    /// Appends complete lines (`bytes` ends with a newline) with one write and one fsync.
    pub fn append_lines(&mut self, bytes: &[u8], path: &Path) -> Result<()> {
        debug_assert!(bytes.last() == Some(&b'\n'));
        self.file
            .write_all(bytes)
            .and_then(|_| self.file.sync_data())
            .map_err(Error::io("append to", path))?;
        self.len += bytes.len() as u64;
        Ok(())
    }
}

/// Length of the prefix of `file`'s first `len` bytes that ends with a newline: where the
/// line holding byte `len - 1` starts (`len` itself when that byte is a newline).
pub(crate) fn complete_len(file: &File, len: u64) -> std::io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    // Nearly always the file ends with a newline, which one byte says.
    let mut last = [0u8];
    read_exact_at(file, &mut last, len - 1)?;
    if last[0] == b'\n' {
        return Ok(len);
    }
    let mut end = len;
    let mut buf = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        read_exact_at(file, chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Reads exactly `buf.len()` bytes at `offset`, without moving a shared cursor.
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The quick open is taken where it can be, and refuses a symlink on the way; the log
    /// then lands in a real folder, and nothing goes through the symlink.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_log_opens_in_one_call_that_follows_no_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("data");
        let month = root.join("chats/c/log/2026-12");
        fs::create_dir_all(&month).unwrap();
        let quick_root = symlink_free_root(&root).expect("a temp folder has no symlink");
        let log = month.join("alice.dev.jsonl");
        assert!(matches!(
            open_append_no_symlinks(&quick_root.join("chats/c/log/2026-12/alice.dev.jsonl")),
            QuickOpen::Opened(_)
        ));

        let elsewhere = dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::remove_dir_all(root.join("chats/c/log")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("chats/c/log")).unwrap();
        assert!(matches!(
            open_append_no_symlinks(&quick_root.join("chats/c/log/2026-12/alice.dev.jsonl")),
            QuickOpen::Refused(_)
        ));
        let mut file = AppendFile::open_within(&root, Some(&quick_root), &log).unwrap();
        file.append_line("{}", &log).unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "{}\n");
        assert!(fs::symlink_metadata(root.join("chats/c/log"))
            .unwrap()
            .is_dir());
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        assert!(
            symlink_free_root(&root.join("chats/c/../c")).is_none(),
            "a root spelled with `..` takes the careful way"
        );
    }

    #[test]
    fn write_once_keeps_the_first_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.json");
        assert!(write_once(&path, b"first").unwrap());
        assert!(!write_once(&path, b"second").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_torn_last_line_is_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        fs::write(&path, b"{\"a\":1}\n{\"a\":2}\n{\"a\":").unwrap();
        let mut log = AppendFile::open_locked(&path).unwrap();
        assert_eq!(log.len(), 16);
        log.append_line("{\"a\":3}", &path).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n"
        );
    }

    #[test]
    fn a_file_that_is_all_torn_becomes_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        fs::write(&path, b"{\"a\":").unwrap();
        let log = AppendFile::open_locked(&path).unwrap();
        assert!(log.is_empty());
    }
}

/// What tells a changed file from an unchanged one without reading it: length, mtime,
/// inode (a replaced file has a new one), and on Unix the change time, which no one but
/// the kernel sets (an edit in place that keeps the length and puts the mtime back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: u64,
    #[cfg(unix)]
    changed: (i64, i64),
}

impl Stamp {
    /// Whether both stamps are of one file (not one replaced by a rename).
    pub fn same_file(&self, other: &Stamp) -> bool {
        #[cfg(unix)]
        return self.inode == other.inode;
        #[cfg(not(unix))]
        return self.len <= other.len;
    }
}

/// The stamp of a regular file, or `None` (missing, or not a regular file).
pub fn stamp(path: &Path) -> Option<Stamp> {
    let meta = fs::symlink_metadata(path).ok().filter(|m| m.is_file())?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
        #[cfg(unix)]
        changed: {
            use std::os::unix::fs::MetadataExt;
            (meta.ctime(), meta.ctime_nsec())
        },
    })
}
