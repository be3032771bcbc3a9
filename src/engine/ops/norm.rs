//! L2 normalisation of each pixel's channel vector. Kernel: `shaders/norm.wgsl`.

use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct L2Params {
    pub rows: u32,
    pub c: u32,
    pub eps: f32,
    pub _pad: u32,
}

/// `x / max(|x|, eps)` per row of `c` values.
pub fn l2_cpu(p: &L2Params, input: &[f32], out: &mut [f32]) {
    let c = p.c as usize;
    for r in 0..p.rows as usize {
        let x = &input[r * c..(r + 1) * c];
        let mut ss = 0.0f32;
        for v in x {
            ss += v * v;
        }
        let inv = 1.0 / ss.sqrt().max(p.eps);
        for (o, v) in out[r * c..(r + 1) * c].iter_mut().zip(x) {
            *o = v * inv;
        }
    }
}
