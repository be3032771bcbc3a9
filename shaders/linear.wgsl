// Fully connected layer over each image's flattened tensor. CPU twin: src/engine/ops/linear.rs.

struct Params { n: u32, in_features: u32, out_features: u32, w_off: u32, b_off: u32, _p0: u32, _p1: u32, _p2: u32 }

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn linear(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.n * p.out_features) { return; }
    let n = i / p.out_features;
    let j = i % p.out_features;
    let x = n * p.in_features;
    let w = p.w_off + j * p.in_features;
    var acc = 0.0;
    for (var k = 0u; k < p.in_features; k++) {
        acc += src[x + k] * weights[w + k];
    }
    if (p.b_off != NONE) { acc += weights[p.b_off + j]; }
    dst[i] = acc;
}
