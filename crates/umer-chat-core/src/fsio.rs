//! The only ways this crate writes files, each crash-safe on its own:
//! - [`write_atomic`]: temp file in the same directory, fsync, rename, fsync the directory.
//! - [`write_once`]: the same, but never replaces a file that already exists.
//! - [`AppendFile`]: one `write` of a whole line, then fsync, under a local lock.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::names::TEMP_PREFIX;

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = write_temp_beside(path, bytes)?;
    temp.persist(path)
        .map_err(|e| Error::io("replace", path)(e.error))?;
    sync_dir(parent(path))
}

/// Creates `path` with `bytes` unless it exists. Returns `false` when it already existed,
/// in which case the existing file is left untouched.
pub fn write_once(path: &Path, bytes: &[u8]) -> Result<bool> {
    if path.exists() {
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
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
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

/// Makes a rename or a new entry in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(Error::io("sync folder", dir))?;
    }
    // Windows cannot open a directory for fsync; its rename is already journaled (NTFS).
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// An append-only log file, open and locked against other processes on this machine.
pub struct AppendFile {
    file: File,
    len: u64,
}

impl AppendFile {
    /// Opens (creating if needed) and locks `path`; a torn last line is cut off first.
    pub fn open_locked(path: &Path) -> Result<Self> {
        let dir = parent(path);
        fs::create_dir_all(dir).map_err(Error::io("create folder", dir))?;
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(Error::io("open", path))?;
        file.lock().map_err(Error::io("lock", path))?;
        let mut len = file.metadata().map_err(Error::io("stat", path))?.len();
        if len == 0 {
            // A new file: make its directory entry durable before anything is acknowledged.
            sync_dir(dir)?;
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

    /// The last complete lines, newest first, reading at most `max_bytes` from the end.
    pub fn last_lines(&mut self, max_bytes: u64) -> std::io::Result<Vec<String>> {
        let start = self.len.saturating_sub(max_bytes);
        let mut buf = Vec::with_capacity((self.len - start) as usize);
        self.file.seek(SeekFrom::Start(start))?;
        (&self.file).take(self.len - start).read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf);
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if start > 0 && !lines.is_empty() {
            lines.remove(0); // may start mid-line
        }
        lines.reverse();
        Ok(lines)
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
        assert_eq!(log.last_lines(1024).unwrap()[0], "{\"a\":3}");
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
