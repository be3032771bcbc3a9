//! Shared test helpers: a seeded generator, a safetensors writer, one-node graphs, the GPU context,
//! and the GPU-vs-CPU comparison used by the kernel tests natively and in the browser.
#![allow(dead_code)]

use facepatch::engine::{GpuContext, LoadOptions, Model, Tensor};
use serde_json::{json, Value};
use std::sync::Arc;

/// Runs an async test body natively (blocking) and in the browser (awaited).
#[macro_export]
macro_rules! both {
    ($(#[$m:meta])* fn $name:ident() $body:block) => {
        $(#[$m])*
        #[cfg(not(target_arch = "wasm32"))]
        #[test]
        fn $name() {
            pollster::block_on(async $body)
        }
        $(#[$m])*
        #[cfg(target_arch = "wasm32")]
        #[wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() $body
    };
}

/// xorshift64*: deterministic and dependency-free.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
    /// Uniform in [-1, 1).
    pub fn f32(&mut self) -> f32 {
        (self.next_u32() as f32 / u32::MAX as f32) * 2.0 - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u32() as u8).collect()
    }
}

/// (name, shape, data) of one tensor to write.
pub type NamedTensor<'a> = (&'a str, Vec<usize>, Vec<f32>);

/// A safetensors file from (name, shape, data); `dtype` lets tests write wrong types.
pub fn safetensors_bytes(tensors: &[NamedTensor<'_>]) -> Vec<u8> {
    safetensors_with_dtype(tensors, "F32")
}

pub fn safetensors_with_dtype(tensors: &[NamedTensor<'_>], dtype: &str) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.to_string(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&Value::Object(header)).unwrap();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}

/// A graph with a float input of `[h, w, c]` and the given nodes.
pub fn f32_graph(h: usize, w: usize, c: usize, nodes: Vec<Value>, outputs: &[&str]) -> String {
    json!({
        "format": "facepatch-graph", "version": 1, "name": "test",
        "input": {"name": "x", "height": h, "width": w, "kind": "f32", "channels": c},
        "outputs": outputs,
        "nodes": nodes,
    })
    .to_string()
}

#[cfg(not(target_arch = "wasm32"))]
pub async fn gpu() -> Arc<GpuContext> {
    use std::sync::OnceLock;
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    if let Some(c) = CTX.get() {
        return c.clone();
    }
    let ctx = GpuContext::new()
        .await
        .expect("a GPU adapter (lavapipe natively: see README)");
    CTX.get_or_init(|| ctx).clone()
}

#[cfg(target_arch = "wasm32")]
pub async fn gpu() -> Arc<GpuContext> {
    use std::cell::RefCell;
    thread_local! { static CTX: RefCell<Option<Arc<GpuContext>>> = const { RefCell::new(None) }; }
    if let Some(c) = CTX.with(|c| c.borrow().clone()) {
        return c;
    }
    let ctx = GpuContext::new().await.expect("WebGPU in the browser");
    CTX.with(|c| *c.borrow_mut() = Some(ctx.clone()));
    ctx
}

/// A JSON list of numbers as f32 (golden data).
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("a JSON list")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}

/// The 2x3 matrix `[[a, b, c], [d, e, f]]` of a golden alignment record, flattened.
pub fn matrix(record: &Value) -> Vec<f64> {
    record["matrix"]
        .as_array()
        .expect("a 2x3 matrix")
        .iter()
        .flat_map(|r| r.as_array().expect("a matrix row").clone())
        .map(|v| v.as_f64().expect("a number"))
        .collect()
}

/// The stated tolerance: |gpu - cpu| <= RTOL * max(|cpu|, mean |cpu| over the tensor) + 1e-6.
pub const RTOL: f32 = 1e-4;

pub fn assert_close(what: &str, gpu: &Tensor, cpu: &Tensor) {
    assert_eq!(gpu.shape, cpu.shape, "{what}: shapes differ");
    assert_eq!(gpu.data.len(), cpu.data.len(), "{what}: lengths differ");
    let mean_abs = cpu.data.iter().map(|v| v.abs()).sum::<f32>() / cpu.data.len().max(1) as f32;
    let mut worst = (0usize, 0.0f32);
    for (i, (g, c)) in gpu.data.iter().zip(&cpu.data).enumerate() {
        let err = (g - c).abs();
        let bound = RTOL * c.abs().max(mean_abs) + 1e-6;
        assert!(
            err <= bound,
            "{what}: element {i} differs: gpu {g} cpu {c} (|diff| {err} > {bound})"
        );
        if err > worst.1 {
            worst = (i, err);
        }
    }
}

/// Loads the graph on both executors, runs both on `input`, checks they agree, returns the CPU result.
pub async fn gpu_matches_cpu(what: &str, graph: &str, weights: &[u8], opts: LoadOptions, input: &[f32]) -> Vec<Tensor> {
    let cpu = Model::load(graph, weights, opts, None).unwrap_or_else(|e| panic!("{what}: cpu load: {e}"));
    let gpu = Model::load(graph, weights, opts, Some(gpu().await)).unwrap_or_else(|e| panic!("{what}: gpu load: {e}"));
    let c = cpu
        .run_f32(input)
        .await
        .unwrap_or_else(|e| panic!("{what}: cpu run: {e}"));
    let g = gpu
        .run_f32(input)
        .await
        .unwrap_or_else(|e| panic!("{what}: gpu run: {e}"));
    assert_eq!(c.len(), g.len());
    for (gt, ct) in g.iter().zip(&c) {
        assert_close(&format!("{what} [{}]", ct.name), gt, ct);
        assert!(ct.data.iter().all(|v| v.is_finite()), "{what}: non-finite output");
    }
    c
}
