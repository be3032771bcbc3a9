//! One error type for the whole crate: every failure names what went wrong and where.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    /// The graph JSON is malformed or describes something the engine cannot run.
    #[error("model graph: {0}")]
    Graph(String),
    /// The weights file is unreadable or disagrees with the graph.
    #[error("model weights: {0}")]
    Weights(String),
    /// Input given to a model or op has the wrong size or layout.
    #[error("input: {0}")]
    Input(String),
    /// No usable GPU adapter/device, or the GPU rejected work.
    #[error("gpu: {0}")]
    Gpu(String),
    /// An image could not be decoded or is unusable.
    #[error("image: {0}")]
    Image(String),
    /// A saved face template is corrupt, truncated or of an unknown version.
    #[error("template: {0}")]
    Template(String),
    /// A template made by another model than the one loaded.
    #[error("template: {0}")]
    ModelMismatch(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn graph(msg: impl Into<String>) -> Self {
        Error::Graph(msg.into())
    }
    pub(crate) fn weights(msg: impl Into<String>) -> Self {
        Error::Weights(msg.into())
    }
    pub(crate) fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
    pub(crate) fn gpu(msg: impl Into<String>) -> Self {
        Error::Gpu(msg.into())
    }
}
