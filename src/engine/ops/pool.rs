//! Average pooling and the mean over the whole spatial grid. Kernels: `shaders/pool.wgsl`.

use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct AvgPoolParams {
    pub n: u32,
    pub in_h: u32,
    pub in_w: u32,
    pub c: u32,
    pub out_h: u32,
    pub out_w: u32,
    pub k_h: u32,
    pub k_w: u32,
    pub stride_h: u32,
    pub stride_w: u32,
    pub pad_top: u32,
    pub pad_left: u32,
}

/// Mean over the in-bounds taps of each window (padding is not counted).
pub fn avg_pool_cpu(p: &AvgPoolParams, input: &[f32], out: &mut [f32]) {
    let (in_h, in_w, c) = (p.in_h as isize, p.in_w as isize, p.c as usize);
    let mut o = 0;
    for n in 0..p.n as isize {
        for oy in 0..p.out_h as isize {
            for ox in 0..p.out_w as isize {
                for ch in 0..c {
                    let mut acc = 0.0f32;
                    let mut count = 0u32;
                    for ky in 0..p.k_h as isize {
                        let y = oy * p.stride_h as isize - p.pad_top as isize + ky;
                        if y < 0 || y >= in_h {
                            continue;
                        }
                        for kx in 0..p.k_w as isize {
                            let x = ox * p.stride_w as isize - p.pad_left as isize + kx;
                            if x < 0 || x >= in_w {
                                continue;
                            }
                            acc += input[(((n * in_h + y) * in_w + x) as usize) * c + ch];
                            count += 1;
                        }
                    }
                    out[o] = if count > 0 { acc / count as f32 } else { 0.0 };
                    o += 1;
                }
            }
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct GlobalMeanParams {
    pub n: u32,
    pub hw: u32,
    pub c: u32,
    pub _pad: u32,
}

/// `[N, H, W, C] -> [N, 1, 1, C]`: the mean of each channel over all pixels, summed in pixel order.
pub fn global_mean_cpu(p: &GlobalMeanParams, input: &[f32], out: &mut [f32]) {
    let (hw, c) = (p.hw as usize, p.c as usize);
    for n in 0..p.n as usize {
        for ch in 0..c {
            let mut acc = 0.0f32;
            for i in 0..hw {
                acc += input[(n * hw + i) * c + ch];
            }
            out[n * c + ch] = acc / hw as f32;
        }
    }
}
