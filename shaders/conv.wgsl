// 2-D convolution, NHWC activations, OHWI weights: `conv2d` computes one output element per invocation,
// `conv2d_x4` four neighbouring output channels of one pixel (each input value is read once for all four) when a
// group's output channels come in fours, `depthwise_x4` four neighbouring channels of a depthwise convolution.
// Fewer, fuller invocations: software GPUs pay per invocation, real ones per redundant load.
// CPU twin: src/engine/ops/conv.rs (same summation order for every output: ky, kx, ci; then bias; then activation).

struct Params {
    n: u32, in_h: u32, in_w: u32, in_c: u32,
    out_h: u32, out_w: u32, out_c: u32, groups: u32,
    k_h: u32, k_w: u32, stride_h: u32, stride_w: u32,
    pad_top: u32, pad_left: u32, w_off: u32, b_off: u32,
    act: u32, alpha_off: u32, slope: f32, _pad: u32,
}

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

fn activate(v: f32, ch: u32) -> f32 {
    switch p.act {
        case 1u: { return max(v, 0.0); }
        case 2u: { return select(v, v * weights[p.alpha_off + ch], v < 0.0); }
        case 3u: { return select(v, v * p.slope, v < 0.0); }
        default: { return v; }
    }
}

// The top-left input tap of output pixel `pix` (= (n * out_h + oy) * out_w + ox) and where its image starts.
struct Window { y0: i32, x0: i32, img: u32 }

fn window(pix: u32) -> Window {
    let ox = pix % p.out_w;
    let oy = (pix / p.out_w) % p.out_h;
    let n = pix / (p.out_w * p.out_h);
    return Window(i32(oy * p.stride_h) - i32(p.pad_top), i32(ox * p.stride_w) - i32(p.pad_left), n * p.in_h * p.in_w * p.in_c);
}

// Bias and activation of output channels co..co+3 of pixel `pix`, then the store.
fn store4(pix: u32, co: u32, acc: vec4<f32>) {
    let o = pix * p.out_c + co;
    for (var j = 0u; j < 4u; j++) {
        var v = acc[j];
        if (p.b_off != NONE) { v += weights[p.b_off + co + j]; }
        dst[o + j] = activate(v, co + j);
    }
}

@compute @workgroup_size(64)
fn conv2d(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let total = p.n * p.out_h * p.out_w * p.out_c;
    if (i >= total) { return; }
    let co = i % p.out_c;
    let win = window(i / p.out_c);
    let cig = p.in_c / p.groups;
    let cog = p.out_c / p.groups;
    let ci0 = (co / cog) * cig;
    let wk = p.w_off + co * p.k_h * p.k_w * cig;
    var acc = 0.0;
    for (var ky = 0u; ky < p.k_h; ky++) {
        let y = win.y0 + i32(ky);
        if (y < 0 || y >= i32(p.in_h)) { continue; }
        for (var kx = 0u; kx < p.k_w; kx++) {
            let x = win.x0 + i32(kx);
            if (x < 0 || x >= i32(p.in_w)) { continue; }
            let px = win.img + (u32(y) * p.in_w + u32(x)) * p.in_c + ci0;
            let wp = wk + (ky * p.k_w + kx) * cig;
            for (var c = 0u; c < cig; c++) {
                acc += src[px + c] * weights[wp + c];
            }
        }
    }
    if (p.b_off != NONE) { acc += weights[p.b_off + co]; }
    dst[i] = activate(acc, co);
}

@compute @workgroup_size(64)
fn conv2d_x4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let quads = p.out_c / 4u;
    if (i >= p.n * p.out_h * p.out_w * quads) { return; }
    let co = (i % quads) * 4u;
    let pix = i / quads;
    let win = window(pix);
    let cig = p.in_c / p.groups;
    let cog = p.out_c / p.groups;
    let ci0 = (co / cog) * cig;
    let per_co = p.k_h * p.k_w * cig;
    let wk = p.w_off + co * per_co;
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.k_h; ky++) {
        let y = win.y0 + i32(ky);
        if (y < 0 || y >= i32(p.in_h)) { continue; }
        for (var kx = 0u; kx < p.k_w; kx++) {
            let x = win.x0 + i32(kx);
            if (x < 0 || x >= i32(p.in_w)) { continue; }
            let px = win.img + (u32(y) * p.in_w + u32(x)) * p.in_c + ci0;
            let wp = wk + (ky * p.k_w + kx) * cig;
            for (var c = 0u; c < cig; c++) {
                let v = src[px + c];
                let w = wp + c;
                acc += v * vec4<f32>(weights[w], weights[w + per_co], weights[w + 2u * per_co], weights[w + 3u * per_co]);
            }
        }
    }
    store4(pix, co, acc);
}

@compute @workgroup_size(64)
fn depthwise_x4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    let quads = p.out_c / 4u;
    if (i >= p.n * p.out_h * p.out_w * quads) { return; }
    let co = (i % quads) * 4u;
    let pix = i / quads;
    let win = window(pix);
    let kk = p.k_h * p.k_w;
    let wk = p.w_off + co * kk;
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < p.k_h; ky++) {
        let y = win.y0 + i32(ky);
        if (y < 0 || y >= i32(p.in_h)) { continue; }
        for (var kx = 0u; kx < p.k_w; kx++) {
            let x = win.x0 + i32(kx);
            if (x < 0 || x >= i32(p.in_w)) { continue; }
            let px = win.img + (u32(y) * p.in_w + u32(x)) * p.in_c + co;
            let k = wk + ky * p.k_w + kx;
            let v = vec4<f32>(src[px], src[px + 1u], src[px + 2u], src[px + 3u]);
            acc += v * vec4<f32>(weights[k], weights[k + kk], weights[k + 2u * kk], weights[k + 3u * kk]);
        }
    }
    store4(pix, co, acc);
}
