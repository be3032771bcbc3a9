//! Model loading: parse the graph JSON (models/FORMAT.md), check every weight against it, fold
//! BatchNorm, pack all weights into one array and resolve each node into a typed `Step` with its
//! shapes and offsets. Both executors run the resulting `Plan`; nothing is decided at run time.

use super::ops::{
    conv::ConvParams,
    eltwise::{AddParams, ConcatParams, UpsampleParams},
    linear::LinearParams,
    norm::L2Params,
    pool::{AvgPoolParams, GlobalMeanParams},
    prep::PrepParams,
    Activation, NONE,
};
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};

/// Refuse graphs whose activations would need more memory than this (all tensors together).
const MAX_ACTIVATION_BYTES: usize = 1 << 30;
/// Largest input side a graph may declare or a caller may request.
pub const MAX_INPUT_SIDE: usize = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphDesc {
    pub format: String,
    pub version: u32,
    pub name: String,
    pub input: InputDesc,
    pub outputs: Vec<String>,
    pub nodes: Vec<serde_json::Value>,
    /// Free-form facts for tools (e.g. a model's receptive field); the engine ignores them.
    #[serde(default)]
    pub meta: serde_json::Value,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct InputDesc {
    pub name: String,
    /// 0: any size, chosen at load time.
    pub height: usize,
    pub width: usize,
    /// `"rgba8"` (default): u8 RGBA pixels normalised with `mean`/`scale` in `order`;
    /// `"f32"`: a float tensor of `channels` channels uploaded as is.
    #[serde(default = "default_kind")]
    pub kind: String,
    #[serde(default)]
    pub order: Option<String>,
    #[serde(default)]
    pub mean: Option<[f32; 3]>,
    #[serde(default)]
    pub scale: Option<[f32; 3]>,
    #[serde(default)]
    pub channels: Option<usize>,
}

fn default_kind() -> String {
    "rgba8".into()
}

// Parsed once per node and dropped after planning, so variant sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum NodeDesc {
    Conv2d {
        #[serde(default)]
        name: Option<String>,
        input: String,
        output: String,
        weight: String,
        bias: Option<String>,
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 4],
        groups: usize,
        out_channels: usize,
        #[serde(default)]
        activation: ActivationDesc,
        #[serde(default)]
        batch_norm: Option<BatchNormDesc>,
    },
    Add {
        inputs: Vec<String>,
        output: String,
        #[serde(default)]
        activation: ActivationDesc,
    },
    Concat {
        inputs: Vec<String>,
        output: String,
    },
    UpsampleNearest {
        input: String,
        output: String,
        #[serde(default)]
        scale: Option<usize>,
        #[serde(default)]
        like: Option<String>,
    },
    AvgPool {
        input: String,
        output: String,
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 4],
    },
    GlobalMean {
        input: String,
        output: String,
    },
    Linear {
        input: String,
        output: String,
        weight: String,
        bias: Option<String>,
        out_features: usize,
    },
    L2Normalize {
        input: String,
        output: String,
        eps: f32,
    },
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum ActivationDesc {
    #[default]
    None,
    Relu,
    Prelu(String),
    LeakyRelu(f32),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchNormDesc {
    gamma: String,
    beta: String,
    mean: String,
    var: String,
    eps: f32,
}

/// An activation tensor of the plan: NHWC shape, N included.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub name: String,
    pub shape: [usize; 4],
}

impl TensorInfo {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub type TensorId = usize;

/// One resolved operation. Uniform blocks are final: executors only upload them.
#[derive(Clone, Debug)]
pub enum Op {
    Prep(PrepParams),
    Conv(ConvParams),
    Add(AddParams),
    /// One block per input, in `inputs` order.
    Concat(Vec<ConcatParams>),
    Upsample(UpsampleParams),
    AvgPool(AvgPoolParams),
    GlobalMean(GlobalMeanParams),
    Linear(LinearParams),
    L2(L2Params),
}

#[derive(Clone, Debug)]
pub struct Step {
    pub op: Op,
    /// Activation tensors read (empty for `Prep`, which reads the raw pixels).
    pub inputs: Vec<TensorId>,
    pub output: TensorId,
}

/// How the model's input arrives.
#[derive(Clone, Debug, PartialEq)]
pub enum InputKind {
    /// RGBA u8 pixels, `batch * height * width * 4` bytes; a `Prep` step normalises them.
    Rgba8,
    /// A float tensor written straight into tensor 0.
    F32,
}

/// Everything needed to run a model, shared by the CPU and GPU executors.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub batch: usize,
    pub input_kind: InputKind,
    /// Tensor 0 is the input tensor (after `Prep` for images).
    pub tensors: Vec<TensorInfo>,
    pub steps: Vec<Step>,
    /// All weights, packed; ops address them by offset.
    pub weights: Vec<f32>,
    pub outputs: Vec<TensorId>,
    pub meta: serde_json::Value,
}

impl Plan {
    pub fn input_shape(&self) -> [usize; 4] {
        self.tensors[0].shape
    }
    /// Bytes (RGBA8) or floats (F32) that one call to `run` takes.
    pub fn input_len(&self) -> usize {
        match self.input_kind {
            InputKind::Rgba8 => {
                let [n, h, w, _] = self.input_shape();
                n * h * w * 4
            }
            InputKind::F32 => self.tensors[0].len(),
        }
    }
    /// For each tensor, the index of the last step that reads it (`usize::MAX` for outputs, which are
    /// kept): both executors free or reuse a tensor's storage after that step.
    pub fn last_use(&self) -> Vec<usize> {
        let mut last = vec![0; self.tensors.len()];
        for (i, s) in self.steps.iter().enumerate() {
            for &t in &s.inputs {
                last[t] = i;
            }
        }
        for &o in &self.outputs {
            last[o] = usize::MAX;
        }
        last
    }

    /// Checks that `len` bytes of RGBA pixels are what this plan takes.
    pub fn check_rgba_input(&self, len: usize) -> Result<()> {
        if self.input_kind != InputKind::Rgba8 {
            return Err(Error::input("this model takes a float tensor, not pixels"));
        }
        if len != self.input_len() {
            return Err(Error::input(format!(
                "expected {} bytes of RGBA pixels, got {len}",
                self.input_len()
            )));
        }
        Ok(())
    }

    /// Checks that `len` floats are what this plan takes.
    pub fn check_f32_input(&self, len: usize) -> Result<()> {
        if self.input_kind != InputKind::F32 {
            return Err(Error::input("this model takes RGBA pixels, not a float tensor"));
        }
        if len != self.input_len() {
            return Err(Error::input(format!("expected {} floats, got {len}", self.input_len())));
        }
        Ok(())
    }

    pub fn output_info(&self) -> Vec<&TensorInfo> {
        self.outputs.iter().map(|&t| &self.tensors[t]).collect()
    }
}

/// Choices made when loading: the batch size, and the input size for graphs that leave it open.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    pub batch: usize,
    pub height: Option<usize>,
    pub width: Option<usize>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            batch: 1,
            height: None,
            width: None,
        }
    }
}

/// Weights read from safetensors, checked and consumed by name.
struct WeightStore {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    used: HashSet<String>,
    packed: Vec<f32>,
    offsets: HashMap<String, u32>,
}

impl WeightStore {
    fn read(bytes: &[u8]) -> Result<Self> {
        let st = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| Error::weights(format!("not a readable safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(Error::weights(format!(
                    "tensor '{name}' has dtype {:?}; facepatch models store every tensor as F32",
                    view.dtype()
                )));
            }
            let data: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(Error::weights(format!(
                    "tensor '{name}' holds a non-finite value at index {i}"
                )));
            }
            tensors.insert(name, (view.shape().to_vec(), data));
        }
        Ok(WeightStore {
            tensors,
            used: HashSet::new(),
            packed: Vec::new(),
            offsets: HashMap::new(),
        })
    }

    /// The tensor's data after checking its shape; marks it used.
    fn take(&mut self, name: &str, shape: &[usize], node: &str) -> Result<Vec<f32>> {
        let (have, data) = self
            .tensors
            .get(name)
            .ok_or_else(|| Error::weights(format!("{node}: tensor '{name}' is missing from the weights file")))?;
        if have.as_slice() != shape {
            return Err(Error::weights(format!(
                "{node}: tensor '{name}' has shape {have:?}, the graph needs {shape:?}"
            )));
        }
        self.used.insert(name.to_string());
        Ok(data.clone())
    }

    /// Appends `data` to the packed weights and returns its offset.
    fn pack(&mut self, data: &[f32]) -> Result<u32> {
        let off = self.packed.len();
        if off + data.len() > (u32::MAX / 2) as usize {
            return Err(Error::weights("weights exceed the 2^31 floats a kernel can address"));
        }
        self.packed.extend_from_slice(data);
        Ok(off as u32)
    }

    /// Packs a named tensor once, however many nodes use it.
    fn pack_named(&mut self, name: &str, shape: &[usize], node: &str) -> Result<u32> {
        if let Some(&off) = self.offsets.get(name) {
            let have = &self.tensors[name].0;
            if have.as_slice() != shape {
                return Err(Error::weights(format!(
                    "{node}: tensor '{name}' has shape {have:?}, the graph needs {shape:?}"
                )));
            }
            return Ok(off);
        }
        let data = self.take(name, shape, node)?;
        let off = self.pack(&data)?;
        self.offsets.insert(name.to_string(), off);
        Ok(off)
    }

    fn check_all_used(&self) -> Result<()> {
        let mut extra: Vec<&String> = self.tensors.keys().filter(|k| !self.used.contains(*k)).collect();
        extra.sort();
        if let Some(first) = extra.first() {
            return Err(Error::weights(format!(
                "tensor '{first}' is not used by the graph ({} unused tensor(s) in all): weights and graph do not belong together",
                extra.len()
            )));
        }
        Ok(())
    }
}

fn positive(v: usize, what: &str, node: &str) -> Result<u32> {
    if v == 0 || v > u32::MAX as usize / 4 {
        return Err(Error::graph(format!(
            "{node}: {what} must be positive and reasonable, got {v}"
        )));
    }
    Ok(v as u32)
}

/// Output size of a strided window, or an error when the window does not fit.
fn window_out(input: usize, pad_a: usize, pad_b: usize, k: usize, stride: usize, node: &str) -> Result<usize> {
    let padded = input + pad_a + pad_b;
    if k == 0 || stride == 0 || padded < k {
        return Err(Error::graph(format!(
            "{node}: a {k}-wide window at stride {stride} does not fit an input of {input} padded to {padded}"
        )));
    }
    Ok((padded - k) / stride + 1)
}

impl Plan {
    /// Parses, validates and resolves a model. `graph_json` is the graph, `weights` the safetensors bytes.
    pub fn load(graph_json: &str, weights: &[u8], opts: LoadOptions) -> Result<Plan> {
        let g: GraphDesc = serde_json::from_str(graph_json).map_err(|e| Error::graph(format!("invalid JSON: {e}")))?;
        if g.format != "facepatch-graph" {
            return Err(Error::graph(format!(
                "format is '{}', expected 'facepatch-graph'",
                g.format
            )));
        }
        if g.version != 1 {
            return Err(Error::graph(format!(
                "version {} is not supported (this build reads version 1)",
                g.version
            )));
        }
        if opts.batch == 0 || opts.batch > 256 {
            return Err(Error::input(format!("batch must be 1..=256, got {}", opts.batch)));
        }
        let mut ws = WeightStore::read(weights)?;
        let batch = opts.batch;

        let height = match (g.input.height, opts.height) {
            (0, Some(h)) => h,
            (0, None) => return Err(Error::input("this model takes any input size: give a height and width")),
            (h, Some(o)) if o != h => {
                return Err(Error::input(format!(
                    "this model takes {h}x{} inputs, not height {o}",
                    g.input.width
                )))
            }
            (h, _) => h,
        };
        let width = match (g.input.width, opts.width) {
            (0, Some(w)) => w,
            (0, None) => return Err(Error::input("this model takes any input size: give a height and width")),
            (w, Some(o)) if o != w => {
                return Err(Error::input(format!(
                    "this model takes {}x{w} inputs, not width {o}",
                    g.input.height
                )))
            }
            (w, _) => w,
        };
        if height == 0 || width == 0 || height > MAX_INPUT_SIDE || width > MAX_INPUT_SIDE {
            return Err(Error::input(format!(
                "input size {width}x{height} is outside 1..={MAX_INPUT_SIDE} per side"
            )));
        }

        let mut tensors: Vec<TensorInfo> = Vec::new();
        let mut by_name: HashMap<String, TensorId> = HashMap::new();
        let mut steps = Vec::new();

        let input_kind = match g.input.kind.as_str() {
            "rgba8" => {
                let order = g.input.order.as_deref().unwrap_or("rgb");
                let bgr = match order {
                    "rgb" => 0,
                    "bgr" => 1,
                    o => return Err(Error::graph(format!("input order '{o}' is not 'rgb' or 'bgr'"))),
                };
                let mean = g.input.mean.ok_or_else(|| Error::graph("rgba8 input needs 'mean'"))?;
                let scale = g.input.scale.ok_or_else(|| Error::graph("rgba8 input needs 'scale'"))?;
                tensors.push(TensorInfo {
                    name: g.input.name.clone(),
                    shape: [batch, height, width, 3],
                });
                steps.push(Step {
                    op: Op::Prep(PrepParams {
                        pixels: (batch * height * width) as u32,
                        bgr,
                        _pad: [0; 2],
                        mean: [mean[0], mean[1], mean[2], 0.0],
                        scale: [scale[0], scale[1], scale[2], 0.0],
                    }),
                    inputs: vec![],
                    output: 0,
                });
                InputKind::Rgba8
            }
            "f32" => {
                let c = g
                    .input
                    .channels
                    .ok_or_else(|| Error::graph("f32 input needs 'channels'"))?;
                positive(c, "input channels", "input")?;
                tensors.push(TensorInfo {
                    name: g.input.name.clone(),
                    shape: [batch, height, width, c],
                });
                InputKind::F32
            }
            k => return Err(Error::graph(format!("input kind '{k}' is not 'rgba8' or 'f32'"))),
        };
        by_name.insert(g.input.name.clone(), 0);

        for (i, raw) in g.nodes.iter().enumerate() {
            let op_name = raw.get("op").and_then(|v| v.as_str()).unwrap_or("?").to_string();
            let label = format!("node {i} ({op_name})");
            let node: NodeDesc =
                serde_json::from_value(raw.clone()).map_err(|e| Error::graph(format!("{label}: {e}")))?;
            let lookup = |name: &str| -> Result<TensorId> {
                by_name
                    .get(name)
                    .copied()
                    .ok_or_else(|| Error::graph(format!("{label}: input '{name}' is not produced by any earlier node")))
            };
            let (op, inputs, out_name, out_shape) = match node {
                NodeDesc::Conv2d {
                    name,
                    input,
                    output,
                    weight,
                    bias,
                    kernel,
                    stride,
                    pad,
                    groups,
                    out_channels,
                    activation,
                    batch_norm,
                } => {
                    let label = match name {
                        Some(n) => format!("{label} '{n}'"),
                        None => label.clone(),
                    };
                    let x = lookup(&input)?;
                    let [n, h, w, c] = tensors[x].shape;
                    positive(groups, "groups", &label)?;
                    positive(out_channels, "out_channels", &label)?;
                    if c % groups != 0 || out_channels % groups != 0 {
                        return Err(Error::graph(format!(
                            "{label}: groups {groups} must divide input channels {c} and out_channels {out_channels}"
                        )));
                    }
                    let oh = window_out(h, pad[0], pad[2], kernel[0], stride[0], &label)?;
                    let ow = window_out(w, pad[1], pad[3], kernel[1], stride[1], &label)?;
                    let wshape = [out_channels, kernel[0], kernel[1], c / groups];
                    let mut wdata = ws.take(&weight, &wshape, &label)?;
                    let mut bdata = match &bias {
                        Some(b) => Some(ws.take(b, &[out_channels], &label)?),
                        None => None,
                    };
                    if let Some(bn) = batch_norm {
                        let gamma = ws.take(&bn.gamma, &[out_channels], &label)?;
                        let beta = ws.take(&bn.beta, &[out_channels], &label)?;
                        let mean = ws.take(&bn.mean, &[out_channels], &label)?;
                        let var = ws.take(&bn.var, &[out_channels], &label)?;
                        if bn.eps.is_nan() || bn.eps < 0.0 {
                            return Err(Error::graph(format!("{label}: batch_norm eps must be >= 0")));
                        }
                        let per = wdata.len() / out_channels;
                        let mut b = bdata.unwrap_or_else(|| vec![0.0; out_channels]);
                        for co in 0..out_channels {
                            if var[co] + bn.eps <= 0.0 {
                                return Err(Error::weights(format!(
                                    "{label}: batch_norm variance + eps is not positive for channel {co}"
                                )));
                            }
                            let s = gamma[co] / (var[co] + bn.eps).sqrt();
                            for v in &mut wdata[co * per..(co + 1) * per] {
                                *v *= s;
                            }
                            b[co] = (b[co] - mean[co]) * s + beta[co];
                        }
                        bdata = Some(b);
                    }
                    let w_off = ws.pack(&wdata)?;
                    let b_off = match bdata {
                        Some(b) => ws.pack(&b)?,
                        None => NONE,
                    };
                    let act = resolve_activation(&activation, out_channels, &mut ws, &label)?;
                    let (act, alpha_off, slope) = act.encode();
                    let p = ConvParams {
                        n: n as u32,
                        in_h: h as u32,
                        in_w: w as u32,
                        in_c: c as u32,
                        out_h: oh as u32,
                        out_w: ow as u32,
                        out_c: out_channels as u32,
                        groups: groups as u32,
                        k_h: kernel[0] as u32,
                        k_w: kernel[1] as u32,
                        stride_h: stride[0] as u32,
                        stride_w: stride[1] as u32,
                        pad_top: pad[0] as u32,
                        pad_left: pad[1] as u32,
                        w_off,
                        b_off,
                        act,
                        alpha_off,
                        slope,
                        _pad: 0,
                    };
                    (Op::Conv(p), vec![x], output, [n, oh, ow, out_channels])
                }
                NodeDesc::Add {
                    inputs,
                    output,
                    activation,
                } => {
                    if inputs.len() != 2 {
                        return Err(Error::graph(format!(
                            "{label}: add takes exactly 2 inputs, got {}",
                            inputs.len()
                        )));
                    }
                    let a = lookup(&inputs[0])?;
                    let b = lookup(&inputs[1])?;
                    if tensors[a].shape != tensors[b].shape {
                        return Err(Error::graph(format!(
                            "{label}: inputs have shapes {:?} and {:?}; add needs equal shapes",
                            tensors[a].shape, tensors[b].shape
                        )));
                    }
                    let shape = tensors[a].shape;
                    let act = resolve_activation(&activation, shape[3], &mut ws, &label)?;
                    let (act, alpha_off, slope) = act.encode();
                    let p = AddParams {
                        len: tensors[a].len() as u32,
                        c: shape[3] as u32,
                        act,
                        alpha_off,
                        slope,
                        _pad: [0; 3],
                    };
                    (Op::Add(p), vec![a, b], output, shape)
                }
                NodeDesc::Concat { inputs, output } => {
                    if inputs.len() < 2 {
                        return Err(Error::graph(format!("{label}: concat needs at least 2 inputs")));
                    }
                    let ids = inputs.iter().map(|s| lookup(s)).collect::<Result<Vec<_>>>()?;
                    let [n, h, w, _] = tensors[ids[0]].shape;
                    let mut total = 0;
                    for &t in &ids {
                        let s = tensors[t].shape;
                        if s[0] != n || s[1] != h || s[2] != w {
                            return Err(Error::graph(format!(
                                "{label}: input '{}' is {:?}; concat needs the same N, H, W as {:?}",
                                tensors[t].name, s, tensors[ids[0]].shape
                            )));
                        }
                        total += s[3];
                    }
                    let mut blocks = Vec::new();
                    let mut off = 0;
                    for &t in &ids {
                        let c = tensors[t].shape[3];
                        blocks.push(ConcatParams {
                            pixels: (n * h * w) as u32,
                            in_c: c as u32,
                            out_c: total as u32,
                            c_off: off as u32,
                        });
                        off += c;
                    }
                    (Op::Concat(blocks), ids, output, [n, h, w, total])
                }
                NodeDesc::UpsampleNearest {
                    input,
                    output,
                    scale,
                    like,
                } => {
                    let x = lookup(&input)?;
                    let [n, h, w, c] = tensors[x].shape;
                    let (oh, ow) = match (scale, like) {
                        (Some(s), None) => {
                            positive(s, "scale", &label)?;
                            (h * s, w * s)
                        }
                        (None, Some(l)) => {
                            let t = lookup(&l)?;
                            (tensors[t].shape[1], tensors[t].shape[2])
                        }
                        _ => return Err(Error::graph(format!("{label}: give exactly one of 'scale' and 'like'"))),
                    };
                    let p = UpsampleParams {
                        n: n as u32,
                        in_h: h as u32,
                        in_w: w as u32,
                        c: c as u32,
                        out_h: oh as u32,
                        out_w: ow as u32,
                        _pad: [0; 2],
                    };
                    (Op::Upsample(p), vec![x], output, [n, oh, ow, c])
                }
                NodeDesc::AvgPool {
                    input,
                    output,
                    kernel,
                    stride,
                    pad,
                } => {
                    let x = lookup(&input)?;
                    let [n, h, w, c] = tensors[x].shape;
                    if pad[0] >= kernel[0] || pad[1] >= kernel[1] || pad[2] >= kernel[0] || pad[3] >= kernel[1] {
                        return Err(Error::graph(format!(
                            "{label}: padding must be smaller than the window"
                        )));
                    }
                    let oh = window_out(h, pad[0], pad[2], kernel[0], stride[0], &label)?;
                    let ow = window_out(w, pad[1], pad[3], kernel[1], stride[1], &label)?;
                    let p = AvgPoolParams {
                        n: n as u32,
                        in_h: h as u32,
                        in_w: w as u32,
                        c: c as u32,
                        out_h: oh as u32,
                        out_w: ow as u32,
                        k_h: kernel[0] as u32,
                        k_w: kernel[1] as u32,
                        stride_h: stride[0] as u32,
                        stride_w: stride[1] as u32,
                        pad_top: pad[0] as u32,
                        pad_left: pad[1] as u32,
                    };
                    (Op::AvgPool(p), vec![x], output, [n, oh, ow, c])
                }
                NodeDesc::GlobalMean { input, output } => {
                    let x = lookup(&input)?;
                    let [n, h, w, c] = tensors[x].shape;
                    let p = GlobalMeanParams {
                        n: n as u32,
                        hw: (h * w) as u32,
                        c: c as u32,
                        _pad: 0,
                    };
                    (Op::GlobalMean(p), vec![x], output, [n, 1, 1, c])
                }
                NodeDesc::Linear {
                    input,
                    output,
                    weight,
                    bias,
                    out_features,
                } => {
                    let x = lookup(&input)?;
                    let [n, h, w, c] = tensors[x].shape;
                    positive(out_features, "out_features", &label)?;
                    let k = h * w * c;
                    let w_off = ws.pack_named(&weight, &[out_features, k], &label)?;
                    let b_off = match &bias {
                        Some(b) => ws.pack_named(b, &[out_features], &label)?,
                        None => NONE,
                    };
                    let p = LinearParams {
                        n: n as u32,
                        in_features: k as u32,
                        out_features: out_features as u32,
                        w_off,
                        b_off,
                        _pad: [0; 3],
                    };
                    (Op::Linear(p), vec![x], output, [n, 1, 1, out_features])
                }
                NodeDesc::L2Normalize { input, output, eps } => {
                    let x = lookup(&input)?;
                    let [n, h, w, c] = tensors[x].shape;
                    if eps.is_nan() || eps <= 0.0 {
                        return Err(Error::graph(format!("{label}: eps must be positive")));
                    }
                    let p = L2Params {
                        rows: (n * h * w) as u32,
                        c: c as u32,
                        eps,
                        _pad: 0,
                    };
                    (Op::L2(p), vec![x], output, [n, h, w, c])
                }
            };
            if by_name.contains_key(&out_name) {
                return Err(Error::graph(format!("{label}: output '{out_name}' is already defined")));
            }
            if out_shape.contains(&0) {
                return Err(Error::graph(format!(
                    "{label}: output '{out_name}' would be empty: {out_shape:?}"
                )));
            }
            let id = tensors.len();
            tensors.push(TensorInfo {
                name: out_name.clone(),
                shape: out_shape,
            });
            by_name.insert(out_name, id);
            steps.push(Step { op, inputs, output: id });
        }

        let total_bytes: usize = tensors.iter().map(|t| t.len() * 4).sum();
        if total_bytes > MAX_ACTIVATION_BYTES {
            return Err(Error::input(format!(
                "the activations at this size would need {} MiB (limit {} MiB): use a smaller input or batch",
                total_bytes >> 20,
                MAX_ACTIVATION_BYTES >> 20
            )));
        }
        if g.outputs.is_empty() {
            return Err(Error::graph("the graph names no outputs"));
        }
        let outputs = g
            .outputs
            .iter()
            .map(|o| {
                by_name
                    .get(o)
                    .copied()
                    .ok_or_else(|| Error::graph(format!("output '{o}' is not produced by any node")))
            })
            .collect::<Result<Vec<_>>>()?;
        ws.check_all_used()?;
        if ws.packed.is_empty() {
            ws.packed.push(0.0); // GPU bindings cannot be empty.
        }
        Ok(Plan {
            name: g.name,
            batch,
            input_kind,
            tensors,
            steps,
            weights: ws.packed,
            outputs,
            meta: g.meta,
        })
    }
}

fn resolve_activation(a: &ActivationDesc, channels: usize, ws: &mut WeightStore, label: &str) -> Result<Activation> {
    Ok(match a {
        ActivationDesc::None => Activation::None,
        ActivationDesc::Relu => Activation::Relu,
        ActivationDesc::LeakyRelu(s) => Activation::LeakyRelu(*s),
        ActivationDesc::Prelu(name) => Activation::Prelu(ws.pack_named(name, &[channels], label)?),
    })
}
