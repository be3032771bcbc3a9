//! The wasm-bindgen boundary: a thin shell over `Pipeline`, `verify` and `template`, driven by the Web Worker in
//! `web/lib/worker.js` (which fetches the model files and turns browser images into pixels). Results cross as plain
//! JS objects; templates cross as their serialised bytes, so the worker and the page can pass them around freely.

use crate::embed::{Kind, ALIGNED_SIDE};
use crate::engine::GpuContext;
use crate::error::Error;
use crate::face::{decode_image, detect, DetectOptions, Face, Rgba};
use crate::pipeline::Pipeline;
use crate::template::FaceTemplate;
use crate::verify::{self, Calibration, OperatingPoint};
use js_sys::{Float32Array, Object, Reflect, Uint8Array};
use std::cell::RefCell;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// Photos kept (pixels and detections) so another of their faces can be chosen without detecting again.
const KEPT_PHOTOS: usize = 4;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// An error as a JS `Error` whose `code` says what kind it is (see `FacepatchError` in facepatch.d.ts).
fn js_error(e: Error) -> JsValue {
    let code = match &e {
        Error::Image(_) => "bad-image",
        Error::Template(_) => "bad-template",
        Error::ModelMismatch(_) => "model-mismatch",
        Error::Graph(_) | Error::Weights(_) => "model-integrity",
        Error::Gpu(_) => "gpu",
        Error::Input(_) | Error::Io { .. } => "bad-input",
    };
    let err = js_sys::Error::new(&e.to_string());
    let _ = Reflect::set(&err, &"code".into(), &code.into());
    err.into()
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

/// `{ rows, cols, dim, data }`: the patch embeddings, row-major cells of `dim` values.
fn grid_js(g: &crate::embed::Grid) -> JsValue {
    let o = Object::new();
    set(&o, "rows", g.rows as u32);
    set(&o, "cols", g.cols as u32);
    set(&o, "dim", g.dim as u32);
    set(&o, "data", Float32Array::from(g.cells.as_slice()));
    o.into()
}

fn face_js(f: &Face) -> JsValue {
    let o = Object::new();
    let b = js_sys::Array::new();
    f.bbox.iter().for_each(|v| {
        b.push(&(*v).into());
    });
    set(&o, "box", b);
    set(&o, "score", f.score);
    let l = js_sys::Array::new();
    for p in &f.landmarks {
        l.push(&js_sys::Array::of2(&p[0].into(), &p[1].into()));
    }
    set(&o, "landmarks", l);
    o.into()
}

struct Photo {
    id: u32,
    img: Rgba,
    faces: Vec<Face>,
}

struct Inner {
    pipe: Pipeline,
    calibration: Calibration,
    photos: RefCell<Vec<Photo>>,
    next_id: RefCell<u32>,
}

/// A loaded detector + patch model on one backend.
#[wasm_bindgen]
pub struct WasmVerifier {
    inner: Rc<Inner>,
}

/// Builds the verifier from fetched model files; `gpu` asks for WebGPU (an error if it cannot start, so the
/// caller can fall back to the CPU path and say why).
#[wasm_bindgen(js_name = loadVerifier)]
pub async fn load_verifier(
    detector_graph: String,
    detector_weights: Vec<u8>,
    name: String,
    graph: String,
    weights: Vec<u8>,
    calibration: String,
    gpu: bool,
) -> Result<WasmVerifier, JsValue> {
    let ctx = if gpu {
        Some(GpuContext::new().await.map_err(js_error)?)
    } else {
        None
    };
    let pipe = Pipeline::from_parts(
        &detector_graph,
        &detector_weights,
        &name,
        &graph,
        &weights,
        ctx,
        DetectOptions::default(),
    )
    .map_err(js_error)?;
    if pipe.embedder.kind != Kind::Patches {
        return Err(js_error(Error::Input(format!(
            "'{name}' computes one global embedding; the web verifier needs a patch model (rrf56, rrf28)"
        ))));
    }
    let calibration: Calibration = serde_json::from_str(&calibration)
        .map_err(|e| js_error(Error::Input(format!("calibration of '{name}': {e}"))))?;
    Ok(WasmVerifier {
        inner: Rc::new(Inner {
            pipe,
            calibration,
            photos: RefCell::new(Vec::new()),
            next_id: RefCell::new(1),
        }),
    })
}

#[wasm_bindgen]
impl WasmVerifier {
    /// "webgpu" or "cpu".
    pub fn backend(&self) -> String {
        match self.inner.pipe.device() {
            crate::engine::Device::Gpu => "webgpu".into(),
            crate::engine::Device::Cpu => "cpu".into(),
        }
    }

    /// `ModelInfo` of facepatch.d.ts.
    #[wasm_bindgen(js_name = modelInfo)]
    pub fn model_info(&self) -> JsValue {
        let e = &self.inner.pipe.embedder;
        let meta = e.meta();
        let num = |k: &str| meta[k].as_f64().unwrap_or(f64::NAN);
        let o = Object::new();
        set(&o, "name", e.name.as_str());
        set(&o, "rows", num("grid"));
        set(&o, "cols", num("grid"));
        set(&o, "dim", num("embedding_dim"));
        set(&o, "receptiveField", num("receptive_field"));
        set(&o, "cellStride", num("cell_stride"));
        set(&o, "cellOffset", num("cell_offset"));
        set(&o, "alignedSide", ALIGNED_SIDE);
        let ops = Object::new();
        for op in OperatingPoint::ALL {
            let (t, far) = self.inner.calibration.operating_point(op);
            let p = Object::new();
            set(&p, "threshold", t);
            set(&p, "far", far);
            set(&ops, op.as_str(), p);
        }
        set(&o, "operatingPoints", ops);
        set(&o, "calibrationSource", self.inner.calibration.source.as_str());
        o.into()
    }

    /// Decodes an encoded photo (JPEG/PNG, EXIF-oriented, the same decoder as the CLI) and analyses it.
    /// The result also carries the decoded pixels (`pixels`) so the page can show exactly what was analysed.
    #[wasm_bindgen(js_name = analyzeEncoded)]
    pub fn analyze_encoded(&self, bytes: Vec<u8>, face: Option<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let img = decode_image(&bytes).map_err(js_error)?;
            let pixels = Uint8Array::from(img.data.as_slice());
            let out = inner.analyze(img, face).await.map_err(js_error)?;
            set(&out, "pixels", pixels);
            Ok(out.into())
        })
    }

    /// Analyses RGBA pixels (from an ImageBitmap, canvas or video frame).
    #[wasm_bindgen(js_name = analyzeRgba)]
    pub fn analyze_rgba(&self, rgba: Vec<u8>, width: u32, height: u32, face: Option<u32>) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let img = Rgba::new(width, height, rgba).map_err(js_error)?;
            Ok(inner.analyze(img, face).await.map_err(js_error)?.into())
        })
    }

    /// Encodes face `face` of a photo analysed before (`photoId` of its result) without detecting again.
    #[wasm_bindgen(js_name = chooseFace)]
    pub fn choose_face(&self, photo_id: u32, face: u32) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let (img, faces) = {
                let photos = inner.photos.borrow();
                let p = photos.iter().find(|p| p.id == photo_id).ok_or_else(|| {
                    js_error(Error::Input(format!(
                        "photo {photo_id} is no longer kept (the last {KEPT_PHOTOS} are): analyse it again"
                    )))
                })?;
                (p.img.clone(), p.faces.clone())
            };
            Ok(inner
                .encode(photo_id, &img, faces, Some(face))
                .await
                .map_err(js_error)?
                .into())
        })
    }

    /// `Comparison` of facepatch.d.ts for two serialised templates. `mask`: one byte per cell, 0 leaves it out.
    /// `threshold` overrides the operating point's threshold.
    pub fn compare(
        &self,
        a: &[u8],
        b: &[u8],
        mask: Option<Vec<u8>>,
        operating_point: String,
        threshold: Option<f32>,
    ) -> Result<JsValue, JsValue> {
        let ta = self.inner.template(a)?;
        let tb = self.inner.template(b)?;
        let (ga, gb) = match (&ta.template.grid, &tb.template.grid) {
            (Some(ga), Some(gb)) => (ga, gb),
            _ => return Err(js_error(Error::Template("a template has no patch grid".into()))),
        };
        let keep: Option<Vec<bool>> = mask.map(|m| m.iter().map(|&v| v != 0).collect());
        let c = verify::compare(ga, gb, keep.as_deref()).map_err(js_error)?;
        let op: OperatingPoint = operating_point.parse().map_err(js_error)?;
        let (t, far) = match threshold {
            Some(t) => (t, self.inner.calibration.far(t)),
            None => self.inner.calibration.operating_point(op),
        };
        let o = Object::new();
        set(&o, "score", c.score);
        set(&o, "threshold", t);
        set(&o, "match", c.score > t);
        set(&o, "far", far);
        set(
            &o,
            "operatingPoint",
            if threshold.is_some() { "custom" } else { op.as_str() },
        );
        set(&o, "cells", c.cells as u32);
        let g = Object::new();
        set(&g, "rows", c.rows as u32);
        set(&g, "cols", c.cols as u32);
        set(&g, "a", Float32Array::from(c.a.as_slice()));
        set(&g, "b", Float32Array::from(c.b.as_slice()));
        set(&o, "grid", g);
        Ok(o.into())
    }

    /// Checks a serialised template (integrity, version, model) and describes it: `{ model, face, embeddings }`.
    #[wasm_bindgen(js_name = templateInfo)]
    pub fn template_info(&self, bytes: &[u8]) -> Result<JsValue, JsValue> {
        let t = self.inner.template(bytes)?;
        let o = Object::new();
        set(&o, "model", t.model.as_str());
        set(&o, "face", face_js(&t.face));
        let grid = t
            .template
            .grid
            .as_ref()
            .ok_or_else(|| js_error(Error::Template("no patch grid".into())))?;
        set(&o, "embeddings", grid_js(grid));
        Ok(o.into())
    }
}

impl Inner {
    fn template(&self, bytes: &[u8]) -> Result<FaceTemplate, JsValue> {
        let t = FaceTemplate::from_bytes(bytes).map_err(js_error)?;
        let e = &self.pipe.embedder;
        t.check_model(&e.name, e.fingerprint).map_err(js_error)?;
        Ok(t)
    }

    async fn analyze(&self, img: Rgba, face: Option<u32>) -> crate::Result<Object> {
        let faces = self.pipe.detect(&img).await?;
        let id = {
            let mut n = self.next_id.borrow_mut();
            *n += 1;
            *n
        };
        let out = self.encode(id, &img, faces.clone(), face).await?;
        let mut photos = self.photos.borrow_mut();
        photos.push(Photo { id, img, faces });
        if photos.len() > KEPT_PHOTOS {
            photos.remove(0);
        }
        Ok(out)
    }

    /// The analysis result for one photo: all faces, and the chosen one aligned and encoded.
    async fn encode(&self, id: u32, img: &Rgba, faces: Vec<Face>, face: Option<u32>) -> crate::Result<Object> {
        let chosen = detect::choose_face(&faces, img.width, img.height, face.map(|i| i as usize))?;
        let o = Object::new();
        set(&o, "photoId", id);
        set(&o, "width", img.width);
        set(&o, "height", img.height);
        let list = js_sys::Array::new();
        faces.iter().for_each(|f| {
            list.push(&face_js(f));
        });
        set(&o, "faces", list);
        match chosen {
            None => {
                set(&o, "chosen", JsValue::NULL);
                set(&o, "template", JsValue::NULL);
                set(&o, "aligned", JsValue::NULL);
                set(
                    &o,
                    "message",
                    "no face found in this photo (try a larger, frontal, well-lit face)",
                );
            }
            Some(i) => {
                let (aligned, template) = self.pipe.encode_face(img, &faces[i]).await?;
                if let Some(g) = &template.grid {
                    set(&o, "embeddings", grid_js(g));
                }
                let e = &self.pipe.embedder;
                let t = FaceTemplate {
                    model: e.name.clone(),
                    fingerprint: e.fingerprint,
                    face: faces[i].clone(),
                    template,
                };
                set(&o, "chosen", i as u32);
                set(&o, "template", Uint8Array::from(t.to_bytes().as_slice()));
                set(&o, "aligned", Uint8Array::from(aligned.data.as_slice()));
                set(&o, "message", "");
            }
        }
        Ok(o)
    }
}
