//! Face templates as bytes, so an app can enrol a face once and check it later on the device (e.g. in IndexedDB).
//!
//! Layout (version 1, little-endian): `b"FPTM"`, version u16, reserved u16, model-name length u8 + UTF-8 name,
//! model fingerprint u64, face (box 4 x f32, score f32, landmarks 10 x f32), kind u8 (0 global, 1 patches),
//! rows u16, cols u16, dim u16, then rows*cols*dim f32 (global: dim f32), then CRC-32 of everything before it.
//! No pixels are stored: a template cannot be turned back into the photo.

use crate::embed::{Grid, Template};
use crate::error::{Error, Result};
use crate::face::Face;

const MAGIC: &[u8; 4] = b"FPTM";
pub const VERSION: u16 = 1;
/// Refuse templates claiming more values than any real model has (no unbounded allocation).
const MAX_VALUES: usize = 1 << 22;

/// A face and its encoding, tied to the model that made it.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceTemplate {
    pub model: String,
    /// `fingerprint()` of the model's graph and weights: templates of two models never compare.
    pub fingerprint: u64,
    pub face: Face,
    pub template: Template,
}

/// FNV-1a 64 over the model's graph and weights.
pub fn fingerprint(graph: &str, weights: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in graph.as_bytes().iter().chain(weights) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// CRC-32 (IEEE), bitwise: templates are a few hundred KB at most.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
    }
    !c
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Template(msg.into())
}

impl FaceTemplate {
    pub fn to_bytes(&self) -> Vec<u8> {
        let name = self.model.as_bytes();
        let name = &name[..name.len().min(255)];
        let (kind, rows, cols, dim, values): (u8, usize, usize, usize, &[f32]) = match &self.template.grid {
            Some(g) => (1, g.rows, g.cols, g.dim, &g.cells),
            None => (0, 1, 1, self.template.embedding.len(), &self.template.embedding),
        };
        let mut out = Vec::with_capacity(64 + name.len() + 4 * values.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&self.fingerprint.to_le_bytes());
        let f = &self.face;
        for v in f.bbox.iter().chain([&f.score]).chain(f.landmarks.iter().flatten()) {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(kind);
        for n in [rows, cols, dim] {
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<FaceTemplate> {
        if bytes.len() < 4 || &bytes[..4] != MAGIC {
            return Err(bad("not a facepatch template (wrong magic bytes)"));
        }
        if bytes.len() < 8 {
            return Err(bad("truncated header"));
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != VERSION {
            return Err(bad(format!(
                "version {version} is not supported (this build reads version {VERSION})"
            )));
        }
        let (body, tail) = bytes.split_at(bytes.len().saturating_sub(4).max(8));
        if tail.len() != 4 {
            return Err(bad("truncated: no checksum"));
        }
        let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        if crc32(body) != stored {
            return Err(bad("checksum mismatch: the template is corrupt or truncated"));
        }
        let mut r = Reader { b: body, at: 8 };
        let name_len = r.take(1)?[0] as usize;
        let model = String::from_utf8(r.take(name_len)?.to_vec()).map_err(|_| bad("model name is not UTF-8"))?;
        let fingerprint = u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
        let mut f = [0f32; 15];
        for v in f.iter_mut() {
            *v = r.f32()?;
        }
        let face = Face {
            bbox: [f[0], f[1], f[2], f[3]],
            score: f[4],
            landmarks: [
                [f[5], f[6]],
                [f[7], f[8]],
                [f[9], f[10]],
                [f[11], f[12]],
                [f[13], f[14]],
            ],
        };
        let kind = r.take(1)?[0];
        let mut dims = [0usize; 3];
        for d in dims.iter_mut() {
            *d = u16::from_le_bytes(r.take(2)?.try_into().expect("2 bytes")) as usize;
        }
        let [rows, cols, dim] = dims;
        let n = rows * cols * dim;
        if n == 0 || n > MAX_VALUES {
            return Err(bad(format!("implausible grid {rows}x{cols}x{dim}")));
        }
        if r.b.len() - r.at != 4 * n {
            return Err(bad(format!(
                "{} bytes of values for a {rows}x{cols}x{dim} grid (expected {})",
                r.b.len() - r.at,
                4 * n
            )));
        }
        let values: Vec<f32> = (0..n).map(|_| r.f32()).collect::<Result<_>>()?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(bad("non-finite values"));
        }
        let template = match kind {
            0 if rows == 1 && cols == 1 => Template {
                embedding: values,
                grid: None,
            },
            1 => {
                let grid = Grid {
                    rows,
                    cols,
                    dim,
                    cells: values,
                };
                Template {
                    embedding: crate::verify::pooled(&grid, None),
                    grid: Some(grid),
                }
            }
            k => return Err(bad(format!("unknown kind {k} for a {rows}x{cols} grid"))),
        };
        Ok(FaceTemplate {
            model,
            fingerprint,
            face,
            template,
        })
    }

    /// Refuses a template made by another model than the one `fingerprint` names.
    pub fn check_model(&self, model: &str, fingerprint: u64) -> Result<()> {
        if self.fingerprint != fingerprint {
            return Err(Error::ModelMismatch(format!(
                "this template was made by model '{}' ({:016x}), the loaded model is '{model}' ({fingerprint:016x}): \
                 enrol the face again with this model",
                self.model, self.fingerprint
            )));
        }
        Ok(())
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let s = self.b.get(self.at..self.at + n).ok_or_else(|| bad("truncated"))?;
        self.at += n;
        Ok(s)
    }
    fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FaceTemplate {
        let cells: Vec<f32> = (0..2 * 3 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
        let grid = Grid {
            rows: 2,
            cols: 3,
            dim: 4,
            cells,
        };
        FaceTemplate {
            model: "rrf56".into(),
            fingerprint: fingerprint("{}", &[1, 2, 3]),
            face: Face {
                bbox: [1.0, 2.0, 30.0, 40.0],
                score: 0.99,
                landmarks: [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]],
            },
            template: Template {
                embedding: crate::verify::pooled(&grid, None),
                grid: Some(grid),
            },
        }
    }

    #[test]
    fn round_trips_bit_for_bit() {
        let t = sample();
        let bytes = t.to_bytes();
        assert_eq!(FaceTemplate::from_bytes(&bytes).unwrap(), t);
        let g = FaceTemplate {
            template: Template {
                embedding: vec![0.6, 0.8],
                grid: None,
            },
            ..sample()
        };
        assert_eq!(FaceTemplate::from_bytes(&g.to_bytes()).unwrap(), g);
    }

    #[test]
    fn refuses_corrupt_truncated_foreign_and_future_templates() {
        let bytes = sample().to_bytes();
        let err = |b: &[u8]| FaceTemplate::from_bytes(b).unwrap_err().to_string();
        for i in [9, 20, 60, bytes.len() - 9, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(err(&b).contains("checksum"), "flipped byte {i}: {}", err(&b));
        }
        for n in [0, 3, 7, 8, 11, bytes.len() - 1] {
            let e = err(&bytes[..n]);
            assert!(
                e.contains("magic") || e.contains("truncated") || e.contains("checksum"),
                "{n}: {e}"
            );
        }
        assert!(err(b"PNG\x89 not a template").contains("magic"));
        let mut future = bytes.clone();
        future[4] = 2;
        assert!(err(&future).contains("version 2"));
        let t = FaceTemplate::from_bytes(&bytes).unwrap();
        assert!(t.check_model("rrf56", t.fingerprint).is_ok());
        let e = t.check_model("rrf28", 7).unwrap_err().to_string();
        assert!(e.contains("'rrf56'") && e.contains("'rrf28'"), "{e}");
    }

    #[test]
    fn crc32_is_the_standard_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
