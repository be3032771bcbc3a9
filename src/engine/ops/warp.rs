//! Affine warp with bilinear sampling of an RGBA8 image (alignment to 112x112).
//! Kernel: `shaders/warp.wgsl`.

use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct WarpParams {
    pub src_w: u32,
    pub src_h: u32,
    pub out_w: u32,
    pub out_h: u32,
    /// Output pixel (x, y) samples the source at (m[0] x + m[1] y + m[2], m[3] x + m[4] y + m[5]).
    pub m: [f32; 6],
    pub _pad: [f32; 2],
}

/// Source texel, or black outside the image (OpenCV's BORDER_CONSTANT 0).
#[inline]
fn texel(p: &WarpParams, src: &[u8], x: i64, y: i64, c: usize) -> f32 {
    if x < 0 || y < 0 || x >= p.src_w as i64 || y >= p.src_h as i64 {
        return 0.0;
    }
    src[((y as usize) * p.src_w as usize + x as usize) * 4 + c] as f32
}

/// CPU twin of `warp.wgsl`: same coordinates, same weights, same rounding (floor(v + 0.5)).
pub fn cpu(p: &WarpParams, src: &[u8], out: &mut [u8]) {
    let m = p.m;
    for y in 0..p.out_h as usize {
        for x in 0..p.out_w as usize {
            let (xf, yf) = (x as f32, y as f32);
            let sx = m[0] * xf + m[1] * yf + m[2];
            let sy = m[3] * xf + m[4] * yf + m[5];
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let o = (y * p.out_w as usize + x) * 4;
            for c in 0..3 {
                let top = texel(p, src, x0, y0, c) * (1.0 - fx) + texel(p, src, x0 + 1, y0, c) * fx;
                let bottom = texel(p, src, x0, y0 + 1, c) * (1.0 - fx) + texel(p, src, x0 + 1, y0 + 1, c) * fx;
                let v = top * (1.0 - fy) + bottom * fy;
                out[o + c] = (v + 0.5).floor().clamp(0.0, 255.0) as u8;
            }
            out[o + 3] = 255;
        }
    }
}
