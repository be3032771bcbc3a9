//! One photo to faces, aligned crops and embeddings: decode -> detect -> align -> encode.
//! The CLI, the evaluator and the wasm boundary all go through here.

use crate::embed::{Embedder, Template};
use crate::engine::{Device, GpuContext};
use crate::error::Result;
use crate::face::{align, detect, DetectOptions, Detector, Face, Rgba};
use crate::models::{self, ModelFiles};
use std::sync::Arc;

pub struct Pipeline {
    pub detector: Detector,
    pub embedder: Embedder,
    gpu: Option<Arc<GpuContext>>,
}

/// A face found in a photo, with its aligned crop and embedding.
pub struct AnalyzedFace {
    pub face: Face,
    pub aligned: Rgba,
    pub embedding: Vec<f32>,
}

impl Pipeline {
    /// The bundled detector with the given recogniser, on the GPU when a context is given.
    pub fn new(recogniser: &ModelFiles, gpu: Option<Arc<GpuContext>>, detect: DetectOptions) -> Result<Pipeline> {
        Self::with_files(recogniser.name, recogniser.graph, recogniser.weights, gpu, detect)
    }

    pub fn with_files(
        name: &str,
        graph: &str,
        weights: &[u8],
        gpu: Option<Arc<GpuContext>>,
        detect: DetectOptions,
    ) -> Result<Pipeline> {
        let det = &models::RETINAFACE;
        Self::from_parts(det.graph, det.weights, name, graph, weights, gpu, detect)
    }

    /// Detector and recogniser both from given files (the browser fetches them rather than bundling them).
    pub fn from_parts(
        detector_graph: &str,
        detector_weights: &[u8],
        name: &str,
        graph: &str,
        weights: &[u8],
        gpu: Option<Arc<GpuContext>>,
        detect: DetectOptions,
    ) -> Result<Pipeline> {
        Ok(Pipeline {
            detector: Detector::new(detector_graph, detector_weights, gpu.clone(), detect)?,
            embedder: Embedder::load(name, graph, weights, gpu.clone())?,
            gpu,
        })
    }

    pub fn device(&self) -> Device {
        self.embedder.device()
    }

    pub fn gpu(&self) -> Option<&GpuContext> {
        self.gpu.as_deref()
    }

    /// Every face in the photo, best score first.
    pub async fn detect(&self, img: &Rgba) -> Result<Vec<Face>> {
        self.detector.detect(img).await
    }

    /// The aligned 112x112 crop of one face.
    pub async fn align(&self, img: &Rgba, face: &Face) -> Result<Rgba> {
        align::align(img, &face.landmarks, self.gpu()).await
    }

    /// Embedding of an aligned crop; with `flip`, the normalised mean with its mirror image's.
    pub async fn embed_aligned(&self, aligned: &Rgba, flip: bool) -> Result<Vec<f32>> {
        let mut e = self.embedder.embed(aligned).await?;
        if flip {
            let m = self.embedder.embed(&align::mirror(aligned)).await?;
            for (a, b) in e.iter_mut().zip(&m) {
                *a += b;
            }
            let n = e.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            e.iter_mut().for_each(|v| *v /= n);
        }
        Ok(e)
    }

    /// Detects, picks the largest most central face (or face `choose`, in `detect`'s order) and aligns it.
    /// `Ok(None)` when the photo has no face.
    pub async fn find_face(&self, img: &Rgba, choose: Option<usize>) -> Result<Option<(Face, Rgba)>> {
        let faces = self.detect(img).await?;
        let Some(index) = detect::choose_face(&faces, img.width, img.height, choose)? else {
            return Ok(None);
        };
        let face = faces[index].clone();
        let aligned = self.align(img, &face).await?;
        Ok(Some((face, aligned)))
    }

    /// The aligned crop and the encoding (embedding and, for patch models, the grid) of one detected face.
    pub async fn encode_face(&self, img: &Rgba, face: &Face) -> Result<(Rgba, Template)> {
        let aligned = self.align(img, face).await?;
        let template = self.embedder.encode(&aligned).await?;
        Ok((aligned, template))
    }

    /// `find_face`, then the embedding of the aligned face.
    pub async fn analyze(&self, img: &Rgba, choose: Option<usize>, flip: bool) -> Result<Option<AnalyzedFace>> {
        let Some((face, aligned)) = self.find_face(img, choose).await? else {
            return Ok(None);
        };
        let embedding = self.embed_aligned(&aligned, flip).await?;
        Ok(Some(AnalyzedFace {
            face,
            aligned,
            embedding,
        }))
    }
}
