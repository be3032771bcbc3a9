//! The CPU executor: runs a `Plan` step by step with the ops' plain-Rust twins.
//! It is the reference for the GPU path and the fallback where WebGPU is missing (it compiles to wasm32).

use super::graph::{Op, Plan};
use super::ops::{conv, eltwise, linear, norm, pool, prep};
use super::Tensor;
use crate::error::Result;

pub struct CpuModel {
    plan: Plan,
    /// Index of the last step reading each tensor; the executor frees tensors after it.
    last_use: Vec<usize>,
    /// Conv weights re-laid out for the CPU (`conv::pack_cpu`), by step.
    packed: Vec<Option<Vec<f32>>>,
}

impl CpuModel {
    pub fn new(plan: Plan) -> Self {
        let last_use = plan.last_use();
        let packed = plan
            .steps
            .iter()
            .map(|s| match &s.op {
                Op::Conv(p) => Some(conv::pack_cpu(p, &plan.weights)),
                _ => None,
            })
            .collect();
        CpuModel { plan, last_use, packed }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Runs on RGBA8 pixels (image models) or on a float tensor (`InputKind::F32`).
    pub fn run_rgba(&self, rgba: &[u8]) -> Result<Vec<Tensor>> {
        self.plan.check_rgba_input(rgba.len())?;
        self.execute(Some(rgba), None)
    }

    pub fn run_f32(&self, input: &[f32]) -> Result<Vec<Tensor>> {
        self.plan.check_f32_input(input.len())?;
        self.execute(None, Some(input))
    }

    fn execute(&self, rgba: Option<&[u8]>, input: Option<&[f32]>) -> Result<Vec<Tensor>> {
        let plan = &self.plan;
        let w = &plan.weights;
        let mut vals: Vec<Option<Vec<f32>>> = vec![None; plan.tensors.len()];
        if let Some(x) = input {
            vals[0] = Some(x.to_vec());
        }
        for (i, step) in plan.steps.iter().enumerate() {
            let mut out = vec![0.0f32; plan.tensors[step.output].len()];
            let arg = |k: usize| {
                vals[step.inputs[k]]
                    .as_deref()
                    .expect("plan order guarantees inputs exist")
            };
            match &step.op {
                Op::Prep(p) => prep::cpu(p, rgba.expect("rgba input checked"), &mut out),
                Op::Conv(p) => conv::cpu_packed(
                    p,
                    arg(0),
                    self.packed[i].as_deref().expect("packed at load"),
                    w,
                    &mut out,
                ),
                Op::Add(p) => eltwise::add_cpu(p, arg(0), arg(1), w, &mut out),
                Op::Concat(blocks) => {
                    for (k, b) in blocks.iter().enumerate() {
                        eltwise::concat_cpu(b, arg(k), &mut out);
                    }
                }
                Op::Upsample(p) => eltwise::upsample_cpu(p, arg(0), &mut out),
                Op::AvgPool(p) => pool::avg_pool_cpu(p, arg(0), &mut out),
                Op::GlobalMean(p) => pool::global_mean_cpu(p, arg(0), &mut out),
                Op::Linear(p) => linear::cpu(p, arg(0), w, &mut out),
                Op::L2(p) => norm::l2_cpu(p, arg(0), &mut out),
            }
            vals[step.output] = Some(out);
            for &t in &step.inputs {
                if self.last_use[t] == i {
                    vals[t] = None;
                }
            }
        }
        Ok(plan
            .outputs
            .iter()
            .map(|&o| Tensor {
                name: plan.tensors[o].name.clone(),
                shape: plan.tensors[o].shape,
                data: vals[o].clone().expect("outputs are kept"),
            })
            .collect())
    }
}
