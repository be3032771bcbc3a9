//! Face embeddings from aligned 112x112 crops, with any bundled or user-supplied recogniser.

use crate::engine::{Device, GpuContext, LoadOptions, Model};
use crate::error::{Error, Result};
use crate::face::Rgba;
use std::sync::Arc;

/// Side of the ArcFace-aligned crops every recogniser here takes.
pub const ALIGNED_SIDE: u32 = 112;

/// What a recogniser gives for one face.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    /// The L2-normalised embedding the score compares (for patch models: the normalised mean of the cells).
    pub embedding: Vec<f32>,
    /// Patch models only: one embedding per cell of the grid.
    pub grid: Option<Grid>,
}

/// Patch embeddings, row-major cells of `dim` values each.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub rows: usize,
    pub cols: usize,
    pub dim: usize,
    pub cells: Vec<f32>,
}

impl Grid {
    pub fn cell(&self, i: usize) -> &[f32] {
        &self.cells[i * self.dim..(i + 1) * self.dim]
    }
}

/// Which kind of output a recogniser has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One global `embedding` (e.g. MobileFaceNet): no patch grid.
    Global,
    /// A `patches` grid whose mean is the embedding (RRF models).
    Patches,
}

pub struct Embedder {
    pub name: String,
    pub kind: Kind,
    /// Identifies the graph and weights (`template::fingerprint`), so templates of different models never mix.
    pub fingerprint: u64,
    model: Model,
    output: usize,
}

impl Embedder {
    /// `gpu: None` runs on the CPU path.
    pub fn load(name: &str, graph: &str, weights: &[u8], gpu: Option<Arc<GpuContext>>) -> Result<Embedder> {
        let model = Model::load(graph, weights, LoadOptions::default(), gpu)?;
        let [_, h, w, _] = model.plan().input_shape();
        if h != ALIGNED_SIDE as usize || w != ALIGNED_SIDE as usize {
            return Err(Error::graph(format!(
                "'{name}' takes {w}x{h} inputs; a recogniser must take 112x112 aligned faces"
            )));
        }
        let find = |n: &str| {
            model
                .plan()
                .outputs
                .iter()
                .position(|&t| model.plan().tensors[t].name == n)
        };
        let (kind, output) = match (find("embedding"), find("patches")) {
            (Some(i), _) => (Kind::Global, i),
            (None, Some(i)) => (Kind::Patches, i),
            _ => {
                return Err(Error::graph(format!(
                    "'{name}' has no output named 'embedding' or 'patches'"
                )))
            }
        };
        Ok(Embedder {
            name: name.to_string(),
            kind,
            fingerprint: crate::template::fingerprint(graph, weights),
            model,
            output,
        })
    }

    /// Facts the graph records about itself (e.g. an RRF model's receptive field).
    pub fn meta(&self) -> &serde_json::Value {
        &self.model.plan().meta
    }

    pub fn device(&self) -> Device {
        self.model.device()
    }

    /// The L2-normalised embedding of one aligned face.
    pub async fn embed(&self, face: &Rgba) -> Result<Vec<f32>> {
        Ok(self.encode(face).await?.embedding)
    }

    /// Embedding and, for patch models, the grid of one aligned face.
    pub async fn encode(&self, face: &Rgba) -> Result<Template> {
        if face.width != ALIGNED_SIDE || face.height != ALIGNED_SIDE {
            return Err(Error::input(format!(
                "an aligned face is {ALIGNED_SIDE}x{ALIGNED_SIDE}, this image is {}x{}",
                face.width, face.height
            )));
        }
        let mut out = self.model.run_rgba(&face.data).await?;
        let t = std::mem::take(&mut out[self.output]);
        Ok(match self.kind {
            Kind::Global => Template {
                embedding: t.data,
                grid: None,
            },
            Kind::Patches => {
                let [_, rows, cols, dim] = t.shape;
                let grid = Grid {
                    rows,
                    cols,
                    dim,
                    cells: t.data,
                };
                Template {
                    embedding: crate::verify::pooled(&grid, None),
                    grid: Some(grid),
                }
            }
        })
    }
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (na * nb).max(1e-30)) as f32
}
