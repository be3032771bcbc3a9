//! 2-D convolution (NHWC, weights OHWI) with stride, four-sided padding, groups and a fused
//! activation. Kernel: `shaders/conv.wgsl`.

use super::activate;
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ConvParams {
    pub n: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub in_c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub out_c: u32,
    pub groups: u32,
    pub k_h: u32,
    pub k_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
    /// Offset of the `[out_c, k_h, k_w, in_c/groups]` weights in the packed weight buffer.
    pub w_off: u32,
    /// Offset of the `[out_c]` bias, or `NONE`.
    pub b_off: u32,
    pub act: u32,
    pub alpha_off: u32,
    pub slope: f32,
    pub _pad: u32,
}

impl ConvParams {
    pub fn output_len(&self) -> usize {
        (self.n * self.out_h * self.out_w * self.out_c) as usize
    }
}

/// CPU twin of `conv.wgsl`: the same sum, in the same order (ky, kx, ci), then bias, then activation.
pub fn cpu(p: &ConvParams, input: &[f32], weights: &[f32], out: &mut [f32]) {
    let (in_h, in_w, in_c) = (p.in_h as usize, p.in_w as usize, p.in_c as usize);
    let (out_h, out_w, out_c) = (p.out_h as usize, p.out_w as usize, p.out_c as usize);
    let (k_h, k_w) = (p.k_h as usize, p.k_w as usize);
    let cig = in_c / p.groups as usize;
    let cog = out_c / p.groups as usize;
    let w = &weights[p.w_off as usize..p.w_off as usize + out_c * k_h * k_w * cig];
    let mut o = 0;
    for n in 0..p.n as usize {
        let img = &input[n * in_h * in_w * in_c..(n + 1) * in_h * in_w * in_c];
        for oy in 0..out_h {
            let y0 = (oy * p.stride_h as usize) as isize - p.pad_top as isize;
            for ox in 0..out_w {
                let x0 = (ox * p.stride_w as usize) as isize - p.pad_left as isize;
                for co in 0..out_c {
                    let ci0 = (co / cog) * cig;
                    let wk = &w[co * k_h * k_w * cig..(co + 1) * k_h * k_w * cig];
                    let mut acc = 0.0f32;
                    for ky in 0..k_h {
                        let y = y0 + ky as isize;
                        if y < 0 || y >= in_h as isize {
                            continue;
                        }
                        for kx in 0..k_w {
                            let x = x0 + kx as isize;
                            if x < 0 || x >= in_w as isize {
                                continue;
                            }
                            let px = ((y as usize * in_w) + x as usize) * in_c + ci0;
                            let xs = &img[px..px + cig];
                            let ws = &wk[(ky * k_w + kx) * cig..(ky * k_w + kx + 1) * cig];
                            for (a, b) in xs.iter().zip(ws) {
                                acc += a * b;
                            }
                        }
                    }
                    if p.b_off != super::NONE {
                        acc += weights[p.b_off as usize + co];
                    }
                    out[o] = activate(p.act, p.alpha_off, p.slope, co, acc, weights);
                    o += 1;
                }
            }
        }
    }
}
