// Residual add, channel concat (one input's slice per dispatch), nearest upsample.
// CPU twins: src/engine/ops/eltwise.rs.

struct AddParams { len: u32, c: u32, act: u32, alpha_off: u32, slope: f32, _p0: u32, _p1: u32, _p2: u32 }
struct ConcatParams { pixels: u32, in_c: u32, out_c: u32, c_off: u32 }
struct UpsampleParams { n: u32, in_h: u32, in_w: u32, c: u32, out_h: u32, out_w: u32, _p0: u32, _p1: u32 }

@group(0) @binding(0) var<uniform> pa: AddParams;
@group(0) @binding(0) var<uniform> pc: ConcatParams;
@group(0) @binding(0) var<uniform> pu: UpsampleParams;
@group(0) @binding(1) var<storage, read> weights: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 64u; }

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= pa.len) { return; }
    let v = a[i] + b[i];
    let ch = i % pa.c;
    var r = v;
    switch pa.act {
        case 1u: { r = max(v, 0.0); }
        case 2u: { r = select(v, v * weights[pa.alpha_off + ch], v < 0.0); }
        case 3u: { r = select(v, v * pa.slope, v < 0.0); }
        default: {}
    }
    dst[i] = r;
}

@compute @workgroup_size(64)
fn concat(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= pc.pixels * pc.in_c) { return; }
    let px = i / pc.in_c;
    let c = i % pc.in_c;
    dst[px * pc.out_c + pc.c_off + c] = a[i];
}

@compute @workgroup_size(64)
fn upsample(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= pu.n * pu.out_h * pu.out_w * pu.c) { return; }
    let c = i % pu.c;
    let x = (i / pu.c) % pu.out_w;
    let y = (i / (pu.c * pu.out_w)) % pu.out_h;
    let n = i / (pu.c * pu.out_w * pu.out_h);
    let sy = y * pu.in_h / pu.out_h;
    let sx = x * pu.in_w / pu.out_w;
    dst[i] = a[((n * pu.in_h + sy) * pu.in_w + sx) * pu.c + c];
}
