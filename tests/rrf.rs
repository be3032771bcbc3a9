//! The RRF patch models on the engine: each cell's receptive field is really bounded (checked by changing
//! pixels), contributions add up to the score (with and without masks), the GPU path equals the CPU path,
//! the engine equals PyTorch, and `verify` decides same / different people.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::floats;
use facepatch::embed::{cosine, Embedder, Grid};
use facepatch::face::{decode_image, Rgba};
use facepatch::verify;
use serde_json::Value;

const VARIANTS: [(&str, usize); 2] = [("rrf28", 28), ("rrf56", 56)];

fn load(name: &str, gpu: bool) -> Embedder {
    let m = facepatch::models::bundled(name).unwrap();
    let ctx = if gpu {
        Some(pollster::block_on(common::gpu()))
    } else {
        None
    };
    Embedder::load(name, m.graph, m.weights, ctx).unwrap()
}

fn face(name: &str) -> Rgba {
    decode_image(&std::fs::read(format!("tests/data/aligned/{name}.png")).unwrap()).unwrap()
}

fn grid(e: &Embedder, img: &Rgba) -> Grid {
    pollster::block_on(e.encode(img)).unwrap().grid.expect("a patch model")
}

/// Rows (and columns) of input pixels that cell `r` may see, clipped to the image.
fn window(meta: &Value, r: usize) -> (usize, usize) {
    let (f, s, o) = (
        meta["receptive_field"].as_i64().unwrap(),
        meta["cell_stride"].as_i64().unwrap(),
        meta["cell_offset"].as_i64().unwrap(),
    );
    let lo = (o + s * r as i64).max(0) as usize;
    let hi = ((o + s * r as i64 + f - 1).min(111)) as usize;
    (lo, hi)
}

fn receptive_field_is_bounded(name: &str, window_side: usize, gpu: bool) {
    let e = load(name, gpu);
    let meta = e.meta().clone();
    let rf = meta["receptive_field"].as_u64().unwrap() as usize;
    assert!(rf <= window_side, "{name}: receptive field {rf} > {window_side}");
    let base = face("lfw_Serena_Williams_0001");
    let g0 = grid(&e, &base);
    let mut rng = common::Rng::new(5);
    for &(r, c) in &[(0usize, 0usize), (g0.rows / 2, g0.cols / 3), (g0.rows - 1, g0.cols - 1)] {
        let (y0, y1) = window(&meta, r);
        let (x0, x1) = window(&meta, c);
        assert!(y1 - y0 < window_side && x1 - x0 < window_side);
        // Scramble every pixel outside the window: the cell must not move by a single bit.
        let mut outside = base.clone();
        for y in 0..112 {
            for x in 0..112 {
                if !(y0..=y1).contains(&y) || !(x0..=x1).contains(&x) {
                    let i = (y * 112 + x) * 4;
                    outside.data[i..i + 3].copy_from_slice(&rng.bytes(3));
                }
            }
        }
        let g1 = grid(&e, &outside);
        let cell = r * g0.cols + c;
        assert_eq!(
            g0.cell(cell),
            g1.cell(cell),
            "{name} cell ({r},{c}) changed when only pixels outside its window did"
        );
        // A neighbouring cell whose window does include scrambled pixels does change (the test has teeth).
        let other = if c + 1 < g0.cols { cell + 1 } else { cell - 1 };
        assert_ne!(g0.cell(other), g1.cell(other));
        // Changing pixels at the window's corners changes the cell: the window is not smaller than claimed.
        for (y, x) in [(y0, x0), (y1, x1)] {
            let mut inside = base.clone();
            let i = (y * 112 + x) * 4;
            inside.data[i] = inside.data[i].wrapping_add(128);
            assert_ne!(
                g0.cell(cell),
                grid(&e, &inside).cell(cell),
                "{name} cell ({r},{c}) ignores pixel ({x},{y})"
            );
        }
    }
}

#[test]
fn receptive_field_bound_cpu() {
    for (name, side) in VARIANTS {
        receptive_field_is_bounded(name, side, false);
    }
}

#[test]
fn receptive_field_bound_gpu() {
    for (name, side) in VARIANTS {
        receptive_field_is_bounded(name, side, true);
    }
}

#[test]
fn gpu_grid_equals_cpu_grid_and_pytorch() {
    for (name, _) in VARIANTS {
        let (cpu, gpu) = (load(name, false), load(name, true));
        let golden: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("tests/data/golden/{name}.json")).unwrap()).unwrap();
        for f in golden["faces"].as_array().unwrap() {
            let img =
                decode_image(&std::fs::read(format!("tests/data/{}", f["image"].as_str().unwrap())).unwrap()).unwrap();
            let (gc, gg) = (grid(&cpu, &img), grid(&gpu, &img));
            let mean_abs = gc.cells.iter().map(|v| v.abs()).sum::<f32>() / gc.cells.len() as f32;
            for (a, b) in gg.cells.iter().zip(&gc.cells) {
                assert!(
                    (a - b).abs() <= 1e-4 * a.abs().max(mean_abs) + 1e-5,
                    "{name}: gpu {a} vs cpu {b}"
                );
            }
            let want: Vec<f32> = floats(&f["pooled"]);
            let c = cosine(&verify::pooled(&gc, None), &want);
            assert!(c >= 0.9999, "{name} {}: pooled cosine to PyTorch {c}", f["image"]);
            for cell in f["cells"].as_array().unwrap() {
                let i = cell["row"].as_u64().unwrap() as usize * gc.cols + cell["col"].as_u64().unwrap() as usize;
                let want: Vec<f32> = floats(&cell["values"]);
                let c = cosine(gc.cell(i), &want);
                assert!(c >= 0.9999, "{name}: cell {i} cosine to PyTorch {c}");
            }
        }
    }
}

#[test]
fn contributions_of_real_faces_sum_to_the_score() {
    for (name, _) in VARIANTS {
        let e = load(name, false);
        let (a, b) = (
            grid(&e, &face("lfw_Serena_Williams_0001")),
            grid(&e, &face("lfw_Serena_Williams_0014")),
        );
        let c = verify::compare(&a, &b, None).unwrap();
        assert!((c.a.iter().sum::<f32>() - c.score).abs() < 1e-5 && (c.b.iter().sum::<f32>() - c.score).abs() < 1e-5);
        // Leave out the lower half (a face mask): still exact, and a different score.
        let keep: Vec<bool> = (0..a.rows * a.cols).map(|i| i / a.cols < a.rows / 2).collect();
        let m = verify::compare(&a, &b, Some(&keep)).unwrap();
        assert!((m.a.iter().sum::<f32>() - m.score).abs() < 1e-5 && (m.b.iter().sum::<f32>() - m.score).abs() < 1e-5);
        assert_ne!(m.score, c.score);
    }
}

fn verify_cli(a: &str, b: &str, model: &str, extra: &[&str]) -> Value {
    let mut args = vec!["verify", a, b, "--model", model, "--json", "--device", "cpu"];
    args.extend_from_slice(extra);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facepatch"))
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn verify_says_match_for_one_person_and_no_match_for_two() {
    let (s1, s2, other) = (
        "tests/data/photos/lfw_Serena_Williams_0001.jpg",
        "tests/data/photos/lfw_Serena_Williams_0014.jpg",
        "tests/data/photos/lfw_Jim_Ahern_0001.jpg",
    );
    for (name, _) in VARIANTS {
        let same = verify_cli(s1, s2, name, &[]);
        let diff = verify_cli(s1, other, name, &[]);
        assert_eq!(same["match"], true, "{name}: {same}");
        assert_eq!(diff["match"], false, "{name}: {diff}");
        for v in [&same, &diff] {
            let score = v["score"].as_f64().unwrap();
            for side in ["a", "b"] {
                let sum: f64 = v["grid"][side]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .sum();
                assert!(
                    (sum - score).abs() < 1e-4,
                    "{name}: grid {side} sums to {sum}, score {score}"
                );
            }
            let far = v["far"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&far), "{name}: far {far}");
            assert_eq!(v["faces"].as_array().unwrap().len(), 2);
        }
    }
    let g = verify_cli(s1, s2, "mobilefacenet", &[]);
    assert!(g["grid"].is_null() && g["grid_note"].as_str().unwrap().contains("no per-patch grid"));
    assert_eq!(g["match"], true);
}

#[test]
fn verify_mask_changes_the_score_and_still_sums() {
    let rows = 14;
    let mask: String = (0..rows)
        .map(|r| if r >= 9 { "0".repeat(14) } else { "1".repeat(14) } + "\n")
        .collect();
    let path = std::env::temp_dir().join("facepatch_mask_rrf56.txt");
    std::fs::write(&path, mask).unwrap();
    let (a, b) = (
        "tests/data/photos/lfw_Serena_Williams_0001.jpg",
        "tests/data/photos/lfw_Serena_Williams_0014.jpg",
    );
    let full = verify_cli(a, b, "rrf56", &[]);
    let masked = verify_cli(a, b, "rrf56", &["--mask", path.to_str().unwrap()]);
    assert_ne!(full["score"], masked["score"]);
    let score = masked["score"].as_f64().unwrap();
    let cells = masked["grid"]["a"].as_array().unwrap();
    assert!(cells[9 * 14..].iter().all(|v| v.as_f64().unwrap() == 0.0));
    let sum: f64 = cells.iter().map(|x| x.as_f64().unwrap()).sum();
    assert!((sum - score).abs() < 1e-4);
}
