//! Alignment: the least-squares similarity transform (rotation, uniform scale, translation) from
//! the 5 detected landmarks to the ArcFace template, then a bilinear warp to 112x112 on the GPU
//! (`shaders/warp.wgsl`) or with its CPU twin (`engine/ops/warp.rs`).

use super::decode::Rgba;
use crate::engine::ops::warp::{self, WarpParams};
use crate::engine::GpuContext;
use crate::error::Result;

/// Side of an aligned face.
pub const SIDE: u32 = 112;

/// Where the five landmarks go in a 112x112 ArcFace crop: eyes, nose, mouth corners.
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
];

/// Crops above this go through the CPU twin (WebGPU's default storage binding limit is 128 MiB).
const MAX_GPU_CROP_BYTES: usize = 64 << 20;

/// A 2x3 affine matrix `[a, b, c, d, e, f]`: (x, y) -> (a x + b y + c, d x + e y + f).
pub type Affine = [f64; 6];

/// The similarity transform minimising the squared distances from `src` (mapped) to `dst`.
/// In 2-D the least-squares similarity (Umeyama without reflection) has a closed form.
pub fn similarity(src: &[[f32; 2]; 5], dst: &[[f32; 2]; 5]) -> Affine {
    let n = src.len() as f64;
    let mean = |p: &[[f32; 2]; 5]| {
        let (sx, sy) = p
            .iter()
            .fold((0.0, 0.0), |(x, y), q| (x + q[0] as f64, y + q[1] as f64));
        (sx / n, sy / n)
    };
    let (mpx, mpy) = mean(src);
    let (mqx, mqy) = mean(dst);
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (p, q) in src.iter().zip(dst) {
        let (px, py) = (p[0] as f64 - mpx, p[1] as f64 - mpy);
        let (qx, qy) = (q[0] as f64 - mqx, q[1] as f64 - mqy);
        dot += px * qx + py * qy;
        cross += px * qy - py * qx;
        norm += px * px + py * py;
    }
    if norm < 1e-12 {
        // All landmarks coincide: no defined rotation or scale.
        return [1.0, 0.0, mqx - mpx, 0.0, 1.0, mqy - mpy];
    }
    let (a, b) = (dot / norm, cross / norm);
    [a, -b, mqx - (a * mpx - b * mpy), b, a, mqy - (b * mpx + a * mpy)]
}

/// The inverse of a similarity (or any invertible affine) transform.
pub fn invert(m: &Affine) -> Affine {
    let det = m[0] * m[4] - m[1] * m[3];
    let (a, b, d, e) = (m[4] / det, -m[1] / det, -m[3] / det, m[0] / det);
    [a, b, -(a * m[2] + b * m[5]), d, e, -(d * m[2] + e * m[5])]
}

/// The part of `img` a warp through `inverse` can read for a `side` x `side` output, with the
/// transform shifted to match: the GPU then uploads a face-sized crop, not the whole photo.
fn crop_for(img: &Rgba, inverse: &Affine, side: u32) -> (Rgba, Affine) {
    let s = side as f64;
    let corners = [(0.0, 0.0), (s, 0.0), (0.0, s), (s, s)];
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (x, y) in corners {
        let (sx, sy) = (
            inverse[0] * x + inverse[1] * y + inverse[2],
            inverse[3] * x + inverse[4] * y + inverse[5],
        );
        x0 = x0.min(sx);
        y0 = y0.min(sy);
        x1 = x1.max(sx);
        y1 = y1.max(sy);
    }
    let clamp = |v: f64, hi: u32| (v.max(0.0) as u32).min(hi);
    let (cx0, cy0) = (clamp(x0.floor() - 2.0, img.width), clamp(y0.floor() - 2.0, img.height));
    let (cx1, cy1) = (clamp(x1.ceil() + 2.0, img.width), clamp(y1.ceil() + 2.0, img.height));
    let (w, h) = ((cx1 - cx0).max(1), (cy1 - cy0).max(1));
    let mut data = vec![0u8; (w * h * 4) as usize];
    if cx1 > cx0 && cy1 > cy0 {
        for y in 0..h {
            let src = ((cy0 + y) * img.width + cx0) as usize * 4;
            data[(y * w) as usize * 4..((y + 1) * w) as usize * 4]
                .copy_from_slice(&img.data[src..src + w as usize * 4]);
        }
    }
    let mut m = *inverse;
    m[2] -= cx0 as f64;
    m[5] -= cy0 as f64;
    (
        Rgba {
            width: w,
            height: h,
            data,
        },
        m,
    )
}

fn params(src: &Rgba, inverse: &Affine, side: u32) -> WarpParams {
    WarpParams {
        src_w: src.width,
        src_h: src.height,
        out_w: side,
        out_h: side,
        m: inverse.map(|v| v as f32),
        _pad: [0.0; 2],
    }
}

/// Warps `img` so that `forward` (photo -> crop) lands it in a `side` x `side` crop.
/// `gpu: None` uses the CPU twin.
pub async fn warp_affine(img: &Rgba, forward: &Affine, side: u32, gpu: Option<&GpuContext>) -> Result<Rgba> {
    let (crop, inverse) = crop_for(img, &invert(forward), side);
    let p = params(&crop, &inverse, side);
    // A face filling a huge photo gives a crop above a storage binding: the CPU twin takes those.
    let gpu = gpu.filter(|_| crop.data.len() <= MAX_GPU_CROP_BYTES);
    let data = match gpu {
        Some(ctx) => ctx.warp(&p, &crop.data).await?,
        None => {
            let mut out = vec![0u8; (side * side * 4) as usize];
            warp::cpu(&p, &crop.data, &mut out);
            out
        }
    };
    Rgba::new(side, side, data)
}

/// The 112x112 ArcFace-aligned crop of the face with these landmarks.
pub async fn align(img: &Rgba, landmarks: &[[f32; 2]; 5], gpu: Option<&GpuContext>) -> Result<Rgba> {
    warp_affine(img, &similarity(landmarks, &ARCFACE_TEMPLATE), SIDE, gpu).await
}

/// The image mirrored left to right (for flip test-time augmentation).
pub fn mirror(img: &Rgba) -> Rgba {
    let (w, h) = (img.width as usize, img.height as usize);
    let mut data = vec![0u8; img.data.len()];
    for y in 0..h {
        for x in 0..w {
            let (s, d) = ((y * w + x) * 4, (y * w + (w - 1 - x)) * 4);
            data[d..d + 4].copy_from_slice(&img.data[s..s + 4]);
        }
    }
    Rgba {
        width: img.width,
        height: img.height,
        data,
    }
}
