//! Export of one chat, decrypted, for its member to keep: a zip with `chat.html` (opens
//! offline in any browser, no script), `messages.json` (every message as it is now, with
//! its edit history, reactions and reply; `EXPORT.md` in `docs/` documents it), `chat.txt`,
//! and the photos under `media/`. Everything comes from the one fold (`timeline.rs`) and
//! the one display layer (`display.rs`), as the app shows it.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde_json::json;
use zip::write::SimpleFileOptions;

use crate::display;
use crate::error::{Error, Result};
use crate::format::ChatKind;
use crate::ids::{now_ms, utc_date};
use crate::store::Store;
use crate::timeline::{MessageView, Quoted};
use crate::username::UserKey;

/// The `format` of `messages.json`.
pub const EXPORT_FORMAT: &str = "umer-chat-export/1";

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub messages: usize,
    pub photos: usize,
    /// Photos that could not be opened (not synced yet, damaged): named in the export.
    pub missing_photos: usize,
    pub bytes: u64,
}

impl Store {
    /// Writes chat `chat`, decrypted, as a zip at `out` (replaced whole, never half
    /// written). The caller asks the user first: the export is not encrypted.
    pub fn export_chat(&self, user: &UserKey, chat: &str, out: &Path) -> Result<ExportReport> {
        let record = self.readable_chat(user, chat)?;
        let messages = self.all_messages(user, chat)?;
        let title = display::chat_title(&record, user, |k| self.display_name(k));
        let name_of = |k: &UserKey| self.display_name(k);
        // A group's record says when and by whom it was made: the history's first line.
        let started = record
            .created_at
            .zip(display::chat_started_line(&record, name_of));

        let mut media: Vec<(String, Vec<u8>)> = Vec::new();
        let mut missing = 0;
        let mut media_of = std::collections::HashMap::new();
        for m in messages.iter().filter(|m| !m.deleted) {
            let Some(image) = &m.image else { continue };
            if media_of.contains_key(image) {
                continue;
            }
            match self.image_bytes(user, chat, image) {
                Ok((mime, bytes)) => {
                    let ext = mime.rsplit('/').next().unwrap_or("bin");
                    let stem = image.split('.').next().unwrap_or(image);
                    let path = format!("media/{stem}.{ext}");
                    media_of.insert(image.clone(), Some(path.clone()));
                    media.push((path, bytes));
                }
                Err(_) => {
                    missing += 1;
                    media_of.insert(image.clone(), None);
                }
            }
        }
        let media_path = |m: &MessageView| -> Option<String> {
            m.image
                .as_ref()
                .and_then(|i| media_of.get(i).cloned().flatten())
        };

        let json = messages_json(
            &record.id.to_string(),
            &title,
            &record,
            started.as_ref(),
            &messages,
            &name_of,
            &media_path,
        );
        let text = chat_txt(&title, started.as_ref(), &messages, &name_of);
        let html = chat_html(&title, started.as_ref(), &messages, &name_of, &media_path);

        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut temp = tempfile::NamedTempFile::new_in(dir)
            .map_err(Error::io("create the export next to", out))?;
        {
            let mut zip = zip::ZipWriter::new(temp.as_file_mut());
            let deflated =
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            // Photos are compressed already.
            let stored =
                SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            let files: [(&str, &[u8]); 3] = [
                ("chat.html", html.as_bytes()),
                ("messages.json", json.as_bytes()),
                ("chat.txt", text.as_bytes()),
            ];
            let zip_error = |e: zip::result::ZipError| {
                Error::InvalidArgument(format!("The export could not be written: {e}"))
            };
            for (name, bytes) in files {
                zip.start_file(name, deflated).map_err(zip_error)?;
                zip.write_all(bytes)
                    .map_err(Error::io("write the export", out))?;
            }
            for (name, bytes) in &media {
                zip.start_file(name.as_str(), stored).map_err(zip_error)?;
                zip.write_all(bytes)
                    .map_err(Error::io("write the export", out))?;
            }
            zip.finish().map_err(zip_error)?;
        }
        temp.as_file()
            .sync_all()
            .map_err(Error::io("write the export", out))?;
        temp.persist(out)
            .map_err(|e| Error::io("write the export", out)(e.error))?;
        let bytes = fs::metadata(out).map(|m| m.len()).unwrap_or(0);
        Ok(ExportReport {
            messages: messages.len(),
            photos: media.len(),
            missing_photos: missing,
            bytes,
        })
    }
}

fn messages_json(
    id: &str,
    title: &str,
    record: &crate::format::ChatRecord,
    started: Option<&(i64, String)>,
    messages: &[MessageView],
    name_of: &dyn Fn(&UserKey) -> String,
    media_path: &dyn Fn(&MessageView) -> Option<String>,
) -> String {
    let list: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            json!({
                "id": m.id,
                "sender": m.sender,
                "sender_name": name_of(&m.sender),
                "ts": m.ts,
                "text": m.text,
                "photo": media_path(m),
                "deleted": m.deleted,
                "edited": m.edited(),
                "history": m.history.iter().map(|r| json!({ "ts": r.ts, "text": r.text })).collect::<Vec<_>>(),
                "reply_to": m.reply_to.as_ref().map(|q| json!({
                    "id": q.target.id,
                    "sender": q.target.sender,
                    "state": match q.state { Quoted::Shown { .. } => "shown", Quoted::Deleted => "deleted", Quoted::Unknown => "unknown" },
                })),
                "reactions": m.reactions.iter().map(|r| json!({ "emoji": r.emoji, "users": r.users })).collect::<Vec<_>>(),
                "trust": match m.trust {
                    crate::format::Trust::Verified => "verified",
                    crate::format::Trust::KeyChanged => "key_changed",
                    crate::format::Trust::Unsigned => "unsigned",
                },
            })
        })
        .collect();
    let value = json!({
        "format": EXPORT_FORMAT,
        "exported_at": now_ms(),
        "chat": {
            "id": id,
            "title": title,
            "kind": match record.kind { ChatKind::Dm => "dm", ChatKind::Group => "group" },
            "members": record.current_members().iter().map(|m| json!({ "key": m, "name": name_of(m) })).collect::<Vec<_>>(),
        },
        // What happened to the chat itself; membership and renames join it once groups
        // can change.
        "events": started.map(|(ts, text)| vec![json!({
            "kind": "created",
            "ts": ts,
            "by": record.created_by,
            "name": record.name,
            "members": record.members,
            "text": text,
        })]).unwrap_or_default(),
        "messages": list,
    });
    serde_json::to_string_pretty(&value).expect("json serialises") + "\n"
}

/// `YYYY-MM-DD HH:MM` in UTC: an export reads the same wherever it is opened.
pub fn utc_minute(ts: i64) -> String {
    let (y, m, d) = utc_date(ts);
    let ms = ts.rem_euclid(86_400_000);
    let (h, min) = (ms / 3_600_000, (ms / 60_000) % 60);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}")
}

fn chat_txt(
    title: &str,
    started: Option<&(i64, String)>,
    messages: &[MessageView],
    name_of: &dyn Fn(&UserKey) -> String,
) -> String {
    let mut out = format!("{title}\n(times in UTC)\n\n");
    if let Some((ts, text)) = started {
        out.push_str(&format!("[{}] {text}\n", utc_minute(*ts)));
    }
    for m in messages {
        let mut line = format!("[{}] {}: ", utc_minute(m.ts), name_of(&m.sender));
        if let Some(q) = &m.reply_to {
            line.push_str(&format!(
                "(replying to {}: {}) ",
                name_of(&q.target.sender),
                display::quote_preview(q)
            ));
        }
        if m.deleted {
            line.push_str(display::DELETED);
        } else {
            if m.image.is_some() {
                line.push_str("[photo] ");
            }
            line.push_str(m.text.as_deref().unwrap_or(""));
            if m.edited() {
                line.push_str(" (edited)");
            }
        }
        for r in &m.reactions {
            line.push_str(&format!(" [{} {}]", r.emoji, r.users.len()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Text for HTML: every character that could start markup is escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const EXPORT_CSS: &str = "body{font:15px/1.45 system-ui,sans-serif;max-width:760px;margin:2rem auto;padding:0 1rem;color:#1a1d23;background:#eef1f5}\
h1{font-size:1.4rem}.note{color:#626b78;font-size:.85rem}.system{text-align:center;color:#626b78;font-size:.85rem}\
.message{background:#fff;border:1px solid #dde2ea;border-radius:12px;padding:.5rem .8rem;margin:.5rem 0}\
.meta{font-size:.75rem;color:#626b78;display:flex;gap:.6rem}.sender{font-weight:700;color:#2f6fed}\
.text{white-space:pre-wrap;overflow-wrap:anywhere}.deleted{font-style:italic;color:#626b78}\
.quote{border-left:3px solid #2f6fed;background:#f5f7fa;padding:.2rem .5rem;margin:.2rem 0;font-size:.85rem}\
.reactions span{display:inline-block;border:1px solid #dde2ea;border-radius:999px;padding:0 .4rem;margin:.3rem .2rem 0 0;font-size:.8rem}\
img{max-width:100%;border-radius:8px;display:block;margin:.3rem 0}\
details{font-size:.8rem;color:#626b78}@media (prefers-color-scheme:dark){body{background:#0f1217;color:#e8ebf0}.message{background:#171b22;border-color:#2c333f}.quote{background:#1d222b}}";

fn chat_html(
    title: &str,
    started: Option<&(i64, String)>,
    messages: &[MessageView],
    name_of: &dyn Fn(&UserKey) -> String,
    media_path: &dyn Fn(&MessageView) -> Option<String>,
) -> String {
    let mut body = String::new();
    if let Some((ts, text)) = started {
        body.push_str(&format!(
            "<p class=\"system\"><time datetime=\"{ts}\">{} UTC</time> {}</p>\n",
            escape(&utc_minute(*ts)),
            escape(text)
        ));
    }
    for m in messages {
        body.push_str(&format!(
            "<article class=\"message\" id=\"m-{}\"><div class=\"meta\"><span class=\"sender\">{}</span><time datetime=\"{}\">{} UTC</time>{}</div>",
            escape(&m.id),
            escape(&name_of(&m.sender)),
            m.ts,
            escape(&utc_minute(m.ts)),
            if m.edited() && !m.deleted { "<span>edited</span>" } else { "" },
        ));
        if let Some(q) = &m.reply_to {
            body.push_str(&format!(
                "<a class=\"quote\" href=\"#m-{}\">{}: {}</a>",
                escape(&q.target.id),
                escape(&name_of(&q.target.sender)),
                escape(&display::quote_preview(q))
            ));
        }
        if m.deleted {
            body.push_str(&format!(
                "<p class=\"deleted\">{}</p>",
                escape(display::DELETED)
            ));
        } else {
            match (m.image.as_ref(), media_path(m)) {
                (Some(_), Some(path)) => body.push_str(&format!(
                    "<img src=\"{}\" alt=\"Photo from {}\">",
                    escape(&path),
                    escape(&name_of(&m.sender))
                )),
                (Some(_), None) => body.push_str("<p class=\"deleted\">Photo not available</p>"),
                _ => {}
            }
            if let Some(text) = &m.text {
                body.push_str(&format!("<p class=\"text\">{}</p>", escape(text)));
            }
            if m.history.len() > 1 {
                body.push_str("<details><summary>Earlier versions</summary><ol>");
                for r in &m.history[..m.history.len() - 1] {
                    body.push_str(&format!(
                        "<li>{} UTC: {}</li>",
                        escape(&utc_minute(r.ts)),
                        escape(r.text.as_deref().unwrap_or(""))
                    ));
                }
                body.push_str("</ol></details>");
            }
            if !m.reactions.is_empty() {
                body.push_str("<div class=\"reactions\">");
                for r in &m.reactions {
                    let who: Vec<String> = r.users.iter().map(name_of).collect();
                    body.push_str(&format!(
                        "<span title=\"{}\">{} {}</span>",
                        escape(&who.join(", ")),
                        escape(&r.emoji),
                        r.users.len()
                    ));
                }
                body.push_str("</div>");
            }
        }
        body.push_str("</article>\n");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self'; style-src 'unsafe-inline'\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title><style>{css}</style></head>\
<body><h1>{t}</h1><p class=\"note\">Exported from Umer Chat. {n} messages; times in UTC. This file is not encrypted.</p>\n<main>\n{body}</main></body></html>\n",
        t = escape(title),
        css = EXPORT_CSS,
        n = messages.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_minutes() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        assert_eq!(utc_minute(1_709_251_199_999), "2024-02-29 23:59");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape("<b a=\"x\">'&'</b>"),
            "&lt;b a=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/b&gt;"
        );
    }
}
