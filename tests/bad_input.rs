//! Bad models and bad images get clear errors that name the problem, never a panic.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::*;
use facepatch::engine::{LoadOptions, Plan};
use facepatch::face::decode_image;
use facepatch::models::MOBILEFACENET;
use serde_json::{json, Value};

fn load_err(graph: &str, weights: &[u8]) -> String {
    match Plan::load(graph, weights, LoadOptions::default()) {
        Ok(_) => panic!("loading should have failed"),
        Err(e) => e.to_string(),
    }
}

fn tiny() -> (String, Vec<NamedTensor<'static>>) {
    let graph = f32_graph(
        4,
        4,
        3,
        vec![json!({
        "op": "conv2d", "input": "x", "output": "y", "weight": "w", "bias": "b",
        "kernel": [3, 3], "stride": [1, 1], "pad": [1, 1, 1, 1], "groups": 1, "out_channels": 5})],
        &["y"],
    );
    (
        graph,
        vec![("w", vec![5, 3, 3, 3], vec![0.5; 135]), ("b", vec![5], vec![0.1; 5])],
    )
}

#[test]
fn the_good_model_loads() {
    let (g, t) = tiny();
    Plan::load(&g, &safetensors_bytes(&t), LoadOptions::default()).unwrap();
    Plan::load(MOBILEFACENET.graph, MOBILEFACENET.weights, LoadOptions::default()).unwrap();
}

#[test]
fn truncated_weights() {
    for cut in [
        0,
        7,
        100,
        MOBILEFACENET.weights.len() / 2,
        MOBILEFACENET.weights.len() - 1,
    ] {
        let e = load_err(MOBILEFACENET.graph, &MOBILEFACENET.weights[..cut]);
        assert!(e.contains("not a readable safetensors file"), "cut {cut}: {e}");
    }
}

#[test]
fn wrong_dtype() {
    let (g, t) = tiny();
    let e = load_err(&g, &safetensors_with_dtype(&t, "I32"));
    assert!(e.contains("dtype I32") && e.contains("F32"), "{e}");
}

#[test]
fn wrong_shape() {
    let (g, mut t) = tiny();
    t[0].1 = vec![5, 3, 3, 1];
    t[0].2 = vec![0.5; 45];
    let e = load_err(&g, &safetensors_bytes(&t));
    assert!(
        e.contains("tensor 'w' has shape [5, 3, 3, 1], the graph needs [5, 3, 3, 3]"),
        "{e}"
    );
}

#[test]
fn missing_tensor() {
    let (g, mut t) = tiny();
    t.remove(1);
    let e = load_err(&g, &safetensors_bytes(&t));
    assert!(e.contains("tensor 'b' is missing"), "{e}");
}

#[test]
fn extra_tensor() {
    let (g, mut t) = tiny();
    t.push(("stray", vec![2], vec![1.0, 2.0]));
    let e = load_err(&g, &safetensors_bytes(&t));
    assert!(e.contains("tensor 'stray' is not used by the graph"), "{e}");
}

#[test]
fn non_finite_weight() {
    let (g, mut t) = tiny();
    t[1].2[3] = f32::NAN;
    let e = load_err(&g, &safetensors_bytes(&t));
    assert!(e.contains("'b' holds a non-finite value"), "{e}");
}

#[test]
fn unknown_op() {
    let (g, t) = tiny();
    let mut v: Value = serde_json::from_str(&g).unwrap();
    v["nodes"]
        .as_array_mut()
        .unwrap()
        .push(json!({"op": "softmax", "input": "y", "output": "z"}));
    let e = load_err(&v.to_string(), &safetensors_bytes(&t));
    assert!(
        e.contains("node 1 (softmax)") && e.contains("unknown variant `softmax`"),
        "{e}"
    );
}

#[test]
fn graph_structure_errors() {
    let (g, t) = tiny();
    let w = safetensors_bytes(&t);
    let base: Value = serde_json::from_str(&g).unwrap();
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|v| v["nodes"][0]["input"] = json!("nowhere")),
            "input 'nowhere' is not produced by any earlier node",
        ),
        (
            Box::new(|v| v["nodes"][0]["kernal"] = json!([3, 3])),
            "unknown field `kernal`",
        ),
        (
            Box::new(|v| v["nodes"][0]["groups"] = json!(2)),
            "groups 2 must divide input channels 3",
        ),
        (Box::new(|v| v["nodes"][0]["pad"] = json!([0, 0, 0, 0])), ""),
        (
            Box::new(|v| v["outputs"] = json!(["nope"])),
            "output 'nope' is not produced by any node",
        ),
        (Box::new(|v| v["format"] = json!("onnx")), "format is 'onnx'"),
        (Box::new(|v| v["version"] = json!(9)), "version 9 is not supported"),
        (Box::new(|v| v["input"]["height"] = json!(100000)), "outside 1..=4096"),
        (
            Box::new(|v| v["nodes"][0]["kernel"] = json!([9, 9])),
            "does not fit an input of 4 padded to 6",
        ),
    ];
    for (mutate, want) in cases {
        let mut v = base.clone();
        mutate(&mut v);
        let r = Plan::load(&v.to_string(), &w, LoadOptions::default());
        if want.is_empty() {
            r.unwrap(); // valid variation (valid padding), must load
        } else {
            let e = r
                .err()
                .unwrap_or_else(|| panic!("expected error containing {want:?}"))
                .to_string();
            assert!(e.contains(want), "{e} (wanted {want:?})");
        }
    }
    assert!(load_err("{not json", &w).contains("invalid JSON"));
}

#[test]
fn activations_too_large_are_refused_before_allocating() {
    let graph = json!({
        "format": "facepatch-graph", "version": 1, "name": "huge",
        "input": {"name": "x", "height": 4096, "width": 4096, "kind": "f32", "channels": 64},
        "outputs": ["x"], "nodes": []
    });
    let e = match Plan::load(
        &graph.to_string(),
        &safetensors_bytes(&[]),
        LoadOptions {
            batch: 4,
            ..Default::default()
        },
    ) {
        Ok(_) => panic!("should refuse"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("MiB (limit"), "{e}");
}

fn decode_err(name: &str) -> String {
    let bytes = std::fs::read(format!("tests/data/inputs/{name}")).unwrap();
    match decode_image(&bytes) {
        Ok(_) => panic!("{name} should not decode"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn hostile_and_broken_images() {
    assert!(decode_err("empty.jpg").contains("empty"));
    assert!(decode_err("not_an_image.jpg").contains("not a PNG or JPEG"));
    assert!(
        decode_err("face_truncated.jpg").contains("truncated"),
        "{}",
        decode_err("face_truncated.jpg")
    );
    let bomb = decode_err("bomb_30000x30000.png");
    assert!(bomb.contains("30000x30000") || bomb.contains("limits"), "{bomb}");
    assert!(decode_err("one_pixel.png").contains("1x1"));
}

#[test]
fn unusual_but_valid_images_decode_to_rgba() {
    let reference = decode_image(&std::fs::read("tests/data/photos/lfw_Serena_Williams_0001.jpg").unwrap()).unwrap();
    for name in [
        "face_gray.png",
        "face_gray16.png",
        "face_rgb16.png",
        "face_cmyk.jpg",
        "face_exif_rotated.jpg",
    ] {
        let img = decode_image(&std::fs::read(format!("tests/data/inputs/{name}")).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            (img.width, img.height),
            (reference.width, reference.height),
            "{name}: size (EXIF applied?)"
        );
        // Same picture: mean absolute grey-level difference to the original stays small.
        let grey = |d: &[u8], i: usize| (d[i * 4] as f32 + d[i * 4 + 1] as f32 + d[i * 4 + 2] as f32) / 3.0;
        let n = (img.width * img.height) as usize;
        let mad: f32 = (0..n)
            .map(|i| (grey(&img.data, i) - grey(&reference.data, i)).abs())
            .sum::<f32>()
            / n as f32;
        assert!(mad < 12.0, "{name}: mean grey difference {mad} to the original");
    }
}
