//! Command-line parsing and output. Every command prints JSON with `--json`, text otherwise.

use clap::{Parser, Subcommand};
use facepatch::embed::Embedder;
use facepatch::engine::{Device, GpuContext};
use facepatch::error::{Error, Result};
use facepatch::face::{decode_image, detect, DetectOptions, Detector, Rgba};
use facepatch::pipeline::Pipeline;
use facepatch::{eval, models, verify};
use serde_json::json;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "facepatch",
    version,
    about = "Explainable face verification on WGSL compute shaders"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the GPU adapter in use (name, backend, device type) and its limits.
    Info {
        #[arg(long)]
        json: bool,
    },
    /// Find every face in a photo: box, score and 5 landmarks, in the photo's pixels.
    Detect {
        image: String,
        #[command(flatten)]
        detect: DetectArgs,
        #[arg(long, default_value = "gpu")]
        device: String,
        #[arg(long)]
        json: bool,
    },
    /// Write the ArcFace-aligned 112x112 PNG of the chosen face of each image.
    Align {
        #[arg(required = true)]
        images: Vec<String>,
        #[arg(long)]
        out: String,
        /// Index of the face to align (in `detect`'s order); default: the largest, most central one.
        #[arg(long)]
        face: Option<usize>,
        #[command(flatten)]
        detect: DetectArgs,
        #[arg(long, default_value = "gpu")]
        device: String,
    },
    /// Print the embedding of a face: a photo is detected and aligned first; a 112x112 image is taken as aligned.
    Embed {
        /// Image file (PNG or JPEG).
        image: String,
        /// Index of the face to use (in `detect`'s order); default: the largest, most central one.
        #[arg(long)]
        face: Option<usize>,
        #[command(flatten)]
        detect: DetectArgs,
        /// A bundled model name (mobilefacenet) or the path of a graph .json with its .safetensors beside it.
        #[arg(long, default_value = "mobilefacenet")]
        model: String,
        /// Where to run: gpu (WGSL kernels via wgpu) or cpu (the plain-Rust twins).
        #[arg(long, default_value = "gpu")]
        device: String,
        #[arg(long)]
        json: bool,
    },
    /// 10-fold verification accuracy and TAR at FAR 1e-2 / 1e-3 on a pair list (full pipeline).
    Eval {
        /// LFW's pairs.txt, or a TSV of fold<TAB>pathA<TAB>pathB<TAB>same.
        #[arg(long)]
        pairs: String,
        /// Folder the pair list's paths are relative to.
        #[arg(long)]
        root: String,
        #[arg(long, default_value = "mobilefacenet")]
        model: String,
        /// Average each embedding with that of the mirrored face.
        #[arg(long)]
        flip: bool,
        /// cpu runs one worker per core; gpu runs one.
        #[arg(long, default_value = "cpu")]
        device: String,
        #[command(flatten)]
        detect: DetectArgs,
        /// Also write the operating points (thresholds, false-accept rates) for `verify` to this file.
        #[arg(long)]
        calibrate: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Time detection + alignment (and encoding) of one photo on the GPU and CPU paths (median of N runs).
    Bench {
        #[arg(long, default_value = "tests/data/photos/bench_640x480.jpg")]
        image: String,
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        #[arg(long)]
        json: bool,
    },
    /// Are two photos the same person? With a patch model, also which cells of each face agree.
    Verify {
        image_a: String,
        image_b: String,
        /// rrf28, rrf56, mobilefacenet, or the path of a graph .json (with .safetensors and
        /// .calibration.json beside it).
        #[arg(long, default_value = models::DEFAULT_RECOGNISER)]
        model: String,
        /// Cells to leave out of the score: `rows` lines of `cols` 0/1 characters (0 = leave out), or a JSON list.
        #[arg(long)]
        mask: Option<String>,
        /// Operating point: the calibrated false-accept rate to decide at (1e-2 or 1e-3); default: the
        /// threshold of best accuracy.
        #[arg(long)]
        far: Option<f64>,
        /// Decide at this threshold instead of a calibrated one.
        #[arg(long)]
        threshold: Option<f32>,
        /// Face index in each photo (`detect`'s order); default: the largest, most central one.
        #[arg(long)]
        face_a: Option<usize>,
        #[arg(long)]
        face_b: Option<usize>,
        #[command(flatten)]
        detect: DetectArgs,
        #[arg(long, default_value = "gpu")]
        device: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Clone, Copy)]
struct DetectArgs {
    /// Photos are scaled down so their longest side is at most this before detection.
    #[arg(long, default_value_t = detect::DEFAULT_MAX_SIDE)]
    max_side: u32,
    /// Minimum detector score for a face.
    #[arg(long, default_value_t = detect::DEFAULT_SCORE_THRESHOLD)]
    face_score: f32,
}

impl DetectArgs {
    fn options(self) -> DetectOptions {
        DetectOptions {
            max_side: self.max_side,
            score_threshold: self.face_score,
            ..Default::default()
        }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match pollster::block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("facepatch: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_string(),
        source,
    })
}

/// Graph and weights of a bundled model, or of `<path>.json` + `<path>.safetensors`.
fn model_files(model: &str) -> Result<(String, String, Vec<u8>)> {
    if model.ends_with(".json") {
        let graph = String::from_utf8(read(model)?).map_err(|_| Error::Graph(format!("{model} is not UTF-8")))?;
        let weights_path = format!("{}.safetensors", model.trim_end_matches(".json"));
        let name = std::path::Path::new(model)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(model)
            .to_string();
        return Ok((name, graph, read(&weights_path)?));
    }
    let m = models::bundled(model)?;
    Ok((m.name.to_string(), m.graph.to_string(), m.weights.to_vec()))
}

async fn gpu_for(device: Device) -> Result<Option<Arc<GpuContext>>> {
    Ok(match device {
        Device::Gpu => Some(GpuContext::new().await?),
        Device::Cpu => None,
    })
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { json } => {
            let ctx = GpuContext::new().await?;
            let r = &ctx.report;
            if json {
                println!("{}", serde_json::to_string_pretty(r).expect("serialisable"));
            } else {
                println!("adapter:     {}", r.name);
                println!("backend:     {}", r.backend);
                println!("device type: {}", r.device_type);
                println!("driver:      {}", r.driver);
                let l = &r.limits;
                println!("limits (requested: WebGPU defaults):");
                println!(
                    "  max storage buffer binding: {} bytes (adapter: {})",
                    l.max_storage_buffer_binding_size, l.adapter_max_storage_buffer_binding_size
                );
                println!(
                    "  storage buffers per stage:  {}",
                    l.max_storage_buffers_per_shader_stage
                );
                println!(
                    "  invocations per workgroup:  {} (adapter: {})",
                    l.max_compute_invocations_per_workgroup, l.adapter_max_compute_invocations_per_workgroup
                );
                println!(
                    "  workgroups per dimension:   {}",
                    l.max_compute_workgroups_per_dimension
                );
            }
        }
        Command::Detect {
            image,
            detect,
            device,
            json,
        } => {
            let gpu = gpu_for(device.parse()?).await?;
            let det = Detector::new(
                models::RETINAFACE.graph,
                models::RETINAFACE.weights,
                gpu,
                detect.options(),
            )?;
            let img = load_image(&image)?;
            let faces = det.detect(&img).await?;
            if json {
                println!("{}", json!({"width": img.width, "height": img.height, "faces": faces}));
            } else {
                println!("{image}: {}x{}, {} face(s)", img.width, img.height, faces.len());
                for (i, f) in faces.iter().enumerate() {
                    let b = f.bbox;
                    println!(
                        "  {i}: score {:.3}, box x {:.0} y {:.0} w {:.0} h {:.0}",
                        f.score, b[0], b[1], b[2], b[3]
                    );
                }
            }
        }
        Command::Align {
            images,
            out,
            face,
            detect,
            device,
        } => {
            let gpu = gpu_for(device.parse()?).await?;
            let pipe = Pipeline::new(&models::MOBILEFACENET, gpu, detect.options())?;
            std::fs::create_dir_all(&out).map_err(|source| Error::Io {
                path: out.clone(),
                source,
            })?;
            let mut failed = 0;
            for image in &images {
                match align_one(&pipe, image, face, &out).await {
                    Ok(path) => println!("{image} -> {path}"),
                    Err(e) => {
                        eprintln!("facepatch: {e}");
                        failed += 1;
                    }
                }
            }
            if failed > 0 {
                return Err(Error::Input(format!(
                    "{failed} of {} image(s) could not be aligned",
                    images.len()
                )));
            }
        }
        Command::Bench {
            image,
            iterations,
            json,
        } => {
            let img = load_image(&image)?;
            let mut rows = Vec::new();
            for device in [Device::Gpu, Device::Cpu] {
                let gpu = match gpu_for(device).await {
                    Ok(g) => g,
                    Err(e) => {
                        eprintln!("facepatch: skipping the GPU path: {e}");
                        continue;
                    }
                };
                let pipe = Pipeline::new(&models::MOBILEFACENET, gpu, DetectOptions::default())?;
                let mut detect_align = Vec::new();
                let mut encode = Vec::new();
                for i in 0..=iterations.max(1) {
                    let t = std::time::Instant::now();
                    let faces = pipe.detect(&img).await?;
                    let f = faces.first().ok_or_else(|| no_face(&image))?;
                    let aligned = pipe.align(&img, f).await?;
                    let t1 = t.elapsed().as_secs_f64();
                    pipe.embedder.encode(&aligned).await?;
                    let t2 = t.elapsed().as_secs_f64() - t1;
                    if i > 0 {
                        // The first run builds the detector for this size: not counted.
                        detect_align.push(t1 * 1e3);
                        encode.push(t2 * 1e3);
                    }
                }
                let median = |v: &mut Vec<f64>| {
                    v.sort_by(f64::total_cmp);
                    v[v.len() / 2]
                };
                rows.push(json!({
                    "device": device.as_str(), "image": image, "width": img.width, "height": img.height,
                    "iterations": detect_align.len(),
                    "detect_align_ms": median(&mut detect_align), "encode_ms": median(&mut encode),
                }));
            }
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for r in rows {
                    println!(
                        "{}: {}x{} detect + align {:.1} ms, MobileFaceNet encode {:.1} ms (median of {})",
                        r["device"].as_str().unwrap_or(""),
                        r["width"],
                        r["height"],
                        r["detect_align_ms"].as_f64().unwrap_or(0.0),
                        r["encode_ms"].as_f64().unwrap_or(0.0),
                        r["iterations"]
                    );
                }
            }
        }
        Command::Verify {
            image_a,
            image_b,
            model,
            mask,
            far,
            threshold,
            face_a,
            face_b,
            detect,
            device,
            json,
        } => {
            let device: Device = device.parse()?;
            let (name, graph, weights) = model_files(&model)?;
            let calibration = calibration_for(&model, &name)?;
            let (threshold, far) = match (threshold, far, &calibration) {
                (Some(t), _, c) => (t, c.as_ref().map(|c| c.far(t))),
                (None, f, Some(c)) => {
                    let op = match f {
                        Some(f) => verify::OperatingPoint::from_far(f)?,
                        None => verify::OperatingPoint::Best,
                    };
                    let (t, far) = c.operating_point(op);
                    (t, Some(far))
                }
                (None, _, None) => {
                    return Err(Error::Input(format!(
                        "model '{name}' has no calibration: give --threshold"
                    )))
                }
            };
            let pipe = Pipeline::with_files(&name, &graph, &weights, gpu_for(device).await?, detect.options())?;
            let mut found = Vec::new();
            for (image, face) in [(&image_a, face_a), (&image_b, face_b)] {
                let img = load_image(image)?;
                let (f, aligned) = pipe.find_face(&img, face).await?.ok_or_else(|| no_face(image))?;
                found.push((f, pipe.embedder.encode(&aligned).await?));
            }
            let (ta, tb) = (&found[0].1, &found[1].1);
            let (score, grid) = match (&ta.grid, &tb.grid) {
                (Some(ga), Some(gb)) => {
                    let keep = match &mask {
                        Some(path) => {
                            let text = String::from_utf8(read(path)?)
                                .map_err(|_| Error::Input(format!("{path} is not UTF-8")))?;
                            Some(verify::parse_mask(&text, ga.rows, ga.cols)?)
                        }
                        None => None,
                    };
                    let c = verify::compare(ga, gb, keep.as_deref())?;
                    (c.score, Some(c))
                }
                _ => {
                    if mask.is_some() {
                        return Err(Error::Input(format!(
                            "'{name}' has no patch grid, so --mask cannot apply"
                        )));
                    }
                    (facepatch::embed::cosine(&ta.embedding, &tb.embedding), None)
                }
            };
            let matched = score > threshold;
            if json {
                let grid_json = match &grid {
                    Some(c) => json!({"rows": c.rows, "cols": c.cols, "cells": c.cells, "a": c.a, "b": c.b}),
                    None => serde_json::Value::Null,
                };
                let mut v = json!({
                    "model": name, "device": device.as_str(), "score": score, "threshold": threshold, "match": matched,
                    "far": far, "grid": grid_json,
                    "faces": [found[0].0, found[1].0],
                });
                if grid.is_none() {
                    v["grid_note"] = json!(format!(
                        "'{name}' computes one global embedding: it has no per-patch grid"
                    ));
                }
                println!("{v}");
            } else {
                println!(
                    "{name}: score {score:.4}, threshold {threshold:.4}: {}",
                    if matched { "MATCH" } else { "no match" }
                );
                if let Some(f) = far {
                    println!(
                        "  at this threshold {:.3}% of different-person pairs are accepted (calibration)",
                        f * 100.0
                    );
                }
                match &grid {
                    Some(c) => println!(
                        "  {}x{} patch grid; per-cell contributions sum to the score (--json shows them)",
                        c.rows, c.cols
                    ),
                    None => println!("  '{name}' has no per-patch grid (a global embedding)"),
                }
            }
        }
        Command::Eval {
            pairs,
            root,
            model,
            flip,
            device,
            detect,
            calibrate,
            json,
        } => {
            let device: Device = device.parse()?;
            let (name, graph, weights) = model_files(&model)?;
            let text = String::from_utf8(read(&pairs)?).map_err(|_| Error::Input(format!("{pairs} is not UTF-8")))?;
            let report = eval::run(&name, &graph, &weights, &text, &root, flip, device, detect.options()).await?;
            if let Some(path) = calibrate {
                let source = format!(
                    "facepatch eval --pairs {pairs}{}: {} pairs, 10-fold accuracy {:.4}",
                    if flip { " --flip" } else { "" },
                    report.pairs,
                    report.accuracy
                );
                let c = report.calibration(&source);
                std::fs::write(&path, serde_json::to_string(&c).expect("serialisable") + "\n").map_err(|source| {
                    Error::Io {
                        path: path.clone(),
                        source,
                    }
                })?;
            }
            if json {
                println!("{}", serde_json::to_string(&report).expect("serialisable"));
            } else {
                println!("{}", report.summary());
            }
        }
        Command::Embed {
            image,
            face,
            detect,
            model,
            device,
            json,
        } => {
            let device: Device = device.parse()?;
            let (name, graph, weights) = model_files(&model)?;
            let img = load_image(&image)?;
            let (embedding, found) = if img.width == 112 && img.height == 112 && face.is_none() {
                let embedder = Embedder::load(&name, &graph, &weights, gpu_for(device).await?)?;
                (embedder.embed(&img).await?, None)
            } else {
                let pipe = Pipeline::with_files(&name, &graph, &weights, gpu_for(device).await?, detect.options())?;
                let a = pipe.analyze(&img, face, false).await?.ok_or_else(|| no_face(&image))?;
                (a.embedding, Some(a.face))
            };
            if json {
                let mut v = json!({"model": name, "device": device.as_str(), "embedding": embedding});
                if let Some(f) = found {
                    v["face"] = json!(f);
                }
                println!("{v}");
            } else {
                let head: Vec<String> = embedding.iter().take(8).map(|v| format!("{v:.4}")).collect();
                println!(
                    "{name} on {}: {}-D embedding [{} ...]",
                    device.as_str(),
                    embedding.len(),
                    head.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// The calibration of a bundled model, or `<graph>.calibration.json` beside a model file.
fn calibration_for(model: &str, name: &str) -> Result<Option<verify::Calibration>> {
    let text = if model.ends_with(".json") {
        let p = format!("{}.calibration.json", model.trim_end_matches(".json"));
        match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        }
    } else {
        match models::calibration(name) {
            Some(t) => t.to_string(),
            None => return Ok(None),
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Input(format!("calibration of '{name}': {e}")))
}

fn load_image(path: &str) -> Result<Rgba> {
    decode_image(&read(path)?).map_err(|e| Error::Image(format!("{path}: {e}")))
}

fn no_face(image: &str) -> Error {
    Error::Input(format!(
        "{image}: no face found (a face is required here; try a larger, frontal, well-lit photo)"
    ))
}

async fn align_one(pipe: &Pipeline, image: &str, face: Option<usize>, out: &str) -> Result<String> {
    let img = load_image(image)?;
    let (_, aligned) = pipe.find_face(&img, face).await?.ok_or_else(|| no_face(image))?;
    let stem = std::path::Path::new(image)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("face");
    let path = format!("{}/{stem}.png", out.trim_end_matches('/'));
    image::save_buffer(&path, &aligned.data, 112, 112, image::ColorType::Rgba8)
        .map_err(|e| Error::Image(format!("cannot write {path}: {e}")))?;
    Ok(path)
}
