// Affine warp with bilinear sampling, RGBA8 in and out (one u32 per pixel), black outside the source.
// CPU twin: src/engine/ops/warp.rs (same coordinates, weights and rounding).

struct Params { src_w: u32, src_h: u32, out_w: u32, out_h: u32, m0: vec4<f32>, m1: vec4<f32> }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> src: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<u32>;

fn texel(x: i32, y: i32) -> vec3<f32> {
    if (x < 0 || y < 0 || x >= i32(p.src_w) || y >= i32(p.src_h)) { return vec3<f32>(0.0); }
    let v = src[u32(y) * p.src_w + u32(x)];
    return vec3<f32>(f32(v & 0xffu), f32((v >> 8u) & 0xffu), f32((v >> 16u) & 0xffu));
}

@compute @workgroup_size(64)
fn warp(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.out_w * p.out_h) { return; }
    let xf = f32(i % p.out_w);
    let yf = f32(i / p.out_w);
    // m = (m0.x, m0.y, m0.z, m0.w, m1.x, m1.y)
    let sx = p.m0.x * xf + p.m0.y * yf + p.m0.z;
    let sy = p.m0.w * xf + p.m1.x * yf + p.m1.y;
    let fl = floor(vec2<f32>(sx, sy));
    let f = vec2<f32>(sx, sy) - fl;
    let x0 = i32(fl.x);
    let y0 = i32(fl.y);
    let top = texel(x0, y0) * (1.0 - f.x) + texel(x0 + 1, y0) * f.x;
    let bottom = texel(x0, y0 + 1) * (1.0 - f.x) + texel(x0 + 1, y0 + 1) * f.x;
    let v = clamp(floor(top * (1.0 - f.y) + bottom * f.y + 0.5), vec3<f32>(0.0), vec3<f32>(255.0));
    let u = vec3<u32>(v);
    dst[i] = u.x | (u.y << 8u) | (u.z << 16u) | (255u << 24u);
}
