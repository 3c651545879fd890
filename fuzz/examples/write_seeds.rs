//! Writes the plan-bytes and graph-bytes seeds of today's formats into the corpus folder given
//! as the argument (`cargo xtask fuzz` runs it before libFuzzer).

fn main() {
    let corpus = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: write_seeds CORPUS_DIR"));
    for (target, name, bytes) in
        [("plan_bytes", "small-cnn.plan", mote_fuzz::plan_seed()), ("graph_bytes", "small-cnn.graph", mote_fuzz::graph_seed())]
    {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus folder");
        std::fs::write(dir.join(name), bytes).expect("seed");
    }
}
