//! Writes the plan-bytes, graph-bytes and int8-model seeds of today's formats into the corpus
//! folder given as the argument (`cargo xtask fuzz` runs it before libFuzzer).

fn main() {
    let corpus = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: write_seeds CORPUS_DIR"));
    for (target, name, bytes) in
        [("plan_bytes", "small-cnn.plan", mote_fuzz::plan_seed()), ("graph_bytes", "small-cnn.graph", mote_fuzz::graph_seed())]
    {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        std::fs::write(dir.join(name), bytes).expect("seed");
    }
    // An int8 model file: MLPerf Tiny's keyword spotter converted.
    let kws = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/models/mlperf-tiny/kws_ref_model.tflite");
    if let Ok(model) = std::fs::read(&kws) {
        if let Ok((file, _)) = mote_cli::import::tflite::int8::convert(&model, "kws") {
            let dir = corpus.join("quant_model");
            std::fs::create_dir_all(&dir).expect("corpus folder");
            std::fs::write(dir.join("kws.mote"), file).expect("seed");
        }
    }
}
