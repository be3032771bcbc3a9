//! Face embeddings from aligned 112x112 crops, with any bundled or user-supplied recogniser.

use crate::engine::{Device, GpuContext, LoadOptions, Model};
use crate::error::{Error, Result};
use crate::face::Rgba;
use std::sync::Arc;

/// Side of the ArcFace-aligned crops every recogniser here takes.
pub const ALIGNED_SIDE: u32 = 112;

pub struct Embedder {
    pub name: String,
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
        let output = model
            .plan()
            .outputs
            .iter()
            .position(|&t| model.plan().tensors[t].name == "embedding")
            .ok_or_else(|| Error::graph(format!("'{name}' has no output named 'embedding'")))?;
        Ok(Embedder {
            name: name.to_string(),
            model,
            output,
        })
    }

    pub fn device(&self) -> Device {
        self.model.device()
    }

    /// The L2-normalised embedding of one aligned face.
    pub async fn embed(&self, face: &Rgba) -> Result<Vec<f32>> {
        if face.width != ALIGNED_SIDE || face.height != ALIGNED_SIDE {
            return Err(Error::input(format!(
                "an aligned face is {ALIGNED_SIDE}x{ALIGNED_SIDE}, this image is {}x{}",
                face.width, face.height
            )));
        }
        let mut out = self.model.run_rgba(&face.data).await?;
        Ok(std::mem::take(&mut out[self.output].data))
    }
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (dot / (na * nb).max(1e-30)) as f32
}
