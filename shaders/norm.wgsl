// L2 normalisation of each pixel's channel vector. CPU twin: src/engine/ops/norm.rs.

struct Params { rows: u32, c: u32, eps: f32, _p: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

// One invocation per element; each sums its own row (rows are short: 64-512 channels).
@compute @workgroup_size(64)
fn l2_normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.rows * p.c) { return; }
    let r = (i / p.c) * p.c;
    var ss = 0.0;
    for (var k = 0u; k < p.c; k++) {
        let v = src[r + k];
        ss += v * v;
    }
    dst[i] = src[i] * (1.0 / max(sqrt(ss), p.eps));
}
