//! Element-wise and data-movement ops: residual add, channel concat, nearest upsample.
//! Kernels: `shaders/eltwise.wgsl`.

use super::activate;
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AddParams {
    pub len: u32,
    pub c: u32,
    pub act: u32,
    pub alpha_off: u32,
    pub slope: f32,
    pub _pad: [u32; 3],
}

/// `out = act(a + b)`.
pub fn add_cpu(p: &AddParams, a: &[f32], b: &[f32], weights: &[f32], out: &mut [f32]) {
    let c = p.c as usize;
    for i in 0..p.len as usize {
        out[i] = activate(p.act, p.alpha_off, p.slope, i % c, a[i] + b[i], weights);
    }
}

/// One input's share of a channel concat: copies `in_c` channels into channels
/// `c_off..c_off+in_c` of an output with `out_c` channels, for every pixel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ConcatParams {
    pub pixels: u32,
    pub in_c: u32,
    pub out_c: u32,
    pub c_off: u32,
}

pub fn concat_cpu(p: &ConcatParams, input: &[f32], out: &mut [f32]) {
    let (in_c, out_c, off) = (p.in_c as usize, p.out_c as usize, p.c_off as usize);
    for px in 0..p.pixels as usize {
        out[px * out_c + off..px * out_c + off + in_c].copy_from_slice(&input[px * in_c..(px + 1) * in_c]);
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct UpsampleParams {
    pub n: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub _pad: [u32; 2],
}

/// Nearest neighbour: output pixel (y, x) reads input (floor(y*in_h/out_h), floor(x*in_w/out_w)).
pub fn upsample_cpu(p: &UpsampleParams, input: &[f32], out: &mut [f32]) {
    let (in_h, in_w, c) = (p.in_h as usize, p.in_w as usize, p.c as usize);
    let (out_h, out_w) = (p.out_h as usize, p.out_w as usize);
    let mut o = 0;
    for n in 0..p.n as usize {
        for y in 0..out_h {
            let sy = y * in_h / out_h;
            for x in 0..out_w {
                let sx = x * in_w / out_w;
                let s = ((n * in_h + sy) * in_w + sx) * c;
                out[o..o + c].copy_from_slice(&input[s..s + c]);
                o += c;
            }
        }
    }
}
