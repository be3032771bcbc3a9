//! MobileFaceNet through facepatch reproduces the TFLite reference (ai-edge-litert) on real aligned
//! faces, on the GPU path and the CPU path. Golden data: tools/make_golden_mobilefacenet.py.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::floats;
use facepatch::embed::{cosine, Embedder};
use facepatch::face::decode_image;
use facepatch::models::MOBILEFACENET;
use serde_json::Value;
use std::path::Path;

const MIN_COSINE: f32 = 0.9999;

fn golden() -> Vec<(String, Vec<f32>)> {
    let text = std::fs::read_to_string("tests/data/golden/mobilefacenet.json").unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let emb = floats(&f["embedding"]);
            (f["image"].as_str().unwrap().to_string(), emb)
        })
        .collect()
}

fn check(embedder: &Embedder) {
    let faces = golden();
    assert!(faces.len() >= 8, "need at least 8 golden faces, have {}", faces.len());
    let mut worst = 1.0f32;
    for (image, want) in &faces {
        let bytes = std::fs::read(Path::new("tests/data").join(image)).unwrap();
        let got = pollster::block_on(embedder.embed(&decode_image(&bytes).unwrap())).unwrap();
        assert_eq!(got.len(), 192);
        let c = cosine(&got, want);
        assert!(
            c >= MIN_COSINE,
            "{image}: cosine {c} to TFLite < {MIN_COSINE} on {:?}",
            embedder.device()
        );
        worst = worst.min(c);
    }
    eprintln!(
        "{:?}: worst cosine to TFLite over {} faces: {worst:.7}",
        embedder.device(),
        faces.len()
    );
}

#[test]
fn gpu_path_matches_tflite() {
    let ctx = pollster::block_on(common::gpu());
    check(&Embedder::load("mobilefacenet", MOBILEFACENET.graph, MOBILEFACENET.weights, Some(ctx)).unwrap());
}

#[test]
fn cpu_path_matches_tflite() {
    check(&Embedder::load("mobilefacenet", MOBILEFACENET.graph, MOBILEFACENET.weights, None).unwrap());
}

#[test]
fn different_people_are_far_apart_same_person_close() {
    // Sanity beyond parity: the golden set holds one same-person pair (Serena Williams).
    let faces = golden();
    let find = |s: &str| {
        faces
            .iter()
            .find(|(p, _)| p.contains(s))
            .map(|(_, e)| e.clone())
            .unwrap()
    };
    let same = cosine(&find("Serena_Williams_0001"), &find("Serena_Williams_0014"));
    let diff = cosine(&find("Serena_Williams_0001"), &find("Jim_Ahern"));
    assert!(same > 0.5 && diff < 0.4, "same {same}, different {diff}");
}

#[test]
fn cli_embed_json_has_model_device_and_unit_embedding() {
    for device in ["gpu", "cpu"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_facepatch"))
            .args([
                "embed",
                "--model",
                "mobilefacenet",
                "tests/data/aligned/lfw_Jim_Ahern_0001.png",
                "--device",
                device,
                "--json",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["model"], "mobilefacenet");
        assert_eq!(v["device"], device);
        let e: Vec<f32> = floats(&v["embedding"]);
        assert_eq!(e.len(), 192);
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4);
        let want = &golden().into_iter().find(|(p, _)| p.contains("Jim_Ahern")).unwrap().1;
        assert!(cosine(&e, want) >= MIN_COSINE);
    }
}

#[test]
fn cli_info_json_names_the_adapter() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facepatch"))
        .args(["info", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in ["name", "backend", "device_type", "limits"] {
        assert!(!v[key].is_null(), "missing {key}");
    }
    assert_eq!(v["limits"]["max_compute_invocations_per_workgroup"], 256);
}

#[test]
fn cli_embed_detects_and_aligns_photos_and_says_when_there_is_no_face() {
    let run = |image: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_facepatch"))
            .args(["embed", image, "--device", "cpu", "--json"])
            .output()
            .unwrap()
    };
    let out = run("tests/data/photos/lfw_Jim_Ahern_0001.jpg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["face"]["box"].is_array() && v["face"]["landmarks"].is_array());
    let e: Vec<f32> = floats(&v["embedding"]);
    // The reference crop of this photo (OpenCV warp of the onnxruntime landmarks) embeds the same.
    let want = &golden().into_iter().find(|(p, _)| p.contains("Jim_Ahern")).unwrap().1;
    assert!(cosine(&e, want) >= 0.999, "{}", cosine(&e, want));
    let out = run("tests/data/inputs/no_face.png");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no face found"));
}
