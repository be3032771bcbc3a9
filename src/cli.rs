//! Command-line parsing and output. Every command prints JSON with `--json`, text otherwise.

use clap::{Parser, Subcommand};
use facepatch::embed::Embedder;
use facepatch::engine::{Device, GpuContext};
use facepatch::error::{Error, Result};
use facepatch::face::decode_image;
use facepatch::models;
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
    /// Print the embedding of an aligned 112x112 face.
    Embed {
        /// Image file (PNG or JPEG).
        image: String,
        /// A bundled model name (mobilefacenet) or the path of a graph .json with its .safetensors beside it.
        #[arg(long, default_value = "mobilefacenet")]
        model: String,
        /// Where to run: gpu (WGSL kernels via wgpu) or cpu (the plain-Rust twins).
        #[arg(long, default_value = "gpu")]
        device: String,
        #[arg(long)]
        json: bool,
    },
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
        Command::Embed {
            image,
            model,
            device,
            json,
        } => {
            let device: Device = device.parse()?;
            let (name, graph, weights) = model_files(&model)?;
            let embedder = Embedder::load(&name, &graph, &weights, gpu_for(device).await?)?;
            let face = decode_image(&read(&image)?).map_err(|e| Error::Image(format!("{image}: {e}")))?;
            let embedding = embedder.embed(&face).await?;
            if json {
                println!(
                    "{}",
                    json!({"model": name, "device": device.as_str(), "embedding": embedding})
                );
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
