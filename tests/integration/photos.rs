//! Photos as phones send them, and images as a hostile member would: metadata stripped and
//! the picture upright on send, sizes known before loading, and a corpus of awkward or
//! malicious images that each show or are refused with a clear message, quickly and in
//! bounded memory.

use std::path::Path;
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageEncoder, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use umer_chat_core::{make_thumbnail, prepare_image, PhotoSize, Store};
use umer_chat_tests::support::images::{
    crc32, encode, many_frame_gif, png_bomb, png_with, zlib_zeros,
};
use umer_chat_tests::support::{files_under, key, open_store, sign_up, temp_dir};

/// No image, however made, may hold the store up longer than this (debug build).
const TIME_LIMIT: Duration = Duration::from_secs(10);

/// A little-endian TIFF block as a phone writes EXIF: orientation in IFD0, and a GPS IFD.
fn exif(orientation: u16) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    let entry = |t: &mut Vec<u8>, tag: u16, kind: u16, count: u32, value: u32| {
        t.extend_from_slice(&tag.to_le_bytes());
        t.extend_from_slice(&kind.to_le_bytes());
        t.extend_from_slice(&count.to_le_bytes());
        t.extend_from_slice(&value.to_le_bytes());
    };
    t.extend_from_slice(&2u16.to_le_bytes());
    entry(&mut t, 0x0112, 3, 1, u32::from(orientation));
    entry(&mut t, 0x8825, 4, 1, 38);
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(&1u16.to_le_bytes());
    entry(&mut t, 0x0001, 2, 2, u32::from_le_bytes(*b"N\0\0\0"));
    t.extend_from_slice(&0u32.to_le_bytes());
    t.extend_from_slice(b"GPS 52.5200N 13.4050E");
    t
}

/// A "phone photo": landscape pixels with an EXIF orientation that says to turn it.
fn phone_photo(width: u32, height: u32, orientation: u16) -> Vec<u8> {
    let picture = RgbImage::from_fn(width, height, |x, _| {
        if x < width / 2 {
            Rgb([240, 20, 20])
        } else {
            Rgb([20, 20, 240])
        }
    });
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, 90);
    encoder.set_exif_metadata(exif(orientation)).unwrap();
    DynamicImage::ImageRgb8(picture)
        .write_with_encoder(encoder)
        .unwrap();
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A folder with alice and bob and their DM.
fn dm() -> (tempfile::TempDir, Store, String) {
    let dir = temp_dir();
    let store = open_store(dir.path());
    sign_up(&store, &["alice", "bob"]);
    let dm = store
        .create_private_chat(&key("alice"), "bob")
        .unwrap()
        .id
        .to_string();
    (dir, store, dm)
}

#[test]
fn a_sent_phone_photo_arrives_upright_without_exif_or_gps() {
    let (dir, store, dm) = dm();
    let photo = phone_photo(800, 600, 6);
    assert!(contains(&photo, b"GPS 52.5200N"));
    let name = store.save_image(&key("alice"), &dm, &photo).unwrap();
    store
        .append_message(&key("alice"), &dm, None, Some(&name))
        .unwrap();
    let message = store.all_messages(&key("bob"), &dm).unwrap().pop().unwrap();
    assert_eq!(message.image_size, Some([600, 800]), "upright: portrait");
    let (mime, bytes) = store.image_bytes(&key("bob"), &dm, &name).unwrap();
    assert_eq!(mime, "image/jpeg");
    for needle in [&b"Exif"[..], b"GPS", b"52.5200"] {
        assert!(
            !contains(&bytes, needle),
            "{}",
            String::from_utf8_lossy(needle)
        );
    }
    let shown = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(shown.dimensions(), (600, 800));
    assert!(shown.get_pixel(300, 100)[0] > 200, "the red half is on top");
    // And nothing of it, sealed or not, is in the folder in the clear.
    for file in files_under(dir.path()) {
        let stored = std::fs::read(&file).unwrap();
        assert!(!contains(&stored, b"GPS 52.5200N"), "{}", file.display());
    }
}

#[test]
fn png_text_chunks_go_and_transparency_and_depth_stay() {
    let picture = image::ImageBuffer::<Rgba<u16>, _>::from_fn(20, 10, |x, _| {
        Rgba([65535, 0, 0, if x < 10 { 0 } else { 65535 }])
    });
    let mut png = encode(DynamicImage::ImageRgba16(picture), ImageFormat::Png);
    // A tEXt chunk before IEND, as cameras and editors write them.
    let iend = png.len() - 12;
    let text = b"Location\0Home, 12 Secret Street";
    let mut chunk = (text.len() as u32).to_be_bytes().to_vec();
    chunk.extend_from_slice(b"tEXt");
    chunk.extend_from_slice(text);
    let crc = crc32(&chunk[4..]);
    chunk.extend_from_slice(&crc.to_be_bytes());
    png.splice(iend..iend, chunk);
    assert_eq!(umer_chat_core::validate_image(&png).unwrap().ext, "png");
    let stored = prepare_image(&png, PhotoSize::Scaled).unwrap();
    assert!(!contains(&stored, b"Secret Street"));
    let back = image::load_from_memory(&stored).unwrap();
    assert_eq!(back.color(), image::ColorType::Rgba16);
    assert_eq!(back.to_rgba16().get_pixel(0, 0)[3], 0);
}

#[test]
fn original_quality_keeps_every_pixel_but_not_the_metadata() {
    let (_dir, store, dm) = dm();
    let photo = phone_photo(3000, 2000, 1);
    let scaled = store.save_image(&key("alice"), &dm, &photo).unwrap();
    let original = store
        .save_image_sized(&key("alice"), &dm, &photo, PhotoSize::Original)
        .unwrap();
    let size = |name: &str| {
        let (_, bytes) = store.image_bytes(&key("alice"), &dm, name).unwrap();
        assert!(!contains(&bytes, b"GPS"));
        let shown = image::load_from_memory(&bytes).unwrap();
        (shown.width(), shown.height())
    };
    assert_eq!(size(&scaled).0, 2560);
    assert_eq!(size(&original), (3000, 2000));
}

/// One awkward image: how it was made, and whether it may be sent.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    /// `None`: either is right (a decoder may show what there is of a cut file).
    accepted: Option<bool>,
}

fn corpus() -> Vec<Case> {
    let photo = encode(
        DynamicImage::ImageRgb8(RgbImage::from_fn(300, 200, |x, y| {
            Rgb([x as u8, y as u8, 90])
        })),
        ImageFormat::Jpeg,
    );
    let wide16 = DynamicImage::ImageRgb16(image::ImageBuffer::from_fn(40, 30, |x, _| {
        Rgb([x as u16 * 1500, 30_000, 65_535])
    }));
    let alpha = DynamicImage::ImageRgba8(RgbaImage::from_fn(40, 30, |x, _| {
        Rgba([200, 40, 40, if x < 20 { 0 } else { 255 }])
    }));
    vec![
        Case {
            name: "truncated JPEG",
            bytes: photo[..photo.len() / 2].to_vec(),
            accepted: None,
        },
        Case {
            name: "PNG bomb claiming 100,000 × 100,000",
            bytes: png_with(100_000, 100_000, &zlib_zeros(1_000)),
            accepted: Some(false),
        },
        Case {
            name: "PNG bomb of 11,000 × 11,000 zeros (363 MB decoded)",
            bytes: png_bomb(11_000, 11_000),
            accepted: Some(false),
        },
        Case {
            name: "animated GIF of 2,000 frames",
            bytes: many_frame_gif(2_000),
            accepted: Some(true),
        },
        Case {
            name: "CMYK JPEG (Adobe)",
            bytes: std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cmyk.jpg"))
                .unwrap(),
            accepted: Some(true),
        },
        Case {
            name: "16-bit PNG",
            bytes: encode(wide16, ImageFormat::Png),
            accepted: Some(true),
        },
        Case {
            name: "WebP with alpha",
            bytes: encode(alpha, ImageFormat::WebP),
            accepted: Some(true),
        },
    ]
}

#[test]
fn awkward_and_malicious_images_show_or_are_refused_quickly() {
    let (_dir, store, dm) = dm();
    let cache = temp_dir();
    for case in corpus() {
        let started = Instant::now();
        let saved = store.save_image(&key("alice"), &dm, &case.bytes);
        match (&saved, case.accepted) {
            (Ok(name), Some(true) | None) => {
                store
                    .append_message(&key("alice"), &dm, Some(case.name), Some(name))
                    .unwrap();
                let (mime, bytes) = store.image_bytes(&key("bob"), &dm, name).unwrap();
                assert!(mime.starts_with("image/"), "{}: {mime}", case.name);
                image::load_from_memory(&bytes)
                    .unwrap_or_else(|e| panic!("{}: stored image does not decode: {e}", case.name));
                let (_, thumb) = store
                    .image_thumbnail(&key("bob"), &dm, name, 320, cache.path())
                    .unwrap_or_else(|e| panic!("{}: no thumbnail: {e}", case.name));
                let thumb = image::load_from_memory(&thumb).unwrap();
                assert!(thumb.width().max(thumb.height()) <= 320, "{}", case.name);
            }
            (Err(e), Some(false) | None) => {
                assert!(
                    matches!(
                        e.code(),
                        "unsupported_image" | "image_dimensions" | "image_too_large"
                    ),
                    "{}: {} ({e})",
                    case.name,
                    e.code()
                );
                // The message says what is wrong in words a person can act on.
                assert!(e.to_string().len() > 20, "{}: {e}", case.name);
                if case.name.contains("zeros") {
                    assert!(e.to_string().contains("MiB of memory"), "{e}");
                }
            }
            (other, accepted) => panic!("{}: accepted={accepted:?}, got {other:?}", case.name),
        }
        assert!(
            started.elapsed() < TIME_LIMIT,
            "{} took {:?}",
            case.name,
            started.elapsed()
        );
        // The pure functions agree with the store, and are as quick.
        assert_eq!(
            prepare_image(&case.bytes, PhotoSize::Scaled).is_ok(),
            saved.is_ok(),
            "{}",
            case.name
        );
        assert_eq!(
            make_thumbnail(&case.bytes, 320).is_ok(),
            saved.is_ok(),
            "{}",
            case.name
        );
    }
    // An animated GIF is kept as it is, every frame.
    let gif = many_frame_gif(30);
    let name = store.save_image(&key("alice"), &dm, &gif).unwrap();
    assert_eq!(store.image_bytes(&key("bob"), &dm, &name).unwrap().1, gif);
}
