// Average pooling over in-bounds taps, and the mean over the spatial grid.
// CPU twins: src/engine/ops/pool.rs.

struct AvgPoolParams {
    n: u32, in_h: u32, in_w: u32, c: u32,
    out_h: u32, out_w: u32, k_h: u32, k_w: u32,
    stride_h: u32, stride_w: u32, pad_top: u32, pad_left: u32,
}
struct MeanParams { n: u32, hw: u32, c: u32, _p: u32 }

@group(0) @binding(0) var<uniform> pp: AvgPoolParams;
@group(0) @binding(0) var<uniform> pm: MeanParams;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn avg_pool(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= pp.n * pp.out_h * pp.out_w * pp.c) { return; }
    let ch = i % pp.c;
    let ox = (i / pp.c) % pp.out_w;
    let oy = (i / (pp.c * pp.out_w)) % pp.out_h;
    let n = i / (pp.c * pp.out_w * pp.out_h);
    var acc = 0.0;
    var count = 0u;
    for (var ky = 0u; ky < pp.k_h; ky++) {
        let y = i32(oy * pp.stride_h) - i32(pp.pad_top) + i32(ky);
        if (y < 0 || y >= i32(pp.in_h)) { continue; }
        for (var kx = 0u; kx < pp.k_w; kx++) {
            let x = i32(ox * pp.stride_w) - i32(pp.pad_left) + i32(kx);
            if (x < 0 || x >= i32(pp.in_w)) { continue; }
            acc += src[((n * pp.in_h + u32(y)) * pp.in_w + u32(x)) * pp.c + ch];
            count++;
        }
    }
    dst[i] = select(0.0, acc / f32(count), count > 0u);
}

@compute @workgroup_size(64)
fn global_mean(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= pm.n * pm.c) { return; }
    let n = i / pm.c;
    let ch = i % pm.c;
    var acc = 0.0;
    for (var k = 0u; k < pm.hw; k++) {
        acc += src[(n * pm.hw + k) * pm.c + ch];
    }
    dst[i] = acc / f32(pm.hw);
}
