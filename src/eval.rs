//! The verification protocol: pair lists (LFW `pairs.txt` or a TSV), 10-fold accuracy with the
//! threshold chosen on the other 9 folds, and true-accept rates at fixed false-accept rates.

use crate::error::{Error, Result};

/// One pair of images, paths relative to the data root.
#[derive(Clone, Debug, PartialEq)]
pub struct Pair {
    pub fold: usize,
    pub a: String,
    pub b: String,
    pub same: bool,
}

pub const FOLDS: usize = 10;

/// Parses LFW's `pairs.txt` (header `10<TAB>300`, then per fold 300 matched and 300 mismatched
/// lines) or a TSV of `fold<TAB>pathA<TAB>pathB<TAB>same`.
pub fn parse_pairs(text: &str) -> Result<Vec<Pair>> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let first = lines
        .next()
        .ok_or_else(|| Error::Input("the pair list is empty".into()))?;
    let head: Vec<&str> = first.1.split_whitespace().collect();
    let bad = |n: usize, why: &str| Error::Input(format!("pair list line {}: {why}", n + 1));
    if head.len() == 2 && head.iter().all(|t| t.parse::<usize>().is_ok()) {
        let folds: usize = head[0].parse().unwrap_or(0);
        let per: usize = head[1].parse().unwrap_or(0);
        if folds == 0 || per == 0 || folds.checked_mul(2 * per).is_none_or(|n| n > 10_000_000) {
            return Err(bad(
                first.0,
                "the header must be '<folds> <pairs per class>', both positive",
            ));
        }
        let lfw = |name: &str, i: &str, n: usize| -> Result<String> {
            let i: usize = i.parse().map_err(|_| bad(n, "image number is not an integer"))?;
            Ok(format!("{name}/{name}_{i:04}.jpg"))
        };
        let mut pairs = Vec::new();
        for (k, (n, line)) in lines.enumerate() {
            let t: Vec<&str> = line.split('\t').map(str::trim).collect();
            let fold = k / (2 * per);
            let (a, b, same) = match t.len() {
                3 => (lfw(t[0], t[1], n)?, lfw(t[0], t[2], n)?, true),
                4 => (lfw(t[0], t[1], n)?, lfw(t[2], t[3], n)?, false),
                _ => {
                    return Err(bad(
                        n,
                        "expected 3 (same person) or 4 (different people) tab-separated fields",
                    ))
                }
            };
            if same != (k % (2 * per) < per) {
                return Err(bad(
                    n,
                    "LFW folds list their matched pairs first, then the mismatched ones",
                ));
            }
            pairs.push(Pair { fold, a, b, same });
        }
        if pairs.len() != folds * 2 * per {
            return Err(Error::Input(format!(
                "pairs.txt promises {} pairs, has {}",
                folds * 2 * per,
                pairs.len()
            )));
        }
        return Ok(pairs);
    }
    let mut pairs = Vec::new();
    for (n, line) in std::iter::once(first).chain(lines) {
        let t: Vec<&str> = line.split('\t').collect();
        if t.len() != 4 {
            return Err(bad(n, "expected fold<TAB>pathA<TAB>pathB<TAB>same"));
        }
        let fold: usize = t[0].trim().parse().map_err(|_| bad(n, "fold is not a number"))?;
        if fold >= FOLDS {
            return Err(bad(n, "fold must be 0-9"));
        }
        let same = match t[3].trim() {
            "1" => true,
            "0" => false,
            _ => return Err(bad(n, "same must be 1 or 0")),
        };
        pairs.push(Pair {
            fold,
            a: t[1].to_string(),
            b: t[2].to_string(),
            same,
        });
    }
    Ok(pairs)
}

/// The threshold maximising accuracy on these (score, same) pairs: a pair matches when score > t.
pub fn best_threshold(scored: &[(f32, bool)]) -> f32 {
    let mut s: Vec<(f32, bool)> = scored.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = s.iter().filter(|p| p.1).count();
    // Threshold below everything: all pairs accepted.
    let (mut correct, mut best, mut best_t) = (positives, positives, s.first().map_or(0.0, |p| p.0 - 1e-3));
    for i in 0..s.len() {
        // Raising t past s[i] rejects pair i.
        if s[i].1 {
            correct -= 1;
        } else {
            correct += 1;
        }
        if i + 1 < s.len() && s[i + 1].0 == s[i].0 {
            continue;
        }
        if correct > best {
            best = correct;
            best_t = if i + 1 < s.len() {
                (s[i].0 + s[i + 1].0) / 2.0
            } else {
                s[i].0 + 1e-3
            };
        }
    }
    best_t
}

pub fn accuracy(scored: &[(f32, bool)], t: f32) -> f64 {
    let ok = scored.iter().filter(|(s, same)| (*s > t) == *same).count();
    ok as f64 / scored.len().max(1) as f64
}

/// The smallest threshold whose false-accept rate is at most `far`, and the true-accept rate there.
pub fn tar_at_far(scored: &[(f32, bool)], far: f64) -> (f32, f64) {
    let mut neg: Vec<f32> = scored.iter().filter(|p| !p.1).map(|p| p.0).collect();
    neg.sort_by(|a, b| b.total_cmp(a));
    let allowed = (far * neg.len() as f64).floor() as usize;
    // Accept above the (allowed+1)-th highest negative score.
    let t = neg.get(allowed).copied().unwrap_or(f32::NEG_INFINITY);
    let pos: Vec<f32> = scored.iter().filter(|p| p.1).map(|p| p.0).collect();
    let tar = pos.iter().filter(|&&s| s > t).count() as f64 / pos.len().max(1) as f64;
    (t, tar)
}

/// 10-fold results.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub accuracy: f64,
    pub std: f64,
    /// The mean of the 10 thresholds chosen on 9 folds each.
    pub threshold: f32,
    pub tar_at_far_1e2: f64,
    pub threshold_at_far_1e2: f32,
    pub tar_at_far_1e3: f64,
    pub threshold_at_far_1e3: f32,
}

pub fn ten_fold(pairs: &[Pair], scores: &[f32]) -> Result<Report> {
    if pairs.len() != scores.len() || pairs.is_empty() {
        return Err(Error::Input("pairs and scores differ in number, or are empty".into()));
    }
    let mut accs = Vec::new();
    let mut thresholds = Vec::new();
    for fold in 0..FOLDS {
        let train: Vec<(f32, bool)> = pairs
            .iter()
            .zip(scores)
            .filter(|(p, _)| p.fold != fold)
            .map(|(p, &s)| (s, p.same))
            .collect();
        let test: Vec<(f32, bool)> = pairs
            .iter()
            .zip(scores)
            .filter(|(p, _)| p.fold == fold)
            .map(|(p, &s)| (s, p.same))
            .collect();
        if test.is_empty() {
            return Err(Error::Input(format!(
                "fold {fold} has no pairs; 10-fold evaluation needs all ten"
            )));
        }
        let t = best_threshold(&train);
        thresholds.push(t);
        accs.push(accuracy(&test, t));
    }
    let mean = accs.iter().sum::<f64>() / FOLDS as f64;
    let std = (accs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / FOLDS as f64).sqrt();
    let all: Vec<(f32, bool)> = pairs.iter().zip(scores).map(|(p, &s)| (s, p.same)).collect();
    let (t2, tar2) = tar_at_far(&all, 1e-2);
    let (t3, tar3) = tar_at_far(&all, 1e-3);
    Ok(Report {
        accuracy: mean,
        std,
        threshold: thresholds.iter().sum::<f32>() / FOLDS as f32,
        tar_at_far_1e2: tar2,
        threshold_at_far_1e2: t2,
        tar_at_far_1e3: tar3,
        threshold_at_far_1e3: t3,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lfw_and_tsv_pair_lists() {
        let lfw = "1\t2\nA\t1\t2\nB\t3\t4\nA\t1\tC\t2\nB\t2\tD\t1\n";
        let p = parse_pairs(lfw).unwrap();
        assert_eq!(p.len(), 4);
        assert_eq!(
            p[0],
            Pair {
                fold: 0,
                a: "A/A_0001.jpg".into(),
                b: "A/A_0002.jpg".into(),
                same: true
            }
        );
        assert_eq!(p[3].b, "D/D_0001.jpg");
        assert!(!p[3].same);
        let tsv = "0\tx/a.jpg\tx/b.jpg\t1\n9\ty.jpg\tz.jpg\t0\n";
        let p = parse_pairs(tsv).unwrap();
        assert_eq!(
            p[1],
            Pair {
                fold: 9,
                a: "y.jpg".into(),
                b: "z.jpg".into(),
                same: false
            }
        );
        assert!(parse_pairs("0\ta\tb\t2\n")
            .unwrap_err()
            .to_string()
            .contains("same must be 1 or 0"));
        assert!(parse_pairs("1\t2\nA\t1\t2\n")
            .unwrap_err()
            .to_string()
            .contains("promises 4 pairs"));
    }

    #[test]
    fn threshold_and_rates() {
        let s = [
            (0.9, true),
            (0.8, true),
            (0.7, false),
            (0.6, true),
            (0.2, false),
            (0.1, false),
        ];
        let t = best_threshold(&s);
        assert!(t > 0.2 && t < 0.6, "{t}");
        assert!((accuracy(&s, t) - 5.0 / 6.0).abs() < 1e-9);
        let (t, tar) = tar_at_far(&s, 0.0);
        assert_eq!(t, 0.7);
        assert!((tar - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn ten_folds_of_perfectly_separated_scores() {
        let pairs: Vec<Pair> = (0..200)
            .map(|i| Pair {
                fold: i % 10,
                a: String::new(),
                b: String::new(),
                same: i % 2 == 0,
            })
            .collect();
        let scores: Vec<f32> = (0..200)
            .map(|i| if i % 2 == 0 { 0.8 } else { 0.1 } + (i as f32) * 1e-4)
            .collect();
        let r = ten_fold(&pairs, &scores).unwrap();
        assert_eq!(r.accuracy, 1.0);
        assert_eq!(r.std, 0.0);
        assert_eq!(r.tar_at_far_1e3, 1.0);
    }
}

/// What `facepatch eval` prints.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EvalReport {
    pub model: String,
    pub device: String,
    pub flip: bool,
    pub pairs: usize,
    pub images: usize,
    pub no_face: usize,
    /// Images where no face was found (their pairs score -1: a reject).
    pub no_face_images: Vec<String>,
    pub accuracy: f64,
    pub std: f64,
    pub threshold: f32,
    #[serde(rename = "tar_at_far_1e-2")]
    pub tar_at_far_1e2: f64,
    #[serde(rename = "threshold_at_far_1e-2")]
    pub threshold_at_far_1e2: f32,
    #[serde(rename = "tar_at_far_1e-3")]
    pub tar_at_far_1e3: f64,
    #[serde(rename = "threshold_at_far_1e-3")]
    pub threshold_at_far_1e3: f32,
    pub seconds: f64,
    /// Every pair's (score, same person), for calibration.
    #[serde(skip)]
    pub scored: Vec<(f32, bool)>,
}

impl EvalReport {
    /// The operating points this evaluation implies, for `verify` (see `verify::Calibration`).
    pub fn calibration(&self, source: &str) -> crate::verify::Calibration {
        let mut neg: Vec<f32> = self.scored.iter().filter(|p| !p.1).map(|p| p.0).collect();
        let mut pos: Vec<f32> = self.scored.iter().filter(|p| p.1).map(|p| p.0).collect();
        neg.sort_by(f32::total_cmp);
        pos.sort_by(f32::total_cmp);
        crate::verify::Calibration {
            model: self.model.clone(),
            source: source.to_string(),
            threshold: self.threshold,
            threshold_at_far_1e2: self.threshold_at_far_1e2,
            threshold_at_far_1e3: self.threshold_at_far_1e3,
            negative_scores: neg,
            positive_scores: pos,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} ({}{}): {} pairs, {} images, {} without a face\n  accuracy {:.2}% +- {:.2} (10-fold), threshold {:.4}\n  TAR {:.2}% at FAR 1e-2, {:.2}% at FAR 1e-3\n  {:.0} s",
            self.model,
            self.device,
            if self.flip { ", flip" } else { "" },
            self.pairs,
            self.images,
            self.no_face,
            self.accuracy * 100.0,
            self.std * 100.0,
            self.threshold,
            self.tar_at_far_1e2 * 100.0,
            self.tar_at_far_1e3 * 100.0,
            self.seconds
        )
    }
}

/// Runs the whole pipeline on every image of the pair list and scores the pairs.
/// On the CPU path one worker runs per core; progress goes to stderr.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::too_many_arguments)]
pub async fn run(
    name: &str,
    graph: &str,
    weights: &[u8],
    pair_list: &str,
    root: &str,
    flip: bool,
    device: crate::engine::Device,
    detect: crate::face::DetectOptions,
) -> Result<EvalReport> {
    use crate::engine::{Device, GpuContext};
    use crate::pipeline::Pipeline;
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    let start = std::time::Instant::now();
    let pairs = parse_pairs(pair_list)?;
    let images: Vec<String> = pairs
        .iter()
        .flat_map(|p| [p.a.clone(), p.b.clone()])
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let gpu = match device {
        Device::Gpu => Some(GpuContext::new().await?),
        Device::Cpu => None,
    };
    let workers = match device {
        Device::Gpu => 1,
        Device::Cpu => std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(images.len().max(1)),
    };
    let done = AtomicUsize::new(0);
    let embeddings: Mutex<Vec<Option<Vec<f32>>>> = Mutex::new(vec![None; images.len()]);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for w in 0..workers {
            let (images, done, embeddings, first_error, gpu) = (&images, &done, &embeddings, &first_error, gpu.clone());
            scope.spawn(move || {
                let work = || -> Result<()> {
                    let pipe = Pipeline::with_files(name, graph, weights, gpu, detect)?;
                    for i in (w..images.len()).step_by(workers) {
                        if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                            return Ok(());
                        }
                        let path = std::path::Path::new(root).join(&images[i]);
                        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
                            path: path.display().to_string(),
                            source,
                        })?;
                        let img = crate::face::decode_image(&bytes)
                            .map_err(|e| Error::Image(format!("{}: {e}", path.display())))?;
                        let a = pollster::block_on(pipe.analyze(&img, None, flip))?;
                        embeddings.lock().expect("no worker panics")[i] = a.map(|a| a.embedding);
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n % 250 == 0 || n == images.len() {
                            let t = start.elapsed().as_secs_f64();
                            eprintln!(
                                "eval: {n}/{} images, {:.0} s, about {:.0} s left",
                                images.len(),
                                t,
                                t / n as f64 * (images.len() - n) as f64
                            );
                        }
                    }
                    Ok(())
                };
                if let Err(e) = work() {
                    let mut slot = first_error.lock().expect("no worker panics");
                    slot.get_or_insert(e);
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("no worker panics") {
        return Err(e);
    }
    let embeddings = embeddings.into_inner().expect("no worker panics");
    let index = |p: &str| images.binary_search_by(|x| x.as_str().cmp(p)).expect("listed");
    let scores: Vec<f32> = pairs
        .iter()
        .map(|p| match (&embeddings[index(&p.a)], &embeddings[index(&p.b)]) {
            (Some(a), Some(b)) => crate::embed::cosine(a, b),
            _ => -1.0,
        })
        .collect();
    let r = ten_fold(&pairs, &scores)?;
    let no_face_images: Vec<String> = images
        .iter()
        .zip(&embeddings)
        .filter(|(_, e)| e.is_none())
        .map(|(p, _)| p.clone())
        .collect();
    Ok(EvalReport {
        model: name.to_string(),
        device: device.as_str().to_string(),
        flip,
        pairs: pairs.len(),
        images: images.len(),
        no_face: no_face_images.len(),
        no_face_images,
        accuracy: r.accuracy,
        std: r.std,
        threshold: r.threshold,
        tar_at_far_1e2: r.tar_at_far_1e2,
        threshold_at_far_1e2: r.threshold_at_far_1e2,
        tar_at_far_1e3: r.tar_at_far_1e3,
        threshold_at_far_1e3: r.threshold_at_far_1e3,
        seconds: start.elapsed().as_secs_f64(),
        scored: pairs.iter().zip(&scores).map(|(p, &s)| (s, p.same)).collect(),
    })
}
