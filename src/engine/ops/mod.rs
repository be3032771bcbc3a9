//! One file per op family: the uniform block its WGSL kernel reads, and its plain-Rust twin.
//!
//! The CPU twin is the reference: it computes the same math in the same order as the kernel in
//! `shaders/<family>.wgsl`, and `tests/kernels.rs` compares the two on awkward shapes.

pub mod conv;
pub mod eltwise;
pub mod linear;
pub mod norm;
pub mod pool;
pub mod prep;
pub mod warp;

/// Marks an absent weight offset (no bias, no PReLU slope) in a uniform block.
pub const NONE: u32 = u32::MAX;

/// Activation fused into a conv or add, encoded as in the shaders' `activate()`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    None,
    Relu,
    /// Per-channel slope for negative inputs, at this offset in the packed weights.
    Prelu(u32),
    /// One slope for negative inputs.
    LeakyRelu(f32),
}

impl Activation {
    /// (code, alpha offset, slope) as the uniform blocks carry them.
    pub fn encode(self) -> (u32, u32, f32) {
        match self {
            Activation::None => (0, NONE, 0.0),
            Activation::Relu => (1, NONE, 0.0),
            Activation::Prelu(off) => (2, off, 0.0),
            Activation::LeakyRelu(s) => (3, NONE, s),
        }
    }
}

/// The shared `activate()` of conv.wgsl and eltwise.wgsl.
#[inline]
pub fn activate(code: u32, alpha_off: u32, slope: f32, channel: usize, v: f32, weights: &[f32]) -> f32 {
    match code {
        1 => v.max(0.0),
        2 => {
            if v < 0.0 {
                v * weights[alpha_off as usize + channel]
            } else {
                v
            }
        }
        3 => {
            if v < 0.0 {
                v * slope
            } else {
                v
            }
        }
        _ => v,
    }
}
