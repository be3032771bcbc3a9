//! From file bytes to faces: decoding (limits, EXIF orientation), and later detection and alignment.

pub mod decode;

pub use decode::{decode_image, Rgba};
