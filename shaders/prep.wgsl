// RGBA u8 pixels (one u32 each, little-endian R,G,B,A) to a normalised 3-channel float tensor.
// CPU twin: src/engine/ops/prep.rs.

struct Params { pixels: u32, bgr: u32, _p0: u32, _p1: u32, mean: vec4<f32>, scale: vec4<f32> }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> rgba: array<u32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn prep(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.pixels * 3u) { return; }
    let px = i / 3u;
    let c = i % 3u;
    let src_c = select(c, 2u - c, p.bgr == 1u);
    let v = f32((rgba[px] >> (8u * src_c)) & 0xffu);
    dst[i] = (v - p.mean[c]) * p.scale[c];
}
