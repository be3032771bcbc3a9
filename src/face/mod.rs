//! From file bytes to aligned faces: decoding (limits, EXIF orientation), detection (RetinaFace),
//! alignment (similarity transform to the ArcFace template, bilinear warp to 112x112).

pub mod align;
pub mod decode;
pub mod detect;

pub use decode::{decode_image, Rgba};
pub use detect::{primary_face, DetectOptions, Detector, Face};
