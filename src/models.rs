//! The models shipped in `models/`, bundled into the library so the CLI and the wasm module work
//! without extra files.

use crate::error::{Error, Result};

/// A model's graph and weights.
pub struct ModelFiles {
    pub name: &'static str,
    pub graph: &'static str,
    pub weights: &'static [u8],
}

pub const MOBILEFACENET: ModelFiles = ModelFiles {
    name: "mobilefacenet",
    graph: include_str!("../models/mobilefacenet.json"),
    weights: include_bytes!("../models/mobilefacenet.safetensors"),
};

/// Restricted-receptive-field patch models (train/): every cell sees at most a 28x28 / 56x56 window.
pub const RRF28: ModelFiles = ModelFiles {
    name: "rrf28",
    graph: include_str!("../models/rrf28.json"),
    weights: include_bytes!("../models/rrf28.safetensors"),
};

pub const RRF56: ModelFiles = ModelFiles {
    name: "rrf56",
    graph: include_str!("../models/rrf56.json"),
    weights: include_bytes!("../models/rrf56.safetensors"),
};

/// The face detector (RetinaFace-MobileNet0.25); not a recogniser.
pub const RETINAFACE: ModelFiles = ModelFiles {
    name: "retinaface",
    graph: include_str!("../models/retinaface.json"),
    weights: include_bytes!("../models/retinaface.safetensors"),
};

/// Recognisers selectable by name.
pub const BUNDLED: &[ModelFiles] = &[RRF56, RRF28, MOBILEFACENET];

/// `verify`'s default recogniser: the more accurate patch model (see README's results).
pub const DEFAULT_RECOGNISER: &str = "rrf56";

/// The calibrated operating points of a bundled recogniser (`models/<name>.calibration.json`).
pub fn calibration(name: &str) -> Option<&'static str> {
    match name {
        "mobilefacenet" => Some(include_str!("../models/mobilefacenet.calibration.json")),
        "rrf28" => Some(include_str!("../models/rrf28.calibration.json")),
        "rrf56" => Some(include_str!("../models/rrf56.calibration.json")),
        _ => None,
    }
}

pub fn bundled(name: &str) -> Result<&'static ModelFiles> {
    BUNDLED.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = BUNDLED.iter().map(|m| m.name).collect();
        Error::input(format!("unknown model '{name}'; bundled models: {}", names.join(", ")))
    })
}
