//! Images as bytes: content sniffing, full decoding within limits, preparing a photo to send, and
//! thumbnails. No files: the folder's photos are `photos.rs`.

use std::io::Cursor;
use std::sync::{Mutex, PoisonError};

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits};

use crate::error::{Error, Result};

pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;
/// Bounds the decoded size, so a small file cannot expand into gigabytes of pixels.
pub const MAX_IMAGE_SIDE: u32 = 12_000;
/// What decoding one image may allocate: a 50-megapixel phone photo needs 150 MB; a small
/// file that claims 12,000 × 12,000 pixels (432 MB) is refused before it is decoded.
const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;

/// The formats we accept, recognised by their first bytes, never by a file name.
pub(crate) fn sniff(bytes: &[u8]) -> Option<(ImageFormat, &'static str, &'static str)> {
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

/// A sealed image's file name in `images/`: the SHA-256 of its bytes, so the name fixes
/// the content and the file is written once.
pub fn sealed_image_name(sealed: &[u8]) -> String {
    use sha2::Digest;
    format!(
        "{}.{SEALED_IMAGE_EXT}",
        crate::password::hex_lower(&sha2::Sha256::digest(sealed))
    )
}

pub(crate) fn mime_of(name: &str) -> Option<&'static str> {
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
    let kind = check_header(bytes)?;
    let (format, _, _) = sniff(bytes).expect("checked");
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decode_limits());
    reader.decode().map_err(|e| decode_error(kind.ext, e))?;
    Ok(kind)
}

/// The checks that need no decoding: size, type by content, and dimensions from the header.
fn check_header(bytes: &[u8]) -> Result<ImageType> {
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
    Ok(ImageType { ext, mime })
}

/// Why an image could not be decoded, in words a person can act on.
fn decode_error(ext: &str, e: image::ImageError) -> Error {
    Error::UnsupportedImage {
        reason: match e {
            image::ImageError::Limits(_) => format!(
                "decoding it would take more than {} MiB of memory; send a smaller {ext}",
                MAX_DECODE_ALLOC >> 20
            ),
            e => format!("the {ext} data is damaged or truncated ({e})"),
        },
    }
}

/// How large a sent photo is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PhotoSize {
    /// At most [`MAX_SENT_SIDE`] pixels on the long side.
    #[default]
    Scaled,
    /// Every pixel kept ("original quality"); metadata still removed.
    Original,
}

/// The long side a sent photo is scaled down to, unless sent in original quality.
pub const MAX_SENT_SIDE: u32 = 2560;
const JPEG_QUALITY: u8 = 85;
const JPEG_QUALITY_ORIGINAL: u8 = 95;

/// The bytes to store for a sent image: decoded, turned upright by its EXIF orientation,
/// scaled down unless `size` is `Original`, and encoded again, so that no metadata (EXIF,
/// GPS, XMP, maker notes, comments) is carried into the shared folder. The colour profile
/// is kept. A GIF is kept as it is (it carries no EXIF, and re-encoding would lose its
/// animation); a WebP becomes a PNG (with transparency) or a JPEG (without).
pub fn prepare_image(bytes: &[u8], size: PhotoSize) -> Result<Vec<u8>> {
    let kind = validate_image(bytes)?;
    if kind.ext == "gif" {
        return Ok(bytes.to_vec());
    }
    let (format, _, _) = sniff(bytes).expect("validated");
    let damaged = |e: image::ImageError| decode_error(kind.ext, e);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decode_limits());
    let mut decoder = reader.into_decoder().map_err(damaged)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut picture = DynamicImage::from_decoder(decoder).map_err(damaged)?;
    picture.apply_orientation(orientation);
    let long_side = picture.width().max(picture.height());
    if size == PhotoSize::Scaled && long_side > MAX_SENT_SIDE {
        picture = picture.resize(MAX_SENT_SIDE, MAX_SENT_SIDE, FilterType::Lanczos3);
    }
    let as_png = match format {
        ImageFormat::Png => true,
        ImageFormat::WebP => picture.color().has_alpha(),
        _ => false,
    };
    let mut out = Vec::new();
    let encoded = if as_png {
        let mut encoder = PngEncoder::new(&mut out);
        if let Some(icc) = icc {
            let _ = encoder.set_icc_profile(icc);
        }
        picture.write_with_encoder(encoder)
    } else {
        let quality = match size {
            PhotoSize::Scaled => JPEG_QUALITY,
            PhotoSize::Original => JPEG_QUALITY_ORIGINAL,
        };
        let mut encoder = JpegEncoder::new_with_quality(&mut out, quality);
        if let Some(icc) = icc {
            let _ = encoder.set_icc_profile(icc);
        }
        // JPEG has no alpha and at most 8 bits: CMYK, 16-bit and alpha become RGB.
        DynamicImage::ImageRgb8(picture.to_rgb8()).write_with_encoder(encoder)
    };
    encoded.map_err(|e| Error::UnsupportedImage {
        reason: format!("it could not be encoded again without its metadata ({e})"),
    })?;
    validate_image(&out)?;
    Ok(out)
}

fn decode_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

/// Thumbnails are for a chat's list: 640 px at most on the long side, times a device pixel
/// ratio of up to 2.
pub const MAX_THUMBNAIL_SIDE: u32 = 1280;

/// Width and height from an image's header, without decoding its pixels.
pub fn image_dimensions(bytes: &[u8]) -> Option<[u32; 2]> {
    let (format, _, _) = sniff(bytes)?;
    let (w, h) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .ok()?;
    Some([w, h])
}

/// What making one thumbnail may hold at once, beyond its input: the decoded picture (at
/// most [`MAX_DECODE_ALLOC`]) and the thumbnail with its encoding. Scaling works from the
/// decoded picture straight into the thumbnail (`thumbnail`, an area average), with no
/// intermediate buffer the size of the picture: a `resize` would add a float copy of
/// width × thumbnail height × 16 bytes (245 MB for a 12,000-pixel-wide picture).
pub const THUMBNAIL_MEMORY_BUDGET: u64 = MAX_DECODE_ALLOC + 32 * 1024 * 1024;

/// Thumbnails are made one at a time in a process, so that the budget above is the
/// process's, not the budget times the requests of a scrolling chat.
static ONE_THUMBNAIL_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A JPEG (PNG when it has transparency) of `bytes` scaled to fit `max_side`, and its type.
/// Animated images give their first frame. Within [`THUMBNAIL_MEMORY_BUDGET`], one at a time.
pub fn make_thumbnail(bytes: &[u8], max_side: u32) -> Result<(&'static str, Vec<u8>)> {
    // The checks of `validate_image` short of its full decode: the decode below is the one.
    let kind = check_header(bytes)?;
    let (format, _, _) = sniff(bytes).expect("checked");
    let _turn = ONE_THUMBNAIL_AT_A_TIME
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decode_limits());
    let picture = reader.decode().map_err(|e| decode_error(kind.ext, e))?;
    let picture = if picture.width().max(picture.height()) > max_side {
        let small = picture.thumbnail(max_side, max_side);
        drop(picture); // before encoding
        small
    } else {
        picture
    };
    let mut out = Vec::new();
    let (mime, written) = if picture.color().has_alpha() {
        (
            "image/png",
            picture.write_with_encoder(PngEncoder::new(&mut out)),
        )
    } else {
        let encoder = JpegEncoder::new_with_quality(&mut out, 80);
        (
            "image/jpeg",
            DynamicImage::ImageRgb8(picture.to_rgb8()).write_with_encoder(encoder),
        )
    };
    written.map_err(|e| Error::UnsupportedImage {
        reason: format!("its thumbnail could not be made ({e})"),
    })?;
    Ok((mime, out))
}

/// A sealed image is the image plus 52 bytes of header and tag.
pub const MAX_SEALED_IMAGE_BYTES: u64 = MAX_IMAGE_BYTES as u64 + 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    /// Set in the child process that makes the thumbnails and measures itself.
    const CHILD_ENV: &str = "UMER_CHAT_THUMBNAIL_MEMORY_CHILD";

    /// A PNG of `w` × `h` of `color` with a pattern that compresses under the file cap.
    fn png(w: u32, h: u32, color: image::ColorType) -> Vec<u8> {
        let channels = color.channel_count() as usize;
        let mut pixels = vec![0u8; w as usize * h as usize * channels];
        for (i, row) in pixels.chunks_mut(w as usize * channels).enumerate() {
            for (j, byte) in row.iter_mut().enumerate() {
                *byte = ((i / 64 + j / 256) % 251) as u8;
            }
        }
        let mut out = Vec::new();
        PngEncoder::new_with_quality(
            &mut out,
            image::codecs::png::CompressionType::Fast,
            image::codecs::png::FilterType::Sub,
        )
        .write_image(&pixels, w, h, color.into())
        .unwrap();
        assert!(out.len() <= MAX_IMAGE_BYTES, "{} bytes", out.len());
        out
    }

    /// `VmHWM` or `VmRSS` of this process, in bytes.
    fn status_bytes(field: &str) -> u64 {
        let status = fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// In the child: makes a thumbnail of the PNG in `file` on `threads` threads at once and
    /// prints how far the peak RSS rose above what the process held before.
    fn measure(file: &str, threads: usize) {
        let bytes = fs::read(file).unwrap();
        // Resets VmHWM to the current RSS (Linux 4.0+), so only what follows counts.
        fs::write("/proc/self/clear_refs", "5").unwrap();
        let before = status_bytes("VmRSS:");
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let (_, thumb) = make_thumbnail(&bytes, MAX_THUMBNAIL_SIDE).unwrap();
                    let [w, h] = image_dimensions(&thumb).unwrap();
                    assert_eq!(w.max(h), MAX_THUMBNAIL_SIDE);
                });
            }
        });
        println!("rise={}", status_bytes("VmHWM:") - before);
    }

    /// The peak RSS rise of making `threads` thumbnails of `file` at once, in a fresh process.
    fn rise_in_child(file: &Path, threads: usize) -> u64 {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "images::tests::making_thumbnails_of_huge_images_stays_within_the_memory_budget",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}:{threads}", file.display()))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The harness prints the test's name on the same line.
        let figure = stdout
            .split("rise=")
            .nth(1)
            .unwrap_or_else(|| panic!("no figure in {stdout}"));
        let digits: String = figure.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().unwrap()
    }

    /// A folder member can write a sealed 12,000 × 12,000 PNG into the folder; every device
    /// that shows the chat makes its thumbnail. Before, that cost about 390 MB each, two at
    /// a time.
    #[cfg(target_os = "linux")]
    #[test]
    fn making_thumbnails_of_huge_images_stays_within_the_memory_budget() {
        if let Ok(job) = std::env::var(CHILD_ENV) {
            let (file, threads) = job.rsplit_once(':').unwrap();
            return measure(file, threads.parse().unwrap());
        }
        const MIB: u64 = 1024 * 1024;
        let dir = tempfile::tempdir().unwrap();
        let gray = dir.path().join("gray.png");
        fs::write(&gray, png(12_000, 12_000, image::ColorType::L8)).unwrap();
        // 8,000 × 8,000 RGBA is 244 MiB decoded: the most the decode cap lets through.
        let rgba = dir.path().join("rgba.png");
        fs::write(&rgba, png(8_000, 8_000, image::ColorType::Rgba8)).unwrap();
        let gray_decoded = 12_000 * 12_000;
        let headroom = THUMBNAIL_MEMORY_BUDGET - MAX_DECODE_ALLOC;

        let one = rise_in_child(&gray, 1);
        let two = rise_in_child(&gray, 2);
        let big = rise_in_child(&rgba, 1);
        eprintln!(
            "thumbnail peak RSS rise: 12,000² gray {} MiB, two at once {} MiB; 8,000² RGBA {} MiB",
            one / MIB,
            two / MIB,
            big / MIB
        );
        assert!(
            one < gray_decoded + headroom,
            "one gray thumbnail: {one} bytes"
        );
        // Two decodes at once would hold two pictures.
        assert!(
            two < gray_decoded + headroom,
            "two gray thumbnails: {two} bytes"
        );
        assert!(
            big < THUMBNAIL_MEMORY_BUDGET,
            "an RGBA thumbnail: {big} bytes"
        );
    }
}
