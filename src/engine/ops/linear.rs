//! Fully connected layer over each image's flattened NHWC tensor. Kernel: `shaders/linear.wgsl`.

use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LinearParams {
    pub n: u32,
    pub in_features: u32,
    pub out_features: u32,
    /// Offset of the `[out, in]` weights in the packed weight buffer.
    pub w_off: u32,
    /// Offset of the `[out]` bias, or `NONE`.
    pub b_off: u32,
    pub _pad: [u32; 3],
}

pub fn cpu(p: &LinearParams, input: &[f32], weights: &[f32], out: &mut [f32]) {
    let (k, m) = (p.in_features as usize, p.out_features as usize);
    for n in 0..p.n as usize {
        let x = &input[n * k..(n + 1) * k];
        for j in 0..m {
            let w = &weights[p.w_off as usize + j * k..p.w_off as usize + (j + 1) * k];
            let mut acc = 0.0f32;
            for (a, b) in x.iter().zip(w) {
                acc += a * b;
            }
            if p.b_off != super::NONE {
                acc += weights[p.b_off as usize + j];
            }
            out[n * m + j] = acc;
        }
    }
}
