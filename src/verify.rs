//! The additive score of patch models: S(A, B) = cos(mean_i a_i, mean_i b_i), split exactly into per-cell
//! contributions, optionally over a subset of cells (an occlusion mask), and the meaning of a threshold.

use crate::embed::Grid;
use crate::error::{Error, Result};

/// The mean of the kept cells (`keep[i]` false leaves cell i out; `None` keeps all), in f64.
fn mean_cells(g: &Grid, keep: Option<&[bool]>) -> Vec<f64> {
    let mut m = vec![0.0f64; g.dim];
    let mut n = 0usize;
    for i in (0..g.rows * g.cols).filter(|&i| keep.is_none_or(|k| k[i])) {
        for (acc, v) in m.iter_mut().zip(g.cell(i)) {
            *acc += *v as f64;
        }
        n += 1;
    }
    m.iter_mut().for_each(|v| *v /= n.max(1) as f64);
    m
}

fn norm(m: &[f64]) -> f64 {
    m.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-30)
}

/// The normalised mean of the kept cells: what the score compares.
pub fn pooled(g: &Grid, keep: Option<&[bool]>) -> Vec<f32> {
    let m = mean_cells(g, keep);
    let n = norm(&m);
    m.iter().map(|v| (v / n) as f32).collect()
}

/// A score and where it comes from.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Comparison {
    pub score: f32,
    pub rows: usize,
    pub cols: usize,
    /// Cell i of A contributes <a_i, mean b> / (N |mean a| |mean b|); these sum to `score`. Left-out cells give 0.
    pub a: Vec<f32>,
    pub b: Vec<f32>,
    /// How many cells took part.
    pub cells: usize,
}

/// Compares two grids over the cells `keep` marks (all when `None`).
pub fn compare(a: &Grid, b: &Grid, keep: Option<&[bool]>) -> Result<Comparison> {
    if (a.rows, a.cols, a.dim) != (b.rows, b.cols, b.dim) {
        return Err(Error::Input(format!(
            "the two templates come from different models ({}x{}x{} vs {}x{}x{} cells)",
            a.rows, a.cols, a.dim, b.rows, b.cols, b.dim
        )));
    }
    let n_cells = a.rows * a.cols;
    if let Some(k) = keep {
        if k.len() != n_cells {
            return Err(Error::Input(format!(
                "the mask has {} cells, the grid {n_cells}",
                k.len()
            )));
        }
    }
    let kept = |i: usize| keep.is_none_or(|k| k[i]);
    let n = (0..n_cells).filter(|&i| kept(i)).count();
    if n == 0 {
        return Err(Error::Input(
            "the mask leaves out every cell: nothing is left to compare".into(),
        ));
    }
    let (ma, mb) = (mean_cells(a, keep), mean_cells(b, keep));
    let denom = n as f64 * norm(&ma) * norm(&mb);
    let contrib = |g: &Grid, other: &[f64]| -> Vec<f32> {
        (0..n_cells)
            .map(|i| {
                if !kept(i) {
                    return 0.0;
                }
                let dot: f64 = g.cell(i).iter().zip(other).map(|(x, y)| *x as f64 * y).sum();
                (dot / denom) as f32
            })
            .collect()
    };
    let score = (ma.iter().zip(&mb).map(|(x, y)| x * y).sum::<f64>() / (norm(&ma) * norm(&mb))) as f32;
    Ok(Comparison {
        score,
        rows: a.rows,
        cols: a.cols,
        a: contrib(a, &mb),
        b: contrib(b, &ma),
        cells: n,
    })
}

/// Reads a mask: `rows` lines of `cols` characters, `1` (use the cell) or `0` (leave it out); or a JSON list of
/// 0/1 values in row-major order. Whitespace between cells is ignored.
pub fn parse_mask(text: &str, rows: usize, cols: usize) -> Result<Vec<bool>> {
    let t = text.trim();
    let bits: Vec<bool> = if t.starts_with('[') {
        let v: Vec<u8> = serde_json::from_str(t).map_err(|e| Error::Input(format!("mask: invalid JSON list: {e}")))?;
        v.iter()
            .map(|&x| match x {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(Error::Input(format!("mask: values must be 0 or 1, found {x}"))),
            })
            .collect::<Result<_>>()?
    } else {
        t.chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| match c {
                '0' => Ok(false),
                '1' => Ok(true),
                other => Err(Error::Input(format!("mask: '{other}' is not 0 or 1"))),
            })
            .collect::<Result<_>>()?
    };
    if bits.len() != rows * cols {
        return Err(Error::Input(format!(
            "mask: {} cells given, this model's grid has {rows}x{cols}",
            bits.len()
        )));
    }
    Ok(bits)
}

/// Which calibrated threshold decides a match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatingPoint {
    /// The 10-fold accuracy-maximising threshold.
    Best,
    /// The threshold accepting 1% of different-person pairs.
    Far1e2,
    /// The threshold accepting 0.1% of different-person pairs.
    Far1e3,
}

impl OperatingPoint {
    pub const ALL: [OperatingPoint; 3] = [OperatingPoint::Best, OperatingPoint::Far1e2, OperatingPoint::Far1e3];

    pub fn as_str(self) -> &'static str {
        match self {
            OperatingPoint::Best => "best",
            OperatingPoint::Far1e2 => "far1e-2",
            OperatingPoint::Far1e3 => "far1e-3",
        }
    }

    /// From a false-accept rate given on the command line (1e-2 or 1e-3).
    pub fn from_far(f: f64) -> Result<OperatingPoint> {
        if (f - 1e-2).abs() < 1e-12 {
            Ok(OperatingPoint::Far1e2)
        } else if (f - 1e-3).abs() < 1e-12 {
            Ok(OperatingPoint::Far1e3)
        } else {
            Err(Error::Input(format!(
                "false-accept rate {f}: calibrated operating points are 1e-2 and 1e-3"
            )))
        }
    }
}

impl std::str::FromStr for OperatingPoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        OperatingPoint::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| Error::Input(format!("operating point '{s}' is not one of best, far1e-2, far1e-3")))
    }
}

/// A model's calibrated operating points (from `facepatch eval --calibrate`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    pub model: String,
    /// Where the numbers come from (e.g. LFW View 2, 10 folds).
    pub source: String,
    /// The 10-fold accuracy-maximising threshold (mean over folds): `verify`'s default.
    pub threshold: f32,
    pub threshold_at_far_1e2: f32,
    pub threshold_at_far_1e3: f32,
    /// Sorted scores of the different-person pairs, to tell the false-accept rate of any threshold.
    pub negative_scores: Vec<f32>,
    pub positive_scores: Vec<f32>,
}

impl Calibration {
    /// Fraction of different-person pairs scoring above `t`.
    pub fn far(&self, t: f32) -> f64 {
        let above = self.negative_scores.iter().filter(|&&s| s > t).count();
        above as f64 / self.negative_scores.len().max(1) as f64
    }
    /// The threshold of an operating point and the false-accept rate it means.
    pub fn operating_point(&self, op: OperatingPoint) -> (f32, f64) {
        let t = match op {
            OperatingPoint::Best => self.threshold,
            OperatingPoint::Far1e2 => self.threshold_at_far_1e2,
            OperatingPoint::Far1e3 => self.threshold_at_far_1e3,
        };
        (t, self.far(t))
    }
    /// Fraction of same-person pairs scoring above `t`.
    pub fn tar(&self, t: f32) -> f64 {
        let above = self.positive_scores.iter().filter(|&&s| s > t).count();
        above as f64 / self.positive_scores.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(seed: u32, rows: usize, cols: usize, dim: usize) -> Grid {
        let mut x = seed;
        let cells = (0..rows * cols * dim)
            .map(|_| {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                (x >> 8) as f32 / (1u32 << 24) as f32 - 0.3
            })
            .collect();
        Grid { rows, cols, dim, cells }
    }

    #[test]
    fn contributions_sum_to_the_score_with_and_without_masks() {
        let (a, b) = (grid(1, 7, 5, 9), grid(2, 7, 5, 9));
        let c = compare(&a, &b, None).unwrap();
        let pa = pooled(&a, None);
        let pb = pooled(&b, None);
        let cos: f32 = pa.iter().zip(&pb).map(|(x, y)| x * y).sum();
        assert!((c.score - cos).abs() < 1e-6);
        assert!((c.a.iter().sum::<f32>() - c.score).abs() < 1e-5);
        assert!((c.b.iter().sum::<f32>() - c.score).abs() < 1e-5);
        let keep: Vec<bool> = (0..35).map(|i| i % 3 != 0).collect();
        let m = compare(&a, &b, Some(&keep)).unwrap();
        assert_ne!(m.score, c.score);
        assert!((m.a.iter().sum::<f32>() - m.score).abs() < 1e-5);
        assert!((m.b.iter().sum::<f32>() - m.score).abs() < 1e-5);
        assert!(m.a.iter().zip(&keep).all(|(v, k)| *k || *v == 0.0));
        let pm: f32 = pooled(&a, Some(&keep))
            .iter()
            .zip(pooled(&b, Some(&keep)))
            .map(|(x, y)| x * y)
            .sum();
        assert!((m.score - pm).abs() < 1e-6);
    }

    #[test]
    fn masks_parse_and_errors_are_specific() {
        assert_eq!(parse_mask("10\n01\n", 2, 2).unwrap(), vec![true, false, false, true]);
        assert_eq!(parse_mask("[1,1,0,1]", 2, 2).unwrap(), vec![true, true, false, true]);
        assert!(parse_mask("101", 2, 2)
            .unwrap_err()
            .to_string()
            .contains("3 cells given"));
        assert!(parse_mask("1x01", 2, 2).unwrap_err().to_string().contains("'x'"));
        let (a, b) = (grid(1, 2, 2, 3), grid(2, 2, 2, 3));
        assert!(compare(&a, &b, Some(&[false; 4]))
            .unwrap_err()
            .to_string()
            .contains("every cell"));
        assert!(compare(&a, &grid(3, 2, 3, 3), None)
            .unwrap_err()
            .to_string()
            .contains("different models"));
    }
}
