//! Image files for tests: encoded pictures, and the awkward and malicious ones a hostile
//! member would attach (decompression bombs, endless animations). Shared by the integration
//! and the end-to-end tests.

use std::io::Cursor;

use image::codecs::gif::{GifEncoder, Repeat};
use image::{DynamicImage, Frame, ImageFormat, Rgba, RgbaImage};

pub fn encode(picture: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    picture.write_to(&mut out, format).unwrap();
    out.into_inner()
}

/// A PNG whose header claims `width` × `height` of RGB, whose rows are all zeros that
/// compress to almost nothing: a decompression bomb.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let zeros = u64::from(height) * (1 + 3 * u64::from(width));
    png_with(width, height, &zlib_zeros(zeros))
}

/// A PNG with header `width` × `height` and `idat` as its pixel data, however short.
pub fn png_with(width: u32, height: u32, idat: &[u8]) -> Vec<u8> {
    let chunk = |png: &mut Vec<u8>, kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(data);
        png.extend_from_slice(&crc_input);
        png.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    };
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(&mut png, b"IDAT", idat);
    chunk(&mut png, b"IEND", b"");
    png
}

/// A zlib stream of `n` zero bytes: one fixed-Huffman deflate block of a literal 0 and
/// then matches of 258 bytes at distance 1 (13 bits each).
pub fn zlib_zeros(n: u64) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        len: u32,
    }
    impl Bits {
        fn put(&mut self, value: u64, count: u32) {
            self.acc |= value << self.len;
            self.len += count;
            while self.len >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.len -= 8;
            }
        }
        /// Huffman codes go most significant bit first.
        fn code(&mut self, code: u64, count: u32) {
            let reversed = (0..count).fold(0, |r, i| (r << 1) | ((code >> i) & 1));
            self.put(reversed, count);
        }
    }
    let mut bits = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        len: 0,
    };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman
    bits.code(0x30, 8); // literal 0
    let matches = (n - 1) / 258;
    for _ in 0..matches {
        bits.code(0b1100_0101, 8); // length 258
        bits.code(0, 5); // distance 1
    }
    for _ in 0..(n - 1 - matches * 258) {
        bits.code(0x30, 8);
    }
    bits.code(0, 7); // end of block
    bits.put(0, 7); // flush to a byte
    let mut out = bits.out;
    let adler = ((n % 65_521) << 16) | 1; // a = 1 + Σ0, b = Σa
    out.extend_from_slice(&(adler as u32).to_be_bytes());
    out
}

pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn many_frame_gif(frames: usize) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        for i in 0..frames {
            let shade = (i % 200) as u8;
            let frame = RgbaImage::from_pixel(16, 16, Rgba([shade, 100, 200 - shade, 255]));
            encoder.encode_frame(Frame::new(frame)).unwrap();
        }
    }
    out
}
