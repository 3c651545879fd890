//! The fuzz targets' code on stable, as a short smoke that CI runs (`cargo xtask test`): every
//! seed of `fuzz/seeds/` and of today's plan and graph formats, then thousands of mutations
//! of each (bit flips, truncations, inserted and overwritten bytes, u32::MAX windows). The long
//! runs are `cargo xtask fuzz` (libFuzzer, a million executions per target).

use std::path::Path;

/// xorshift64: deterministic mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len().max(1));
        match rng.below(5) {
            0 if !data.is_empty() => data[at] ^= 1 << rng.below(8),
            1 => data.truncate(at),
            2 => data.insert(at.min(data.len()), rng.next() as u8),
            3 if data.len() >= 4 => {
                let at = at.min(data.len() - 4);
                data[at..at + 4].copy_from_slice(&[0xff; 4]);
            }
            _ if !data.is_empty() => data[at] = rng.next() as u8,
            _ => data.push(rng.next() as u8),
        }
    }
    data
}

/// Runs `target` on each seed and on `mutations` mutations of each.
fn smoke(target: fn(&[u8]), seeds: &[Vec<u8>], mutations: usize) {
    assert!(!seeds.is_empty());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for seed in seeds {
        target(seed);
        for _ in 0..mutations {
            target(&mutate(seed, &mut rng));
        }
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(target);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect()
}

#[test]
fn model_bytes() {
    smoke(mote_fuzz::model_bytes, &seeds("model_bytes"), 30000);
}

#[test]
fn plan_bytes() {
    smoke(mote_fuzz::plan_bytes, &[mote_fuzz::plan_seed()], 30000);
}

#[test]
fn graph_bytes() {
    smoke(mote_fuzz::graph_bytes, &[mote_fuzz::graph_seed()], 30000);
}

#[test]
fn spec_toml() {
    smoke(mote_fuzz::spec_toml, &seeds("spec_toml"), 20000);
}

#[test]
fn idx() {
    smoke(mote_fuzz::idx, &seeds("idx"), 30000);
}

#[test]
fn image() {
    smoke(mote_fuzz::image, &seeds("image"), 10000);
}

#[test]
fn npy() {
    smoke(mote_fuzz::npy, &seeds("npy"), 30000);
}

#[test]
fn onnx() {
    smoke(mote_fuzz::onnx, &seeds("onnx"), 5000);
}

#[test]
fn tflite() {
    smoke(mote_fuzz::tflite, &seeds("tflite"), 5000);
}

/// MLPerf Tiny's int8 `model` (`../shared/models/mlperf-tiny/MODEL.tflite`).
fn mlperf(model: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/mlperf-tiny").join(format!("{model}.tflite"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The int8 runner on MLPerf Tiny's int8 keyword-spotting model (`../shared`) and mutations of
/// it: every structure a mutation breaks is refused, the rest runs.
#[test]
fn tflite_int8() {
    let model = mlperf("kws_ref_model");
    assert!(mote_cli::import::tflite::int8::Int8Model::new(&model).is_ok());
    smoke(mote_fuzz::tflite, &[model], 2000);
}

/// int8 model files: the KWS model converted to one (`mote import`'s conversion), and
/// mutations of it (the target recomputes the CRC so they reach the spec and the data).
#[test]
fn quant_model() {
    let model = mlperf("kws_ref_model");
    let (file, _) = mote_cli::import::tflite::int8::convert(&model, "kws").unwrap();
    assert!(mote_cli::quant::QuantFile::new(&file).is_ok());
    smoke(mote_fuzz::quant_model, &[file], 3000);
}

/// ResNet-8 converted with its residual blocks fused, mutated in its spec only (the steps: the
/// blocks' convolutions, shortcuts and ADDs), each mutation's CRC recomputed by the target.
#[test]
fn quant_model_residual_blocks() {
    let model = mlperf("pretrainedResnet_quant");
    let (file, _) = mote_cli::import::tflite::int8::convert(&model, "resnet").unwrap();
    let loaded = mote_cli::quant::QuantFile::new(&file).unwrap();
    assert!(loaded.model().unwrap().steps().any(|s| matches!(s.layer, mote_core::quant::QLayer::Residual(_))));
    // The spec follows the data section; mutate only there.
    let spec_at = file.len() - mote_core::model::check_quant_model(&file).unwrap().spec_bytes.len();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..200 {
        let mut data = file.clone();
        let at = spec_at + rng.below(file.len() - spec_at);
        data[at] = rng.next() as u8;
        mote_fuzz::quant_model(&data);
    }
}
