//! The part of the store manifest (group attribute `astrobio`) the core needs. The full
//! format is documented in docs/store-format.md; Python writes it, Rust only reads it.

use serde::Deserialize;

use crate::error::{CoreError, CoreResult, Location};
use crate::kernel::{NormStats, ValidRange};

pub const FORMAT: &str = "astrobio.store";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    #[serde(default)]
    pub complete: bool,
    pub sample_shape: [usize; 4],
    pub n_samples: u64,
    pub variables: Vec<Field>,
    #[serde(default)]
    pub params: Vec<Field>,
    pub runs: Vec<Run>,
    pub normalization: Normalization,
}

/// A variable of the cube or a scalar parameter, with its physical valid range.
#[derive(Debug, Clone, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(default)]
    pub valid_range: Option<[Option<f64>; 2]>,
}

impl Field {
    pub fn range(&self) -> ValidRange {
        let [lo, hi] = self.valid_range.unwrap_or([None, None]);
        ValidRange {
            lo: lo.map_or(f32::NEG_INFINITY, |v| v as f32),
            hi: hi.map_or(f32::INFINITY, |v| v as f32),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Run {
    pub id: String,
    pub start: u64,
    pub count: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MeanStd<T> {
    pub mean: T,
    pub std: T,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CubeNormalization {
    pub per_variable: MeanStd<Vec<f64>>,
    pub per_level: MeanStd<Vec<Vec<f64>>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Normalization {
    pub cubes: CubeNormalization,
    #[serde(default)]
    pub params: Option<MeanStd<Vec<f64>>>,
}

/// How cube values are normalized on read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormMode {
    /// One mean/std per variable (the default).
    PerVariable,
    /// One mean/std per (variable, level).
    PerLevel,
    /// Raw physical values.
    None,
}

impl std::str::FromStr for NormMode {
    type Err = CoreError;
    fn from_str(s: &str) -> CoreResult<Self> {
        match s {
            "per_variable" => Ok(NormMode::PerVariable),
            "per_level" => Ok(NormMode::PerLevel),
            "none" => Ok(NormMode::None),
            other => Err(CoreError::InvalidArgument(format!(
                "normalize must be 'per_variable', 'per_level' or 'none', not {other:?}"
            ))),
        }
    }
}

/// At most 2^30 values (4 GiB) in one sample: a decoded sample is allocated per thread.
pub const MAX_SAMPLE_VALUES: u64 = 1 << 30;
/// At most 2^40 samples in one store.
pub const MAX_SAMPLES: u64 = 1 << 40;

fn finite_f32(x: f64) -> bool {
    x.is_finite() && (x as f32).is_finite()
}

fn check_mean_std(key: &str, mean: &[f64], std: &[f64]) -> CoreResult<()> {
    for (i, &m) in mean.iter().enumerate() {
        if !finite_f32(m) {
            return Err(bad_manifest(format!("{key}.mean[{i}] is {m:?}, not a finite float32")));
        }
    }
    for (i, &s) in std.iter().enumerate() {
        let ok = s == 0.0 || (finite_f32(s) && s > 0.0 && ((1.0 / s) as f32).is_finite());
        if !ok {
            return Err(bad_manifest(format!(
                "{key}.std[{i}] is {s:?}; a standard deviation must be finite and >= 0 (0: not scaled)"
            )));
        }
    }
    Ok(())
}

/// The whole numbers the reader sizes things from, checked on the raw JSON so a negative,
/// fractional or huge value is named by its key rather than reported as a type mismatch.
fn check_counts(value: &serde_json::Value) -> CoreResult<()> {
    let whole = |key: String, v: Option<&serde_json::Value>| match v {
        None => Ok(()), // missing: the typed parse names the field
        Some(x) if x.as_u64().is_some() => Ok(()),
        Some(x) => Err(bad_manifest(format!("{key} is {x}, not a whole number >= 0"))),
    };
    whole("n_samples".into(), value.get("n_samples"))?;
    if let Some(shape) = value.get("sample_shape").and_then(|s| s.as_array()) {
        for (i, d) in shape.iter().enumerate() {
            whole(format!("sample_shape[{i}]"), Some(d))?;
        }
    }
    if let Some(runs) = value.get("runs").and_then(|r| r.as_array()) {
        for (i, r) in runs.iter().enumerate() {
            whole(format!("runs[{i}].start"), r.get("start"))?;
            whole(format!("runs[{i}].count"), r.get("count"))?;
        }
    }
    Ok(())
}

fn bad_manifest(reason: String) -> CoreError {
    CoreError::integrity(Location::default(), format!("manifest: {reason}"))
}

impl Manifest {
    /// Parse and check internal consistency (lengths agree, runs tile the samples).
    pub fn from_json(value: &serde_json::Value) -> CoreResult<Self> {
        check_counts(value)?;
        let m: Manifest = serde_json::from_value(value.clone())
            .map_err(|e| bad_manifest(format!("unreadable ({e})")))?;
        if m.format != FORMAT {
            return Err(bad_manifest(format!("format is {:?}, expected {FORMAT:?}", m.format)));
        }
        if m.format_version != FORMAT_VERSION {
            return Err(bad_manifest(format!(
                "format_version {} is not supported (this build reads {FORMAT_VERSION})",
                m.format_version
            )));
        }
        m.check_sizes()?;
        let [v, l, _, _] = m.sample_shape;
        if m.variables.len() != v {
            return Err(bad_manifest(format!(
                "{} variables listed for a sample shape with {v}",
                m.variables.len()
            )));
        }
        let n = &m.normalization.cubes;
        if n.per_variable.mean.len() != v || n.per_variable.std.len() != v {
            return Err(bad_manifest("per-variable statistics do not match the variables".into()));
        }
        let per_level_ok = |t: &Vec<Vec<f64>>| t.len() == v && t.iter().all(|r| r.len() == l);
        if !per_level_ok(&n.per_level.mean) || !per_level_ok(&n.per_level.std) {
            return Err(bad_manifest("per-level statistics do not match the sample shape".into()));
        }
        if let Some(p) = &m.normalization.params {
            if p.mean.len() != m.params.len() || p.std.len() != m.params.len() {
                return Err(bad_manifest("parameter statistics do not match the parameters".into()));
            }
        }
        let mut next = 0u64;
        for (i, run) in m.runs.iter().enumerate() {
            if run.start != next || run.count == 0 {
                return Err(bad_manifest(format!(
                    "run {:?} starts at sample {} with {} samples; runs must tile the samples",
                    run.id, run.start, run.count
                )));
            }
            next = next
                .checked_add(run.count)
                .ok_or_else(|| bad_manifest(format!("runs[{i}].count {} is absurd (the runs overflow)", run.count)))?;
        }
        if next != m.n_samples {
            return Err(bad_manifest(format!(
                "runs cover {next} samples but the store has {}",
                m.n_samples
            )));
        }
        m.check_numbers()?;
        Ok(m)
    }

    /// Sizes before anything is sized from them: every dimension at least 1, a sample of at
    /// most `MAX_SAMPLE_VALUES` values, a store whose byte size fits in 64 bits.
    fn check_sizes(&self) -> CoreResult<()> {
        let values = self.sample_shape.iter().try_fold(1u64, |acc, &d| {
            if d == 0 {
                None
            } else {
                acc.checked_mul(d as u64)
            }
        });
        match values {
            Some(n) if n <= MAX_SAMPLE_VALUES => {}
            _ => {
                return Err(bad_manifest(format!(
                    "sample_shape {:?} is not a sample shape (each size at least 1, at most {MAX_SAMPLE_VALUES} values in all)",
                    self.sample_shape
                )))
            }
        }
        let values = values.unwrap_or(0);
        if self.n_samples > MAX_SAMPLES || self.n_samples.checked_mul(values * 4).is_none() {
            return Err(bad_manifest(format!(
                "n_samples {} is absurd (at most {MAX_SAMPLES} samples)",
                self.n_samples
            )));
        }
        Ok(())
    }

    /// Every number the reader uses, finite and meaningful: valid ranges (finite in float32,
    /// lo <= hi), normalization means (finite in float32) and standard deviations (finite,
    /// >= 0, and when > 0 large enough that 1/std is a finite float32). The error names the key.
    fn check_numbers(&self) -> CoreResult<()> {
        for (what, fields) in [("variables", &self.variables), ("params", &self.params)] {
            for (i, f) in fields.iter().enumerate() {
                let [lo, hi] = f.valid_range.unwrap_or([None, None]);
                for x in [lo, hi].into_iter().flatten() {
                    if !finite_f32(x) {
                        return Err(bad_manifest(format!(
                            "{what}[{i}].valid_range of {:?} holds {x:?}, not a finite float32",
                            f.name
                        )));
                    }
                }
                if let (Some(lo), Some(hi)) = (lo, hi) {
                    if lo > hi {
                        return Err(bad_manifest(format!(
                            "{what}[{i}].valid_range of {:?} is [{lo:?}, {hi:?}]: lo > hi",
                            f.name
                        )));
                    }
                }
            }
        }
        let n = &self.normalization.cubes;
        check_mean_std("normalization.cubes.per_variable", &n.per_variable.mean, &n.per_variable.std)?;
        for (i, (mean, std)) in n.per_level.mean.iter().zip(&n.per_level.std).enumerate() {
            check_mean_std(&format!("normalization.cubes.per_level[{i}]"), mean, std)?;
        }
        if let Some(p) = &self.normalization.params {
            check_mean_std("normalization.params", &p.mean, &p.std)?;
        }
        Ok(())
    }

    /// The run holding a sample (runs are contiguous and sorted).
    pub fn run_of(&self, sample: u64) -> Option<&Run> {
        let i = self.runs.partition_point(|r| r.start + r.count <= sample);
        self.runs.get(i).filter(|r| r.start <= sample)
    }

    /// The cube normalization of `mode` per (variable, level) slab, C order ([V, L]).
    pub fn cube_norm(&self, mode: NormMode) -> NormStats {
        let [v, l, _, _] = self.sample_shape;
        let n = &self.normalization.cubes;
        match mode {
            NormMode::None => NormStats::identity(v * l),
            NormMode::PerLevel => NormStats::from_mean_std(&n.per_level.mean.concat(), &n.per_level.std.concat()),
            NormMode::PerVariable => {
                let expand = |x: &[f64]| x.iter().flat_map(|&a| std::iter::repeat_n(a, l)).collect::<Vec<_>>();
                NormStats::from_mean_std(&expand(&n.per_variable.mean), &expand(&n.per_variable.std))
            }
        }
    }

    /// The parameter normalization of `mode` ([P]): the params' own statistics unless raw
    /// values are asked for (or the store has none).
    pub fn param_norm(&self, mode: NormMode) -> NormStats {
        match (&self.normalization.params, mode) {
            (Some(p), NormMode::PerVariable | NormMode::PerLevel) => NormStats::from_mean_std(&p.mean, &p.std),
            _ => NormStats::identity(self.params.len()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::kernel::Affine;
    use serde_json::json;

    pub(crate) fn manifest_json(v: usize, l: usize, h: usize, w: usize, runs: &[u64]) -> serde_json::Value {
        let mut start = 0;
        let runs: Vec<_> = runs
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let r = json!({"id": format!("run-{i}"), "start": start, "count": c});
                start += c;
                r
            })
            .collect();
        json!({
            "format": FORMAT, "format_version": FORMAT_VERSION, "complete": true,
            "sample_shape": [v, l, h, w], "n_samples": start,
            "variables": (0..v).map(|i| json!({"name": format!("v{i}"), "valid_range": [-1000.0, 1000.0]})).collect::<Vec<_>>(),
            "params": [{"name": "p0", "valid_range": [null, null]}],
            "runs": runs,
            "normalization": {
                "cubes": {
                    "per_variable": {"mean": vec![1.0; v], "std": vec![2.0; v]},
                    "per_level": {"mean": vec![vec![1.0; l]; v], "std": vec![vec![2.0; l]; v]}
                },
                "params": {"mean": [0.0], "std": [1.0]}
            }
        })
    }

    #[test]
    fn runs_locate_samples() {
        let m = Manifest::from_json(&manifest_json(1, 1, 1, 1, &[3, 2, 4])).unwrap();
        let ids: Vec<_> = (0..9).map(|s| m.run_of(s).unwrap().id.clone()).collect();
        assert_eq!(ids, ["run-0", "run-0", "run-0", "run-1", "run-1", "run-2", "run-2", "run-2", "run-2"]);
        assert!(m.run_of(9).is_none());
    }

    #[test]
    fn inconsistent_manifests_are_refused() {
        let mut j = manifest_json(2, 3, 1, 1, &[3]);
        j["n_samples"] = json!(4);
        assert!(Manifest::from_json(&j).unwrap_err().to_string().contains("runs cover 3"));
        let mut j = manifest_json(2, 3, 1, 1, &[3]);
        j["normalization"]["cubes"]["per_level"]["mean"] = json!([[1.0]]);
        assert!(Manifest::from_json(&j).is_err());
        let mut j = manifest_json(2, 3, 1, 1, &[3]);
        j["format_version"] = json!(99);
        assert!(Manifest::from_json(&j).unwrap_err().to_string().contains("not supported"));
        let mut j = manifest_json(2, 3, 1, 1, &[3]);
        j.as_object_mut().unwrap().remove("runs");
        assert!(Manifest::from_json(&j).unwrap_err().to_string().contains("unreadable"));
    }

    #[test]
    fn absurd_or_non_finite_numbers_are_refused_naming_the_key() {
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            ("/sample_shape/1", json!(-3), "sample_shape[1] is -3, not a whole number >= 0"),
            ("/n_samples", json!(2.5), "n_samples is 2.5, not a whole number"),
            ("/runs/0/count", json!(-1), "runs[0].count is -1, not a whole number"),
            ("/runs/0/start", json!(1e30), "runs[0].start is 1e+30, not a whole number"),
            ("/sample_shape", json!([2, 0, 1, 1]), "sample_shape [2, 0, 1, 1] is not a sample shape"),
            ("/sample_shape", json!([2, 3, 1 << 20, 1 << 20]), "is not a sample shape"),
            ("/n_samples", json!(u64::MAX), "n_samples 18446744073709551615 is absurd"),
            ("/runs/0/count", json!(u64::MAX), "runs cover 18446744073709551615 samples"),
            ("/variables/1/valid_range", json!([5.0, -5.0]), "variables[1].valid_range of \"v1\" is [5.0, -5.0]: lo > hi"),
            ("/variables/0/valid_range", json!([null, 1e300]), "variables[0].valid_range of \"v0\" holds 1e300"),
            ("/params/0/valid_range", json!([1.0, 0.0]), "params[0].valid_range"),
            ("/normalization/cubes/per_variable/std", json!([1.0, -2.0]), "normalization.cubes.per_variable.std[1] is -2.0;"),
            ("/normalization/cubes/per_variable/std", json!([1e-300, 1.0]), "per_variable.std[0] is 1e-300"),
            ("/normalization/cubes/per_variable/mean", json!([1e39, 1.0]), "per_variable.mean[0] is 1e39"),
            ("/normalization/cubes/per_level/std", json!([[1.0, 1.0, 1.0], [1.0, -1.0, 1.0]]), "per_level[1].std[1] is -1.0;"),
            ("/normalization/params/std", json!([-1.0]), "normalization.params.std[0] is -1.0;"),
        ];
        for (pointer, value, message) in cases {
            let mut j = manifest_json(2, 3, 1, 1, &[3]);
            *j.pointer_mut(pointer).unwrap() = value;
            let err = Manifest::from_json(&j).unwrap_err().to_string();
            assert!(err.contains(message), "{pointer}: {err}");
            assert!(err.starts_with("manifest: "), "{err}");
        }
        // zero spread is allowed (centred, not scaled); a constant unbounded range too
        let mut j = manifest_json(2, 3, 1, 1, &[3]);
        j["normalization"]["cubes"]["per_variable"]["std"] = json!([0.0, 1.0]);
        j["variables"][0]["valid_range"] = json!([1.0, 1.0]);
        Manifest::from_json(&j).unwrap();
        // NaN cannot be written in JSON; Python's json writes it as a bare NaN token, which does
        // not parse (an "unreadable" manifest).
        assert!(serde_json::from_str::<serde_json::Value>("[NaN]").is_err());
    }

    #[test]
    fn per_variable_affine_expands_over_levels() {
        let mut j = manifest_json(2, 3, 1, 1, &[1]);
        j["normalization"]["cubes"]["per_variable"] = json!({"mean": [1.0, 5.0], "std": [2.0, 4.0]});
        let m = Manifest::from_json(&j).unwrap();
        let n = m.cube_norm(NormMode::PerVariable);
        assert_eq!(n.mean, vec![1.0, 1.0, 1.0, 5.0, 5.0, 5.0]);
        assert_eq!(n.scale, vec![2.0, 2.0, 2.0, 4.0, 4.0, 4.0]);
        let a = Affine::from(&n);
        assert_eq!(a.shift, vec![1.0, 1.0, 1.0, 5.0, 5.0, 5.0]);
        assert_eq!(a.scale, vec![0.5, 0.5, 0.5, 0.25, 0.25, 0.25]);
        assert_eq!(m.cube_norm(NormMode::None), NormStats::identity(6));
        assert_eq!(Affine::from(&m.cube_norm(NormMode::None)), Affine::identity(6));
    }

    #[test]
    fn zero_std_is_scale_one_in_every_mode_and_params_follow_the_mode() {
        let mut j = manifest_json(2, 2, 1, 1, &[1]);
        j["normalization"]["cubes"]["per_variable"] = json!({"mean": [1.0, 5.0], "std": [0.0, 4.0]});
        j["normalization"]["cubes"]["per_level"] = json!({"mean": [[1.0, 2.0], [5.0, 6.0]], "std": [[3.0, 0.0], [4.0, 4.0]]});
        j["normalization"]["params"] = json!({"mean": [7.0], "std": [0.0]});
        let m = Manifest::from_json(&j).unwrap();
        assert_eq!(m.cube_norm(NormMode::PerVariable).scale, vec![1.0, 1.0, 4.0, 4.0]);
        let per_level = m.cube_norm(NormMode::PerLevel);
        assert_eq!((per_level.mean, per_level.scale), (vec![1.0, 2.0, 5.0, 6.0], vec![3.0, 1.0, 4.0, 4.0]));
        assert_eq!(m.param_norm(NormMode::PerLevel), NormStats { mean: vec![7.0], scale: vec![1.0] });
        assert_eq!(m.param_norm(NormMode::None), NormStats::identity(1));
    }
}
