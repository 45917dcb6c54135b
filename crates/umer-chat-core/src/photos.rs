//! Photos in the data folder: `images/<sha256>.enc`, sealed with a chat's key, and the
//! thumbnails made from them (cached sealed, outside the folder).

use std::fs;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::crypto::{self, ContentKey};
use crate::error::{Error, Result};
use crate::format::ChatRecord;
use crate::fsio;
use crate::ids::ChatId;
use crate::images::{
    image_dimensions, is_image_name, make_thumbnail, mime_of, prepare_image, sealed_image_name,
    sniff, PhotoSize, MAX_SEALED_IMAGE_BYTES, MAX_THUMBNAIL_SIDE, SEALED_IMAGE_EXT,
};
use crate::listing;
use crate::logs;
use crate::password::hex_lower;
use crate::reader::ChatReader;
use crate::store::Store;
use crate::timeline::{Admins, Timeline};
use crate::username::UserKey;

impl Store {
    /// Validates an image and stores it encrypted with the chat's key, for `append_message`
    /// to reference. The file is `images/<sha256 of its bytes>.enc`: its bytes are not the
    /// image, and its name says nothing about it.
    pub fn save_image(&self, user: &UserKey, chat: &str, bytes: &[u8]) -> Result<String> {
        self.save_image_sized(user, chat, bytes, PhotoSize::Scaled)
    }

    /// [`Store::save_image`], choosing the size: metadata is removed and the photo turned
    /// upright either way (see [`prepare_image`]).
    pub fn save_image_sized(
        &self,
        user: &UserKey,
        chat: &str,
        bytes: &[u8],
        size: PhotoSize,
    ) -> Result<String> {
        let prepared = prepare_image(bytes, size)?;
        let bytes = prepared.as_slice();
        let dims = image_dimensions(bytes);
        let identity = self.keyring.require_identity(user)?;
        let chat = self.member_chat(user, chat)?;
        let reader = self.reader_for(user, chat.clone())?;
        let key = self.sending_key(&identity, &reader)?;
        let sealed = key.seal_image(&chat.id, bytes);
        let name = sealed_image_name(&sealed);
        let path = self.images_dir().join(&name);
        if !self.write_once(&path, &sealed)? && !self.image_is_intact(&name) {
            // A damaged copy (cut short by a sync tool), or something that is not a file at
            // all: the name fixes the content, so replacing it cannot lose anything.
            self.write_atomic(&path, &sealed)?;
        }
        if let Some(dims) = dims {
            self.image_sizes
                .lock()
                .expect("image sizes")
                .insert(name.clone(), dims);
        }
        Ok(name)
    }

    /// Width and height of image `name` of `chat`, for the message that shows it: known when
    /// this process saved it, else read from the image's header (opened with the chat's key).
    pub(crate) fn image_size(&self, user: &UserKey, chat: &ChatId, name: &str) -> Option<[u32; 2]> {
        if let Some(dims) = self.image_sizes.lock().expect("image sizes").get(name) {
            return Some(*dims);
        }
        let (_, bytes) = self.image_bytes(user, chat.as_str(), name).ok()?;
        image_dimensions(&bytes)
    }

    /// A thumbnail of image `name` of `chat` whose long side is at most `max_side` pixels,
    /// for a chat's list: made once, then kept in `cache_dir` (the app's local cache, never
    /// the shared folder), sealed with the chat's key like the image itself.
    pub fn image_thumbnail(
        &self,
        user: &UserKey,
        chat: &str,
        name: &str,
        max_side: u32,
        cache_dir: &Path,
    ) -> Result<(&'static str, Vec<u8>)> {
        let record = self.readable_chat(user, chat)?;
        if !is_image_name(name) {
            return Err(Error::InvalidArgument(format!(
                "{name:?} is not an image name."
            )));
        }
        let max_side = max_side.clamp(16, MAX_THUMBNAIL_SIDE);
        let reader = self.reader_for(user, record.clone())?;
        // Where thumbnails are kept is where a deleted photo's are dropped.
        self.thumbnail_cache
            .lock()
            .expect("thumbnail cache")
            .get_or_insert_with(|| cache_dir.to_path_buf());
        let cached = cache_dir.join(format!("{name}.{max_side}.thumb"));
        if let Ok(Some(sealed)) = fsio::read_capped(&cached, MAX_SEALED_IMAGE_BYTES) {
            let opened = crypto::image_kid(&sealed)
                .and_then(|kid| reader.content_key(&kid))
                .and_then(|key| key.open_image(&record.id, &sealed));
            if let Some((_, _, mime)) = opened.as_deref().and_then(sniff) {
                return Ok((mime, opened.expect("checked")));
            }
        }
        let (_, full, key) = self.opened_image(user, chat, name)?;
        let (mime, thumb) = make_thumbnail(&full, max_side)?;
        // A cache that cannot be written only costs making the thumbnail again.
        if let Some(key) = key {
            if std::fs::create_dir_all(cache_dir).is_ok() {
                let _ = fsio::write_atomic(&cached, &key.seal_image(&record.id, &thumb));
            }
        }
        Ok((mime, thumb))
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
        let (mime, opened, _) = self.opened_image(user, chat, name)?;
        Ok((mime, opened))
    }

    /// [`Store::image_bytes`], and the key that sealed them (none for an image from before
    /// images were sealed): a thumbnail is sealed with its image's key.
    fn opened_image(
        &self,
        user: &UserKey,
        chat: &str,
        name: &str,
    ) -> Result<(&'static str, Vec<u8>, Option<ContentKey>)> {
        let chat = self.readable_chat(user, chat)?;
        let bytes = self.stored_image_bytes(name)?;
        if !name.ends_with(SEALED_IMAGE_EXT) {
            return Ok((
                mime_of(name).expect("checked by is_image_name"),
                bytes,
                None,
            ));
        }
        let path = self.images_dir().join(name);
        let reader = self.reader_for(user, chat.clone())?;
        let key = crypto::image_kid(&bytes)
            .and_then(|kid| reader.content_key(&kid))
            .ok_or_else(|| Error::corrupt(&path, "it does not open with this chat's keys"))?;
        let opened = key
            .open_image(&chat.id, &bytes)
            .ok_or_else(|| Error::corrupt(&path, "it does not open with this chat's keys"))?;
        let mime = sniff(&opened)
            .map(|(_, _, mime)| mime)
            .ok_or_else(|| Error::corrupt(&path, "it opens, but is not an image"))?;
        Ok((mime, opened, Some(key)))
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

    /// Tells the store where the app caches thumbnails (`image_thumbnail`'s `cache_dir`), so
    /// that what it kept of a deleted photo goes when the delete is read.
    pub fn use_thumbnail_cache(&self, dir: PathBuf) {
        *self.thumbnail_cache.lock().expect("thumbnail cache") = Some(dir);
    }

    /// Removes this device's cached thumbnails of image `name` (every size).
    pub(crate) fn drop_thumbnails(&self, name: &str) {
        let Some(dir) = self
            .thumbnail_cache
            .lock()
            .expect("thumbnail cache")
            .clone()
        else {
            return;
        };
        if !is_image_name(name) {
            return;
        }
        let prefix = format!("{name}.");
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let file = entry.file_name();
            let file = file.to_string_lossy();
            if file.starts_with(&prefix) && file.ends_with(".thumb") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// After `user` deleted their message with photo `name`, sent from this device: the
    /// image file goes too when no other message of the chat names it. (Other devices keep
    /// their copy until their sync tool syncs the removal; a copy someone saved stays.)
    pub(crate) fn remove_deleted_image(&self, chat: &ChatRecord, reader: &ChatReader, name: &str) {
        self.drop_thumbnails(name);
        // Only a photo of this chat (sealed with its key): a message can name any file of
        // `images/`, and deleting it must never remove another chat's photo.
        let of_this_chat = self
            .stored_image_bytes(name)
            .ok()
            .and_then(|bytes| crypto::image_kid(&bytes))
            .is_some_and(|kid| reader.content_key(&kid).is_some());
        if !of_this_chat {
            return;
        }
        let files = listing::list(&self.log_dir(&chat.id), chat, &mut Vec::new());
        let mut fold = Timeline::new(Admins::of(chat));
        for file in &files {
            fold.apply_all(logs::read_all(file, reader, &mut Vec::new()));
        }
        if fold
            .messages()
            .iter()
            .any(|m| m.image.as_deref() == Some(name))
        {
            return;
        }
        let path = self.images_dir().join(name);
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) && fs::remove_file(&path).is_ok()
        {
            self.wrote(&path);
        }
    }
}
