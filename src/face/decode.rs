//! Image decoding with hard limits, so a hostile file cannot take unbounded memory, and with the
//! EXIF orientation applied, so faces are upright as the camera saw them.

use crate::error::{Error, Result};
use image::{ImageDecoder, ImageReader};
use std::io::Cursor;

/// Largest accepted width or height in pixels.
pub const MAX_SIDE: u32 = 12_000;
/// Largest amount of memory the decoder may allocate.
pub const MAX_DECODE_BYTES: u64 = 512 << 20;
/// Smallest image that can hold a detectable face.
pub const MIN_SIDE: u32 = 16;

/// An 8-bit RGBA image, rows top to bottom.
#[derive(Clone, Debug, PartialEq)]
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl Rgba {
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<Rgba> {
        if data.len() != width as usize * height as usize * 4 {
            return Err(Error::Image(format!(
                "{width}x{height} RGBA needs {} bytes, got {}",
                width as usize * height as usize * 4,
                data.len()
            )));
        }
        Ok(Rgba { width, height, data })
    }
}

/// Decodes PNG or JPEG bytes (any bit depth, grayscale, CMYK) to upright RGBA8.
pub fn decode_image(bytes: &[u8]) -> Result<Rgba> {
    if bytes.is_empty() {
        return Err(Error::Image("the file is empty".into()));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::Image(format!("cannot read the file: {e}")))?;
    if reader.format().is_none() {
        return Err(Error::Image(
            "not a PNG or JPEG image (unrecognised file signature)".into(),
        ));
    }
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_has_end(bytes) {
        return Err(Error::Image(
            "the JPEG is truncated (its image data has no end marker)".into(),
        ));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(describe)?;
    let (w, h) = decoder.dimensions();
    // The header's claim is checked before any pixel is decoded.
    if w > MAX_SIDE || h > MAX_SIDE || (w as u64 * h as u64 * 4) > MAX_DECODE_BYTES {
        return Err(Error::Image(format!(
            "the image claims {w}x{h} pixels; the limit is {MAX_SIDE} per side and {} MiB decoded",
            MAX_DECODE_BYTES >> 20
        )));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = image::DynamicImage::from_decoder(decoder).map_err(describe)?;
    img.apply_orientation(orientation);
    let rgba = img.into_rgba8();
    let (w, h) = rgba.dimensions();
    if w < MIN_SIDE || h < MIN_SIDE {
        return Err(Error::Image(format!(
            "the image is {w}x{h}; at least {MIN_SIDE}x{MIN_SIDE} is needed to find a face"
        )));
    }
    Rgba::new(w, h, rgba.into_raw())
}

/// A complete JPEG has an end-of-image marker after its last start-of-scan; decoders otherwise
/// fill the missing rows with grey and the loss goes unnoticed.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let last_sos = bytes.windows(2).rposition(|w| w == [0xFF, 0xDA]);
    match last_sos {
        Some(p) => bytes[p..].windows(2).any(|w| w == [0xFF, 0xD9]),
        None => false,
    }
}

fn describe(e: image::ImageError) -> Error {
    match e {
        image::ImageError::Limits(l) => Error::Image(format!("the image exceeds the decoder's limits ({l})")),
        image::ImageError::Unsupported(u) => Error::Image(format!("unsupported image: {u}")),
        image::ImageError::Decoding(d) => Error::Image(format!("the image data is corrupt or truncated: {d}")),
        other => Error::Image(format!("cannot decode the image: {other}")),
    }
}
