//! Input preparation: RGBA `u8` pixels to a normalised float NHWC tensor with 3 channels.
//! Kernel: `shaders/prep.wgsl`.

use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PrepParams {
    pub pixels: u32,
    /// 0: output channels are R, G, B; 1: B, G, R.
    pub bgr: u32,
    pub _pad: [u32; 2],
    pub mean: [f32; 4],
    pub scale: [f32; 4],
}

/// `rgba` holds `pixels` pixels, 4 bytes each; `out` gets 3 floats per pixel.
pub fn cpu(p: &PrepParams, rgba: &[u8], out: &mut [f32]) {
    for i in 0..p.pixels as usize {
        let px = &rgba[i * 4..i * 4 + 3];
        for c in 0..3 {
            let src = if p.bgr == 1 { 2 - c } else { c };
            out[i * 3 + c] = (px[src] as f32 - p.mean[c]) * p.scale[c];
        }
    }
}
