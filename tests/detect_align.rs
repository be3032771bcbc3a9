//! Detection and alignment against the references: onnxruntime's RetinaFace on the same pixels
//! (tools/make_golden_retinaface.py) and OpenCV's warpAffine (tools/make_golden_mobilefacenet.py).
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::{floats, matrix};
use facepatch::embed::{cosine, Embedder};
use facepatch::engine::{GpuContext, LoadOptions, Model};
use facepatch::face::align::{self, ARCFACE_TEMPLATE};
use facepatch::face::detect::iou;
use facepatch::face::{decode_image, DetectOptions, Detector, Face, Rgba};
use facepatch::models::{MOBILEFACENET, RETINAFACE};
use serde_json::Value;
use std::sync::Arc;

fn json(path: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn photo(rel: &str) -> Rgba {
    decode_image(&std::fs::read(format!("tests/data/{rel}")).unwrap()).unwrap()
}

fn golden_faces(v: &Value) -> Vec<Face> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| serde_json::from_value(f.clone()).unwrap())
        .collect()
}

fn check_detections(gpu: Option<Arc<GpuContext>>) {
    let golden = json("tests/data/golden/retinaface.json");
    let det = Detector::new(RETINAFACE.graph, RETINAFACE.weights, gpu, DetectOptions::default()).unwrap();
    let photos = golden["photos"].as_array().unwrap();
    assert!(photos.len() >= 10);
    let (mut worst_iou, mut worst_px, mut n) = (1.0f32, 0.0f32, 0);
    for p in photos {
        let name = p["photo"].as_str().unwrap();
        let want = golden_faces(&p["faces"]);
        let got = pollster::block_on(det.detect(&photo(name))).unwrap();
        assert_eq!(
            got.len(),
            want.len(),
            "{name}: found {} faces, onnxruntime {}",
            got.len(),
            want.len()
        );
        for w in &want {
            let g = got
                .iter()
                .max_by(|a, b| iou(&a.bbox, &w.bbox).total_cmp(&iou(&b.bbox, &w.bbox)))
                .unwrap();
            let o = iou(&g.bbox, &w.bbox);
            assert!(o >= 0.95, "{name}: box IoU {o} < 0.95 ({:?} vs {:?})", g.bbox, w.bbox);
            for (a, b) in g.landmarks.iter().zip(&w.landmarks) {
                let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
                assert!(d <= 1.0, "{name}: landmark {a:?} is {d} px from {b:?}");
                worst_px = worst_px.max(d);
            }
            worst_iou = worst_iou.min(o);
            n += 1;
        }
    }
    eprintln!(
        "{} faces in {} photos: worst IoU {worst_iou:.4}, worst landmark {worst_px:.3} px",
        n,
        photos.len()
    );
}

#[test]
fn detections_match_onnxruntime_gpu() {
    check_detections(Some(pollster::block_on(common::gpu())));
}

#[test]
fn detections_match_onnxruntime_cpu() {
    check_detections(None);
}

#[test]
fn raw_heads_match_onnxruntime() {
    let golden = json("tests/data/golden/retinaface_heads.json");
    for p in golden["photos"].as_array().unwrap() {
        // The exact pixels onnxruntime saw (PNG), so only the network differs.
        let img = photo(p["pixels"].as_str().unwrap());
        let opts = LoadOptions {
            batch: 1,
            height: Some(img.height as usize),
            width: Some(img.width as usize),
        };
        for gpu in [None, Some(pollster::block_on(common::gpu()))] {
            let model = Model::load(RETINAFACE.graph, RETINAFACE.weights, opts, gpu).unwrap();
            let out = pollster::block_on(model.run_rgba(&img.data)).unwrap();
            for (name, want) in p["outputs"].as_object().unwrap() {
                let t = out.iter().find(|t| &t.name == name).unwrap();
                let shape: Vec<usize> = want["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as usize)
                    .collect();
                assert_eq!(t.shape.to_vec(), shape, "{name}");
                let w: Vec<f32> = floats(&want["data"]);
                let scale = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                for (i, (a, b)) in t.data.iter().zip(&w).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-4 * scale,
                        "{name}[{i}]: {a} vs onnxruntime {b} (range {scale})"
                    );
                }
            }
        }
    }
}

#[test]
fn similarity_transform_is_exact_on_a_similarity() {
    // Landmarks made by a known rotation + scale + shift map back onto the template exactly.
    let (s, th, tx, ty) = (1.7f64, 0.4f64, 31.0, -12.5);
    let src: [[f32; 2]; 5] = ARCFACE_TEMPLATE.map(|[x, y]| {
        let (x, y) = (x as f64, y as f64);
        [
            (s * (th.cos() * x - th.sin() * y) + tx) as f32,
            (s * (th.sin() * x + th.cos() * y) + ty) as f32,
        ]
    });
    let m = align::similarity(&src, &ARCFACE_TEMPLATE);
    for (p, q) in src.iter().zip(&ARCFACE_TEMPLATE) {
        let x = m[0] * p[0] as f64 + m[1] * p[1] as f64 + m[2];
        let y = m[3] * p[0] as f64 + m[4] * p[1] as f64 + m[5];
        assert!((x - q[0] as f64).abs() < 1e-3 && (y - q[1] as f64).abs() < 1e-3);
    }
    let inv = align::invert(&m);
    assert!((inv[0] - th.cos() * s).abs() < 1e-4 && (inv[3] - th.sin() * s).abs() < 1e-4);
}

#[test]
fn similarity_matches_the_reference_matrices() {
    // tools/make_golden_mobilefacenet.py solved the same problem with numpy (Umeyama).
    let golden = json("tests/data/golden/alignment.json");
    for p in golden["photos"].as_array().unwrap() {
        let lm: [[f32; 2]; 5] = serde_json::from_value(p["landmarks"].clone()).unwrap();
        let want: Vec<f64> = matrix(p);
        let got = align::similarity(&lm, &ARCFACE_TEMPLATE);
        for (a, b) in got.iter().zip(&want) {
            assert!(
                (a - b).abs() < 1e-4 * (1.0 + b.abs()),
                "{}: {got:?} vs {want:?}",
                p["photo"]
            );
        }
    }
}

fn alignment_parity(gpu: Option<Arc<GpuContext>>) {
    // The same transform applied by facepatch's warp and by OpenCV's warpAffine gives the same face.
    let golden = json("tests/data/golden/alignment.json");
    let emb = Embedder::load("mobilefacenet", MOBILEFACENET.graph, MOBILEFACENET.weights, None).unwrap();
    let mut worst = 1.0f32;
    for p in golden["photos"].as_array().unwrap() {
        let img = photo(p["photo"].as_str().unwrap());
        let m: Vec<f64> = matrix(p);
        let ours = pollster::block_on(align::warp_affine(&img, &m.try_into().unwrap(), 112, gpu.as_deref())).unwrap();
        let opencv = photo(p["aligned"].as_str().unwrap());
        let c = cosine(
            &pollster::block_on(emb.embed(&ours)).unwrap(),
            &pollster::block_on(emb.embed(&opencv)).unwrap(),
        );
        assert!(
            c >= 0.999,
            "{}: cosine {c} between facepatch's and OpenCV's crops",
            p["photo"]
        );
        worst = worst.min(c);
    }
    eprintln!("alignment parity: worst MobileFaceNet cosine {worst:.5}");
}

#[test]
fn alignment_matches_opencv_gpu() {
    alignment_parity(Some(pollster::block_on(common::gpu())));
}

#[test]
fn alignment_matches_opencv_cpu() {
    alignment_parity(None);
}

#[test]
fn photo_without_a_face_gives_an_empty_list() {
    let det = Detector::new(RETINAFACE.graph, RETINAFACE.weights, None, DetectOptions::default()).unwrap();
    let faces = pollster::block_on(det.detect(&photo("inputs/no_face.png"))).unwrap();
    assert!(faces.is_empty(), "{faces:?}");
}

#[test]
fn large_photos_are_downscaled_and_mapped_back() {
    // A 3x upscaled photo detected at max side 640 finds the same face, 3x larger, in its own pixels.
    let small = photo("photos/lfw_Jim_Ahern_0001.jpg");
    let buf = image::RgbaImage::from_raw(small.width, small.height, small.data.clone()).unwrap();
    let big = image::imageops::resize(&buf, 750, 750, image::imageops::FilterType::Triangle);
    let big = Rgba::new(750, 750, big.into_raw()).unwrap();
    let det = Detector::new(RETINAFACE.graph, RETINAFACE.weights, None, DetectOptions::default()).unwrap();
    let a = pollster::block_on(det.detect(&small)).unwrap();
    let b = pollster::block_on(det.detect(&big)).unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(b.len(), 1);
    let scaled = a[0].bbox.map(|v| v * 3.0);
    assert!(iou(&scaled, &b[0].bbox) > 0.85, "{scaled:?} vs {:?}", b[0].bbox);
}
