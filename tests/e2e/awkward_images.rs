//! Awkward and malicious images, made by the generators `tests/integration/photos.rs` uses
//! too (`support::images`).

use std::path::Path;

use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use umer_chat_tests::support::images::{encode, many_frame_gif, png_bomb, png_with, zlib_zeros};

/// One awkward image as a person would attach it.
pub struct Case {
    pub name: &'static str,
    pub file: &'static str,
    pub mime: &'static str,
    pub bytes: Vec<u8>,
    /// `None`: either is right (a decoder may show what there is of a cut file).
    pub accepted: Option<bool>,
}

pub fn corpus() -> Vec<Case> {
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
            file: "cut.jpg",
            mime: "image/jpeg",
            bytes: photo[..photo.len() / 2].to_vec(),
            accepted: None,
        },
        Case {
            name: "PNG bomb claiming 100,000 × 100,000",
            file: "bomb.png",
            mime: "image/png",
            bytes: png_with(100_000, 100_000, &zlib_zeros(1_000)),
            accepted: Some(false),
        },
        Case {
            name: "PNG bomb of 11,000 × 11,000 zeros",
            file: "zeros.png",
            mime: "image/png",
            bytes: png_bomb(11_000, 11_000),
            accepted: Some(false),
        },
        Case {
            name: "animated GIF of 2,000 frames",
            file: "frames.gif",
            mime: "image/gif",
            bytes: many_frame_gif(2_000),
            accepted: Some(true),
        },
        Case {
            name: "CMYK JPEG",
            file: "cmyk.jpg",
            mime: "image/jpeg",
            bytes: std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cmyk.jpg"))
                .unwrap(),
            accepted: Some(true),
        },
        Case {
            name: "16-bit PNG",
            file: "deep.png",
            mime: "image/png",
            bytes: encode(wide16, ImageFormat::Png),
            accepted: Some(true),
        },
        Case {
            name: "WebP with alpha",
            file: "alpha.webp",
            mime: "image/webp",
            bytes: encode(alpha, ImageFormat::WebP),
            accepted: Some(true),
        },
    ]
}
