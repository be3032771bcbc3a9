//! The tensor runtime: a model is a graph (JSON) plus weights (safetensors), resolved once into a
//! `Plan` and run by either executor. See ARCHITECTURE.md.

pub mod cpu;
pub mod gpu;
pub mod graph;
pub mod ops;

pub use cpu::CpuModel;
pub use gpu::{GpuContext, GpuModel};
pub use graph::{LoadOptions, Plan};

use crate::error::{Error, Result};
use std::sync::Arc;

/// A float tensor in NHWC order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: [usize; 4],
    pub data: Vec<f32>,
}

/// Which executor runs a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Gpu,
    Cpu,
}

impl Device {
    pub fn as_str(self) -> &'static str {
        match self {
            Device::Gpu => "gpu",
            Device::Cpu => "cpu",
        }
    }
}

impl std::str::FromStr for Device {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gpu" => Ok(Device::Gpu),
            "cpu" => Ok(Device::Cpu),
            _ => Err(Error::input(format!("device '{s}' is not 'gpu' or 'cpu'"))),
        }
    }
}

/// A loaded model on one executor.
pub enum Model {
    Cpu(CpuModel),
    Gpu(GpuModel),
}

impl Model {
    /// Loads on the CPU path, or on the GPU path when a context is given.
    pub fn load(graph_json: &str, weights: &[u8], opts: LoadOptions, gpu: Option<Arc<GpuContext>>) -> Result<Model> {
        let plan = Plan::load(graph_json, weights, opts)?;
        Ok(match gpu {
            Some(ctx) => Model::Gpu(GpuModel::new(ctx, plan)?),
            None => Model::Cpu(CpuModel::new(plan)),
        })
    }

    pub fn device(&self) -> Device {
        match self {
            Model::Cpu(_) => Device::Cpu,
            Model::Gpu(_) => Device::Gpu,
        }
    }

    pub fn plan(&self) -> &Plan {
        match self {
            Model::Cpu(m) => m.plan(),
            Model::Gpu(m) => m.plan(),
        }
    }

    pub async fn run_rgba(&self, rgba: &[u8]) -> Result<Vec<Tensor>> {
        match self {
            Model::Cpu(m) => m.run_rgba(rgba),
            Model::Gpu(m) => m.run_rgba(rgba).await,
        }
    }

    pub async fn run_f32(&self, input: &[f32]) -> Result<Vec<Tensor>> {
        match self {
            Model::Cpu(m) => m.run_f32(input),
            Model::Gpu(m) => m.run_f32(input).await,
        }
    }
}
