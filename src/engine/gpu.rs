//! The GPU executor: WGSL compute shaders driven by wgpu (WebGPU in the browser, Vulkan or GL natively).
//!
//! Everything is built once in `GpuModel::new`: pipelines, one packed weight buffer, activation
//! buffers (reused once a tensor is dead), one uniform buffer holding every dispatch's parameters,
//! and bind groups. `run` is one upload, one submit, and one readback of the outputs only.

use super::graph::{InputKind, Op, Plan, TensorId};
use super::ops::warp::WarpParams;
use super::Tensor;
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use wgpu::util::DeviceExt;

/// The WGSL sources, one file per op family, named like their Rust twins in `ops/`.
const SHADERS: [(&str, &str); 7] = [
    ("conv", include_str!("../../shaders/conv.wgsl")),
    ("eltwise", include_str!("../../shaders/eltwise.wgsl")),
    ("pool", include_str!("../../shaders/pool.wgsl")),
    ("linear", include_str!("../../shaders/linear.wgsl")),
    ("norm", include_str!("../../shaders/norm.wgsl")),
    ("prep", include_str!("../../shaders/prep.wgsl")),
    ("warp", include_str!("../../shaders/warp.wgsl")),
];

const WORKGROUP: u32 = 64;

/// What the adapter is, for `facepatch info` and the web page.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub limits: LimitsReport,
}

/// The limits the engine works within (requested: the WebGPU defaults).
#[derive(Clone, Debug, serde::Serialize)]
pub struct LimitsReport {
    pub max_storage_buffer_binding_size: u64,
    pub max_storage_buffers_per_shader_stage: u32,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_buffer_size: u64,
    /// What the adapter itself could offer, beyond what the engine asks for.
    pub adapter_max_storage_buffer_binding_size: u64,
    pub adapter_max_compute_invocations_per_workgroup: u32,
}

/// A wgpu device with the WebGPU default limits, shared by every model loaded on it.
pub struct GpuContext {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub report: AdapterReport,
    /// Errors the device raised outside an error scope (recorded instead of panicking).
    uncaptured: Arc<Mutex<Vec<String>>>,
    layout: wgpu::BindGroupLayout,
    pipelines: HashMap<&'static str, wgpu::ComputePipeline>,
    /// Bound where a kernel reads nothing.
    unused: wgpu::Buffer,
}

impl GpuContext {
    /// Finds an adapter and creates a device with `wgpu::Limits::default()` (the WebGPU defaults),
    /// so that a kernel that would break in a browser breaks natively too.
    pub async fn new() -> Result<Arc<GpuContext>> {
        #[cfg(target_arch = "wasm32")]
        let backends = wgpu::Backends::BROWSER_WEBGPU;
        #[cfg(not(target_arch = "wasm32"))]
        let backends = wgpu::Backends::VULKAN | wgpu::Backends::GL;
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                apply_limit_buckets: false,
            })
            .await
            .map_err(|e| {
                Error::gpu(format!(
                    "no GPU adapter available ({e}); use the CPU path (--device cpu)"
                ))
            })?;
        let info = adapter.get_info();
        let al = adapter.limits();
        let limits = wgpu::Limits::default();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("facepatch"),
                required_features: wgpu::Features::empty(),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::gpu(format!("the adapter '{}' refused a device: {e}", info.name)))?;
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let report = AdapterReport {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            limits: LimitsReport {
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
                max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
                max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
                max_buffer_size: limits.max_buffer_size,
                adapter_max_storage_buffer_binding_size: al.max_storage_buffer_binding_size,
                adapter_max_compute_invocations_per_workgroup: al.max_compute_invocations_per_workgroup,
            },
        };

        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let storage = |binding, read_only| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        // One layout for every kernel: params, weights, up to two inputs, one output.
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("facepatch kernel"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, false),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("facepatch kernel"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let mut pipelines = HashMap::new();
        for (family, src) in SHADERS {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(family),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            });
            for entry in entry_points(family) {
                let p = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pipeline_layout),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                });
                pipelines.insert(*entry, p);
            }
        }
        if let Some(e) = scope.pop().await {
            return Err(Error::gpu(format!("building the kernels failed: {e}")));
        }
        let unused = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        // In the browser wgpu's handles are not Send; the Arc is only shared on one thread there.
        #[allow(clippy::arc_with_non_send_sync)]
        let ctx = Arc::new(GpuContext {
            unused,
            device,
            queue,
            report,
            uncaptured,
            layout,
            pipelines,
        });
        Ok(ctx)
    }

    /// Runs `warp.wgsl` on an RGBA8 image: one upload, one dispatch, one readback.
    pub async fn warp(&self, p: &WarpParams, src: &[u8]) -> Result<Vec<u8>> {
        let src_bytes = p.src_w as u64 * p.src_h as u64 * 4;
        if src.len() as u64 != src_bytes || src_bytes == 0 {
            return Err(Error::input(format!(
                "warp source: expected {src_bytes} bytes, got {}",
                src.len()
            )));
        }
        if src_bytes > self.device.limits().max_storage_buffer_binding_size {
            return Err(Error::gpu("warp source larger than a storage binding; crop it first"));
        }
        let out_bytes = p.out_w as u64 * p.out_h as u64 * 4;
        let d = &self.device;
        let src_buf = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("warp source"),
            contents: src,
            usage: wgpu::BufferUsages::STORAGE,
        });
        let params = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("warp params"),
            contents: bytemuck::bytes_of(p),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let out = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("warp out"),
            size: out_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = d.create_buffer(&wgpu::BufferDescriptor {
            label: Some("warp readback"),
            size: out_bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("warp"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: self.unused.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: src_buf.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: self.unused.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: out.as_entire_binding(),
                },
            ],
        });
        let mut encoder = d.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("warp") });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("warp"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipelines["warp"]);
            pass.set_bind_group(0, &bind_group, &[]);
            let (x, y) = grid(p.out_w * p.out_h, d.limits().max_compute_workgroups_per_dimension);
            pass.dispatch_workgroups(x, y, 1);
        }
        encoder.copy_buffer_to_buffer(&out, 0, &staging, 0, out_bytes);
        self.queue.submit(Some(encoder.finish()));
        let bytes = read_back(d, &staging).await?;
        if let Some(e) = self.take_uncaptured() {
            return Err(Error::gpu(format!("the GPU rejected the warp: {e}")));
        }
        Ok(bytes)
    }

    fn take_uncaptured(&self) -> Option<String> {
        let mut v = self.uncaptured.lock().ok()?;
        if v.is_empty() {
            None
        } else {
            Some(v.drain(..).collect::<Vec<_>>().join("; "))
        }
    }
}

fn entry_points(family: &str) -> &'static [&'static str] {
    match family {
        "conv" => &["conv2d", "conv2d_x4", "depthwise_x4"],
        "eltwise" => &["add", "concat", "upsample"],
        "pool" => &["avg_pool", "global_mean"],
        "linear" => &["linear"],
        "norm" => &["l2_normalize"],
        "prep" => &["prep"],
        "warp" => &["warp"],
        _ => &[],
    }
}

/// Where a binding of one dispatch points.
#[derive(Clone, Copy)]
enum Slot {
    /// The raw RGBA input buffer.
    Pixels,
    /// The buffer holding this activation tensor.
    Tensor(TensorId),
    /// A tiny buffer for bindings a kernel does not read.
    Unused,
}

struct Dispatch {
    pipeline: &'static str,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
}

pub struct GpuModel {
    ctx: Arc<GpuContext>,
    plan: Plan,
    input: wgpu::Buffer,
    dispatches: Vec<Dispatch>,
    /// (source buffer, byte size, offset in staging) for each output.
    copies: Vec<(usize, u64, u64)>,
    buffers: Vec<wgpu::Buffer>,
    staging: wgpu::Buffer,
    busy: AtomicBool,
}

/// Splits `threads` into a 2-D grid of 64-wide workgroups within the per-dimension limit.
fn grid(threads: u32, max_dim: u32) -> (u32, u32) {
    let groups = threads.div_ceil(WORKGROUP).max(1);
    let x = groups.min(max_dim);
    (x, groups.div_ceil(x))
}

impl GpuModel {
    pub fn new(ctx: Arc<GpuContext>, plan: Plan) -> Result<GpuModel> {
        let device = &ctx.device;
        let limits = device.limits();
        let max_bind = limits.max_storage_buffer_binding_size;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);

        let weight_bytes = (plan.weights.len() * 4) as u64;
        if weight_bytes > max_bind {
            return Err(Error::gpu(format!(
                "the model's weights take {weight_bytes} bytes, above this device's {max_bind}-byte storage binding limit"
            )));
        }
        let weights = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("weights"),
            contents: bytemuck::cast_slice(&plan.weights),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let pixel_bytes = match plan.input_kind {
            InputKind::Rgba8 => plan.input_len() as u64,
            InputKind::F32 => 4,
        };
        let input = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pixels"),
            size: pixel_bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let unused = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });

        // Assign buffers: a tensor takes a free buffer big enough once its last reader has run.
        let n_t = plan.tensors.len();
        let last_use = plan.last_use();
        let mut sizes: Vec<u64> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut buffer_of = vec![usize::MAX; n_t];
        let assign =
            |t: TensorId, sizes: &mut Vec<u64>, free: &mut Vec<usize>, buffer_of: &mut Vec<usize>| -> Result<()> {
                let bytes = (plan.tensors[t].len() * 4) as u64;
                if bytes > max_bind {
                    return Err(Error::gpu(format!(
                    "tensor '{}' {:?} needs {bytes} bytes, above this device's {max_bind}-byte storage binding limit",
                    plan.tensors[t].name, plan.tensors[t].shape
                )));
                }
                // Best fit among free buffers; else grow the smallest free one; else a new buffer.
                let pick = free
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| sizes[b] >= bytes)
                    .min_by_key(|(_, &b)| sizes[b])
                    .map(|(i, _)| i)
                    .or_else(|| (0..free.len()).min_by_key(|&i| sizes[free[i]]));
                let b = match pick {
                    Some(i) => free.swap_remove(i),
                    None => {
                        sizes.push(0);
                        sizes.len() - 1
                    }
                };
                sizes[b] = sizes[b].max(bytes);
                buffer_of[t] = b;
                Ok(())
            };
        if plan.input_kind == InputKind::F32 {
            assign(0, &mut sizes, &mut free, &mut buffer_of)?;
        }
        for (i, s) in plan.steps.iter().enumerate() {
            assign(s.output, &mut sizes, &mut free, &mut buffer_of)?;
            for &t in &s.inputs {
                if last_use[t] == i && !free.contains(&buffer_of[t]) {
                    free.push(buffer_of[t]);
                }
            }
        }
        let buffers: Vec<wgpu::Buffer> = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("activations {i}")),
                    size: size.max(16),
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();

        // Every dispatch: kernel, parameter bytes, threads, and what its bindings 2, 3, 4 point at.
        let mut work: Vec<(&'static str, Vec<u8>, u32, [Slot; 3])> = Vec::new();
        for s in &plan.steps {
            let t = |k: usize| Slot::Tensor(s.inputs[k]);
            let out = Slot::Tensor(s.output);
            let threads = plan.tensors[s.output].len() as u32;
            match &s.op {
                Op::Prep(p) => work.push((
                    "prep",
                    bytemuck::bytes_of(p).to_vec(),
                    threads,
                    [Slot::Pixels, Slot::Unused, out],
                )),
                Op::Conv(p) => {
                    // Four output channels per invocation where they come in fours.
                    let depthwise = p.groups == p.in_c && p.groups == p.out_c;
                    let kernel = match (depthwise, p.out_c % 4 == 0, (p.out_c / p.groups) % 4 == 0) {
                        (true, true, _) => "depthwise_x4",
                        (false, _, true) => "conv2d_x4",
                        _ => "conv2d",
                    };
                    let threads = if kernel == "conv2d" { threads } else { threads / 4 };
                    work.push((
                        kernel,
                        bytemuck::bytes_of(p).to_vec(),
                        threads,
                        [t(0), Slot::Unused, out],
                    ))
                }
                Op::Add(p) => work.push(("add", bytemuck::bytes_of(p).to_vec(), threads, [t(0), t(1), out])),
                Op::Concat(blocks) => {
                    for (k, b) in blocks.iter().enumerate() {
                        work.push((
                            "concat",
                            bytemuck::bytes_of(b).to_vec(),
                            b.pixels * b.in_c,
                            [t(k), Slot::Unused, out],
                        ));
                    }
                }
                Op::Upsample(p) => work.push((
                    "upsample",
                    bytemuck::bytes_of(p).to_vec(),
                    threads,
                    [t(0), Slot::Unused, out],
                )),
                Op::AvgPool(p) => work.push((
                    "avg_pool",
                    bytemuck::bytes_of(p).to_vec(),
                    threads,
                    [t(0), Slot::Unused, out],
                )),
                Op::GlobalMean(p) => work.push((
                    "global_mean",
                    bytemuck::bytes_of(p).to_vec(),
                    threads,
                    [t(0), Slot::Unused, out],
                )),
                Op::Linear(p) => work.push((
                    "linear",
                    bytemuck::bytes_of(p).to_vec(),
                    threads,
                    [t(0), Slot::Unused, out],
                )),
                Op::L2(p) => work.push((
                    "l2_normalize",
                    bytemuck::bytes_of(p).to_vec(),
                    threads,
                    [t(0), Slot::Unused, out],
                )),
            }
        }

        // All parameter blocks in one uniform buffer, each at an aligned offset.
        let align = limits.min_uniform_buffer_offset_alignment.max(16) as usize;
        let mut uniform_bytes = Vec::new();
        let mut offsets = Vec::new();
        for (_, bytes, _, _) in &work {
            offsets.push(uniform_bytes.len() as u64);
            uniform_bytes.extend_from_slice(bytes);
            uniform_bytes.resize(uniform_bytes.len().div_ceil(align) * align, 0);
        }
        if uniform_bytes.is_empty() {
            uniform_bytes.resize(align, 0);
        }
        let uniforms = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: &uniform_bytes,
            usage: wgpu::BufferUsages::UNIFORM,
        });

        let max_dim = limits.max_compute_workgroups_per_dimension;
        let mut dispatches = Vec::new();
        for ((pipeline, bytes, threads, slots), off) in work.iter().zip(&offsets) {
            let resolve = |s: Slot| -> wgpu::BindingResource<'_> {
                match s {
                    Slot::Pixels => input.as_entire_binding(),
                    Slot::Tensor(t) => buffers[buffer_of[t]].as_entire_binding(),
                    Slot::Unused => unused.as_entire_binding(),
                }
            };
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(pipeline),
                layout: &ctx.layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &uniforms,
                            offset: *off,
                            size: wgpu::BufferSize::new(bytes.len() as u64),
                        }),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: weights.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: resolve(slots[0]),
                    },
                    wgpu::BindGroupEntry {
                        binding: 3,
                        resource: resolve(slots[1]),
                    },
                    wgpu::BindGroupEntry {
                        binding: 4,
                        resource: resolve(slots[2]),
                    },
                ],
            });
            dispatches.push(Dispatch {
                pipeline,
                bind_group,
                groups: grid(*threads, max_dim),
            });
        }

        let mut copies = Vec::new();
        let mut staging_size = 0u64;
        for &o in &plan.outputs {
            let bytes = (plan.tensors[o].len() * 4) as u64;
            copies.push((buffer_of[o], bytes, staging_size));
            staging_size += bytes;
        }
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: staging_size.max(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        drop(scope); // Errors here surface through `take_uncaptured` on the first run.
        if let Some(e) = ctx.take_uncaptured() {
            return Err(Error::gpu(format!("building the model failed: {e}")));
        }
        Ok(GpuModel {
            ctx,
            plan,
            input,
            dispatches,
            copies,
            buffers,
            staging,
            busy: AtomicBool::new(false),
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    pub async fn run_rgba(&self, rgba: &[u8]) -> Result<Vec<Tensor>> {
        self.plan.check_rgba_input(rgba.len())?;
        self.ctx.queue.write_buffer(&self.input, 0, rgba);
        self.execute().await
    }

    pub async fn run_f32(&self, input: &[f32]) -> Result<Vec<Tensor>> {
        self.plan.check_f32_input(input.len())?;
        // Tensor 0's buffer is the first one assigned.
        self.ctx
            .queue
            .write_buffer(&self.buffers[0], 0, bytemuck::cast_slice(input));
        self.execute().await
    }

    async fn execute(&self) -> Result<Vec<Tensor>> {
        if self.busy.swap(true, Ordering::Acquire) {
            return Err(Error::gpu(
                "this model is already running; await the previous call first",
            ));
        }
        let result = self.execute_inner().await;
        self.busy.store(false, Ordering::Release);
        result
    }

    async fn execute_inner(&self) -> Result<Vec<Tensor>> {
        let device = &self.ctx.device;
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("run") });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("run"),
                timestamp_writes: None,
            });
            for d in &self.dispatches {
                pass.set_pipeline(&self.ctx.pipelines[d.pipeline]);
                pass.set_bind_group(0, &d.bind_group, &[]);
                pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
            }
        }
        for &(b, size, off) in &self.copies {
            encoder.copy_buffer_to_buffer(&self.buffers[b], 0, &self.staging, off, size);
        }
        self.ctx.queue.submit(Some(encoder.finish()));
        let bytes = read_back(device, &self.staging).await?;
        if let Some(e) = self.ctx.take_uncaptured() {
            return Err(Error::gpu(format!("the GPU rejected the run: {e}")));
        }
        let floats: &[f32] = bytemuck::cast_slice(&bytes);
        Ok(self
            .plan
            .outputs
            .iter()
            .zip(&self.copies)
            .map(|(&o, &(_, size, off))| Tensor {
                name: self.plan.tensors[o].name.clone(),
                shape: self.plan.tensors[o].shape,
                data: floats[off as usize / 4..(off + size) as usize / 4].to_vec(),
            })
            .collect())
    }
}

/// Maps `staging`, copies its bytes out and unmaps it. Natively the device is polled until the
/// map completes; in the browser the callback fires from the event loop, so we only await it.
async fn read_back(device: &wgpu::Device, staging: &wgpu::Buffer) -> Result<Vec<u8>> {
    let (tx, rx) = futures_channel::oneshot::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    #[cfg(not(target_arch = "wasm32"))]
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::gpu(format!("waiting for the GPU failed: {e}")))?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;
    rx.await
        .map_err(|_| Error::gpu("the GPU dropped the readback"))?
        .map_err(|e| Error::gpu(format!("reading results back failed: {e}")))?;
    let bytes = staging
        .get_mapped_range(..)
        .map_err(|e| Error::gpu(format!("reading results back failed: {e}")))?
        .to_vec();
    staging.unmap();
    Ok(bytes)
}
