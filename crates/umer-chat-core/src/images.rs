//! Images: `images/<sha256>.<ext>`, content-addressed and written once.

use std::fs;
use std::io::Cursor;

use base64::Engine;
use image::{ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use crate::crypto;
use crate::error::{Error, Result};
use crate::fsio;
use crate::password::hex_lower;
use crate::store::Store;
use crate::username::UserKey;

pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// Bounds the decoded size, so a small file cannot expand into gigabytes of pixels.
pub const MAX_IMAGE_SIDE: u32 = 12_000;
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;

/// The formats we accept, recognised by their first bytes, never by a file name.
fn sniff(bytes: &[u8]) -> Option<(ImageFormat, &'static str, &'static str)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some((ImageFormat::Png, "png", "image/png"))
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some((ImageFormat::Jpeg, "jpg", "image/jpeg"))
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some((ImageFormat::Gif, "gif", "image/gif"))
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some((ImageFormat::WebP, "webp", "image/webp"))
    } else {
        None
    }
}

/// The extension of an encrypted image (format 2): its type is known only once opened.
pub const SEALED_IMAGE_EXT: &str = "enc";

fn mime_of(name: &str) -> Option<&'static str> {
    match name.rsplit_once('.')?.1 {
        SEALED_IMAGE_EXT => Some("application/octet-stream"),
        "png" => Some("image/png"),
        "jpg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

/// True for a name this store could have given an image: `<64 hex>.<known ext>`.
pub fn is_image_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(hash, _)| {
        hash.len() == 64
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }) && mime_of(name).is_some()
}

/// What an accepted image is: its file extension and MIME type, from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageType {
    pub ext: &'static str,
    pub mime: &'static str,
}

/// Checks that `bytes` are a whole, decodable image within limits; gives its type.
pub fn validate_image(bytes: &[u8]) -> Result<ImageType> {
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(Error::ImageTooLarge {
            len: bytes.len(),
            max: MAX_IMAGE_BYTES,
        });
    }
    let (format, ext, mime) = sniff(bytes).ok_or_else(|| Error::UnsupportedImage {
        reason: if bytes.starts_with(b"<") || bytes.windows(4).take(512).any(|w| w == b"<svg") {
            "SVG and other text formats are refused".into()
        } else {
            "the content is not a PNG, JPEG, GIF or WebP image".into()
        },
    })?;
    let header = ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = header
        .into_dimensions()
        .map_err(|e| Error::UnsupportedImage {
            reason: format!("the {ext} header cannot be read ({e})"),
        })?;
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(Error::ImageDimensions {
            width,
            height,
            max: MAX_IMAGE_SIDE,
        });
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits);
    reader.decode().map_err(|e| Error::UnsupportedImage {
        reason: format!("the {ext} data is damaged or truncated ({e})"),
    })?;
    Ok(ImageType { ext, mime })
}

impl Store {
    /// Validates an image and stores it encrypted with the chat's key, for `append_message`
    /// to reference. The file is `images/<sha256 of its bytes>.enc`: its bytes are not the
    /// image, and its name says nothing about it.
    pub fn save_image(&self, user: &UserKey, chat: &str, bytes: &[u8]) -> Result<String> {
        validate_image(bytes)?;
        let identity = self.keyring.require_identity(user)?;
        let chat = self.member_chat(user, chat)?;
        let reader = self.reader_for(user, chat.clone())?;
        let key = self.sending_key(&identity, &reader)?;
        let sealed = key.seal_image(&chat.id, bytes);
        let name = format!("{}.{SEALED_IMAGE_EXT}", hex_lower(&Sha256::digest(&sealed)));
        let path = self.images_dir().join(&name);
        if !self.write_once(&path, &sealed)? && !self.image_is_intact(&name) {
            // A damaged copy (cut short by a sync tool), or something that is not a file at
            // all: the name fixes the content, so replacing it cannot lose anything.
            self.write_atomic(&path, &sealed)?;
        }
        Ok(name)
    }

    fn image_is_intact(&self, name: &str) -> bool {
        let path = self.images_dir().join(name);
        match fsio::read_capped(&path, MAX_SEALED_IMAGE_BYTES) {
            Ok(Some(bytes)) => name.starts_with(&hex_lower(&Sha256::digest(&bytes))),
            _ => false,
        }
    }

    pub(crate) fn check_image_exists(&self, name: &str) -> Result<()> {
        if !is_image_name(name) {
            return Err(Error::InvalidArgument(format!(
                "{name:?} is not an image name."
            )));
        }
        let path = self.images_dir().join(name);
        if fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
            Ok(())
        } else {
            Err(Error::ImageNotFound {
                name: name.to_string(),
            })
        }
    }

    /// The image's MIME type and bytes, checked against its name and, when sealed, opened
    /// with the key of `chat` that `user` (a member) holds.
    pub fn image_bytes(
        &self,
        user: &UserKey,
        chat: &str,
        name: &str,
    ) -> Result<(&'static str, Vec<u8>)> {
        let chat = self.member_chat(user, chat)?;
        let bytes = self.stored_image_bytes(name)?;
        if !name.ends_with(SEALED_IMAGE_EXT) {
            return Ok((mime_of(name).expect("checked by is_image_name"), bytes));
        }
        let path = self.images_dir().join(name);
        let reader = self.reader_for(user, chat.clone())?;
        let opened = crypto::image_kid(&bytes)
            .and_then(|kid| reader.content_keys().get(&kid))
            .and_then(|key| key.open_image(&chat.id, &bytes))
            .ok_or_else(|| Error::corrupt(&path, "it does not open with this chat's keys"))?;
        let mime = sniff(&opened)
            .map(|(_, _, mime)| mime)
            .ok_or_else(|| Error::corrupt(&path, "it opens, but is not an image"))?;
        Ok((mime, opened))
    }

    /// An image file's bytes as stored, checked against its name.
    pub(crate) fn stored_image_bytes(&self, name: &str) -> Result<Vec<u8>> {
        self.check_image_exists(name)?;
        let path = self.images_dir().join(name);
        let bytes = fsio::read_capped(&path, MAX_SEALED_IMAGE_BYTES)?.ok_or_else(|| {
            Error::ImageNotFound {
                name: name.to_string(),
            }
        })?;
        if !name.starts_with(&hex_lower(&Sha256::digest(&bytes))) {
            return Err(Error::corrupt(
                &path,
                "its content does not match its name (still syncing?)",
            ));
        }
        Ok(bytes)
    }

    /// A `data:` URL of the image, for display.
    pub fn image_to_data_url(&self, user: &UserKey, chat: &str, name: &str) -> Result<String> {
        let (mime, bytes) = self.image_bytes(user, chat, name)?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        Ok(format!("data:{mime};base64,{b64}"))
    }
}

/// A sealed image is the image plus 52 bytes of header and tag.
const MAX_SEALED_IMAGE_BYTES: u64 = MAX_IMAGE_BYTES as u64 + 1024;
