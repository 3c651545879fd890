//! `mote`: the host CLI. Inspect a model spec or file, train on IDX data, evaluate, predict.

use lexopt::prelude::*;
use mote_cli::error::{CliError, CliResult};
use mote_cli::{eval, export, inspect, predict, spec_file, train};
use mote_kernels::dispatch::{self, Isa};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage:
  mote inspect SPEC|MODEL [--batch N] [--json]
  mote train SPEC --data DIR --out MODEL [--epochs N] [--batch N] [--lr X] [--optimizer NAME]
             [--seed N] [--limit N] [--json] [--plot FILE.png]
  mote eval MODEL --data DIR [--json] [--plot FILE.png]
  mote predict MODEL IMAGE...
  mote export MODEL [--out FILE]   (default firmware/model/model.mote)
  mote --version
environment: MOTE_KERNELS=auto|reference|avx2 (default auto: AVX2+FMA where the CPU has it)";

fn main() -> ExitCode {
    match select_kernels().and_then(|_| run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mote: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Flags shared by the commands; each command checks the ones it needs.
#[derive(Default)]
struct Flags {
    positional: Vec<PathBuf>,
    data: Option<PathBuf>,
    out: Option<PathBuf>,
    plot: Option<PathBuf>,
    json: bool,
    batch: Option<usize>,
    epochs: Option<usize>,
    lr: Option<f32>,
    optimizer: Option<String>,
    seed: Option<u64>,
    limit: Option<usize>,
}

/// Makes the kernels `MOTE_KERNELS` names (default: the fastest this CPU runs) the active ones.
fn select_kernels() -> CliResult<()> {
    let isa = match std::env::var("MOTE_KERNELS").as_deref() {
        Err(_) | Ok("auto") => Isa::detect(),
        Ok("reference") => Isa::Reference,
        Ok("avx2") => Isa::Avx2Fma,
        Ok(other) => return Err(CliError::Usage(format!("MOTE_KERNELS=`{other}`: expected auto, reference or avx2"))),
    };
    Ok(dispatch::select(isa)?)
}

fn usage_error(e: lexopt::Error) -> CliError {
    CliError::Usage(e.to_string())
}

fn number<T: std::str::FromStr>(parser: &mut lexopt::Parser, flag: &str) -> CliResult<T> {
    let v = parser.value().map_err(usage_error)?;
    let s = v.to_string_lossy().into_owned();
    s.parse().map_err(|_| CliError::Usage(format!("--{flag}: `{s}` is not a valid number")))
}

fn parse(parser: &mut lexopt::Parser) -> CliResult<Flags> {
    let mut f = Flags::default();
    while let Some(arg) = parser.next().map_err(usage_error)? {
        let path = |p: &mut lexopt::Parser| p.value().map(PathBuf::from).map_err(usage_error);
        match arg {
            Long("data") => f.data = Some(path(parser)?),
            Long("out") => f.out = Some(path(parser)?),
            Long("plot") => f.plot = Some(path(parser)?),
            Long("json") => f.json = true,
            Long("batch") => f.batch = Some(number(parser, "batch")?),
            Long("epochs") => f.epochs = Some(number(parser, "epochs")?),
            Long("lr") => f.lr = Some(number(parser, "lr")?),
            Long("seed") => f.seed = Some(number(parser, "seed")?),
            Long("limit") => f.limit = Some(number(parser, "limit")?),
            Long("optimizer") => f.optimizer = Some(parser.value().map_err(usage_error)?.to_string_lossy().into_owned()),
            Value(v) => f.positional.push(PathBuf::from(v)),
            other => return Err(usage_error(other.unexpected())),
        }
    }
    Ok(f)
}

fn need<'a>(v: &'a Option<PathBuf>, what: &str) -> CliResult<&'a PathBuf> {
    v.as_ref().ok_or_else(|| CliError::Usage(format!("missing {what}\n{USAGE}")))
}

fn run() -> CliResult<()> {
    let mut parser = lexopt::Parser::from_env();
    let command = match parser.next().map_err(usage_error)? {
        Some(Value(c)) => c.to_string_lossy().into_owned(),
        Some(Long("version")) | Some(Short('V')) => {
            println!("mote {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        _ => return Err(CliError::Usage(USAGE.into())),
    };
    let f = parse(&mut parser)?;
    let first = f.positional.first().cloned();
    match command.as_str() {
        "inspect" => inspect::run(need(&first, "SPEC or MODEL")?, f.batch.unwrap_or(1), f.json),
        "train" => {
            let spec_path = need(&first, "SPEC")?.clone();
            let optimizer = f.optimizer.as_deref().map(spec_file::parse_optimizer).transpose().map_err(CliError::Usage)?;
            let file = spec_file::read_spec_file(&spec_path)?;
            let mut config = file.train;
            config.epochs = f.epochs.unwrap_or(config.epochs);
            config.batch = f.batch.unwrap_or(config.batch);
            config.lr = f.lr.unwrap_or(config.lr);
            config.seed = f.seed.unwrap_or(config.seed);
            config.optimizer = optimizer.unwrap_or(config.optimizer);
            if config.batch == 0 || config.epochs == 0 {
                return Err(CliError::Usage("--batch and --epochs must be at least 1".into()));
            }
            let args = train::TrainArgs {
                spec_path,
                spec: file.spec,
                data: need(&f.data, "--data DIR")?.clone(),
                out: need(&f.out, "--out MODEL")?.clone(),
                config,
                json: f.json,
                plot: f.plot.clone(),
                limit: f.limit,
            };
            train::run(&args).map(|_| ())
        }
        "eval" => eval::run(need(&first, "MODEL")?, need(&f.data, "--data DIR")?, f.json, f.plot.as_deref()),
        "predict" => {
            if f.positional.len() < 2 {
                return Err(CliError::Usage(format!("predict needs a MODEL and at least one IMAGE\n{USAGE}")));
            }
            predict::run(&f.positional[0], &f.positional[1..])
        }
        "export" => {
            let out = f.out.clone().unwrap_or_else(|| PathBuf::from("firmware/model/model.mote"));
            export::run(need(&first, "MODEL")?, &out)
        }
        other => Err(CliError::Usage(format!("unknown command `{other}`\n{USAGE}"))),
    }
}
