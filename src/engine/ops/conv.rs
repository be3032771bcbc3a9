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

/// The weights re-laid out for the CPU twin, once at load: `[kh][kw][c]` for depthwise, else
/// `[group][kh][kw][ci][co]`, so the innermost loop runs over output channels and vectorises.
pub fn pack_cpu(p: &ConvParams, weights: &[f32]) -> Vec<f32> {
    let (k_h, k_w, out_c, g) = (p.k_h as usize, p.k_w as usize, p.out_c as usize, p.groups as usize);
    let cig = p.in_c as usize / g;
    let cog = out_c / g;
    let w = &weights[p.w_off as usize..p.w_off as usize + out_c * k_h * k_w * cig];
    let mut packed = vec![0.0; w.len()];
    for co in 0..out_c {
        let (grp, col) = (co / cog, co % cog);
        for k in 0..k_h * k_w {
            for ci in 0..cig {
                let src = (co * k_h * k_w + k) * cig + ci;
                let dst = if cig == 1 && cog == 1 {
                    k * out_c + co
                } else {
                    ((grp * k_h * k_w + k) * cig + ci) * cog + col
                };
                packed[dst] = w[src];
            }
        }
    }
    packed
}

/// CPU twin of `conv.wgsl`. For each output channel the products are summed in the kernel's order
/// (ky, kx, ci), then the bias is added, then the activation applied; only the loop nesting differs.
pub fn cpu(p: &ConvParams, input: &[f32], weights: &[f32], out: &mut [f32]) {
    cpu_packed(p, input, &pack_cpu(p, weights), weights, out)
}

/// `cpu` with weights already laid out by `pack_cpu` (bias and PReLU slopes still come from `weights`).
pub fn cpu_packed(p: &ConvParams, input: &[f32], packed: &[f32], weights: &[f32], out: &mut [f32]) {
    let (in_h, in_w, in_c) = (p.in_h as usize, p.in_w as usize, p.in_c as usize);
    let (out_h, out_w, out_c) = (p.out_h as usize, p.out_w as usize, p.out_c as usize);
    let (k_h, k_w, g) = (p.k_h as usize, p.k_w as usize, p.groups as usize);
    let cig = in_c / g;
    let cog = out_c / g;
    let depthwise = cig == 1 && cog == 1;
    for n in 0..p.n as usize {
        let img = &input[n * in_h * in_w * in_c..(n + 1) * in_h * in_w * in_c];
        for oy in 0..out_h {
            let y0 = (oy * p.stride_h as usize) as isize - p.pad_top as isize;
            for ox in 0..out_w {
                let x0 = (ox * p.stride_w as usize) as isize - p.pad_left as isize;
                let o = ((n * out_h + oy) * out_w + ox) * out_c;
                let acc = &mut out[o..o + out_c];
                acc.fill(0.0);
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
                        let px = (y as usize * in_w + x as usize) * in_c;
                        let k = ky * k_w + kx;
                        if depthwise {
                            let ws = &packed[k * out_c..(k + 1) * out_c];
                            for ((a, xv), wv) in acc.iter_mut().zip(&img[px..px + in_c]).zip(ws) {
                                *a += xv * wv;
                            }
                            continue;
                        }
                        for grp in 0..g {
                            let accg = &mut acc[grp * cog..(grp + 1) * cog];
                            for ci in 0..cig {
                                let xv = img[px + grp * cig + ci];
                                let base = ((grp * k_h * k_w + k) * cig + ci) * cog;
                                for (a, wv) in accg.iter_mut().zip(&packed[base..base + cog]) {
                                    *a += xv * wv;
                                }
                            }
                        }
                    }
                }
                for (co, a) in acc.iter_mut().enumerate() {
                    let mut v = *a;
                    if p.b_off != super::NONE {
                        v += weights[p.b_off as usize + co];
                    }
                    *a = activate(p.act, p.alpha_off, p.slope, co, v, weights);
                }
            }
        }
    }
}
