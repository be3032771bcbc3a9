//! facepatch: face verification whose score is an exact sum of patch contributions, computed by
//! hand-written WGSL compute shaders (WebGPU in the browser, Vulkan or GL natively) with a
//! plain-Rust twin of every kernel. See README.md and ARCHITECTURE.md.

pub mod embed;
pub mod engine;
pub mod error;
pub mod eval;
pub mod face;
pub mod models;
pub mod pipeline;
pub mod template;
pub mod verify;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use error::{Error, Result};
