//! Reads a model spec from TOML: the layer list, the loss and the `[train]` defaults. Every
//! problem names the file, the layer (index and name) and what was expected.

use mote_core::model::{Layer, Loss, ModelSpec, Name, OpInfo, Setting, SettingKind, SettingValue, LAYER_OPS};
use mote_core::Init;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// A spec file problem.
#[derive(Debug)]
pub struct SpecFileError {
    pub path: PathBuf,
    /// Index and name of the layer, when the problem is in one.
    pub layer: Option<(usize, String)>,
    pub message: String,
}

impl fmt::Display for SpecFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path.display())?;
        if let Some((i, name)) = &self.layer {
            write!(f, "layer {i} ({name}): ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for SpecFileError {}

/// Optimizer choice of `[train]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OptimizerKind {
    Sgd,
    Momentum,
    Nesterov,
    Adam,
    AdamW,
}

/// Learning-rate schedule of `[train]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// Cosine decay from `lr` to 0 over the whole run.
    Cosine,
}

/// Training defaults (`[train]`), overridden by CLI flags.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub optimizer: OptimizerKind,
    pub lr: f32,
    pub momentum: f32,
    pub betas: (f32, f32),
    pub weight_decay: f32,
    pub batch: usize,
    pub epochs: usize,
    pub seed: u64,
    pub init: Init,
    pub schedule: Schedule,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            optimizer: OptimizerKind::Adam,
            lr: 1e-3,
            momentum: 0.9,
            betas: (0.9, 0.999),
            weight_decay: 0.0,
            batch: 64,
            epochs: 10,
            seed: 0,
            init: Init::KaimingUniform,
            schedule: Schedule::Constant,
        }
    }
}

impl TrainConfig {
    /// The core optimizer for these settings.
    pub fn optimizer(&self) -> mote_core::Optimizer {
        use mote_core::Optimizer as O;
        let base = match self.optimizer {
            OptimizerKind::Sgd => O::sgd(self.lr),
            OptimizerKind::Momentum => O::momentum(self.lr, self.momentum),
            OptimizerKind::Nesterov => O::nesterov(self.lr, self.momentum),
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let mut o = if self.optimizer == OptimizerKind::Adam { O::adam(self.lr) } else { O::adamw(self.lr, 0.0) };
                if let O::Adam(p) = &mut o {
                    (p.beta1, p.beta2) = self.betas;
                }
                o
            }
        };
        base.with_weight_decay(self.weight_decay)
    }
}

/// A command-line count: a whole number ≥ 1 (clap value parser of `mote` and `cargo xtask`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number ≥ 1")),
    }
}

/// A command-line learning rate: a number, finite and > 0.
pub fn learning_rate(s: &str) -> Result<f32, String> {
    let lr: f32 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    check_lr(lr)?;
    Ok(lr)
}

/// A learning rate: finite and > 0.
pub fn check_lr(lr: f32) -> Result<(), String> {
    in_range(lr, lr > 0.0, "finite and > 0")
}

/// A momentum (or a beta of Adam): in [0, 1).
pub fn check_unit(x: f32) -> Result<(), String> {
    in_range(x, (0.0..1.0).contains(&x), "in [0, 1)")
}

/// A weight decay: finite and ≥ 0.
pub fn check_weight_decay(x: f32) -> Result<(), String> {
    in_range(x, x >= 0.0, "finite and ≥ 0")
}

fn in_range(x: f32, ok: bool, expected: &str) -> Result<(), String> {
    if x.is_finite() && ok {
        Ok(())
    } else {
        Err(format!("must be {expected}, got {x}"))
    }
}

/// Parses an optimizer name.
pub fn parse_optimizer(s: &str) -> Result<OptimizerKind, String> {
    Ok(match s {
        "sgd" => OptimizerKind::Sgd,
        "momentum" => OptimizerKind::Momentum,
        "nesterov" => OptimizerKind::Nesterov,
        "adam" => OptimizerKind::Adam,
        "adamw" => OptimizerKind::AdamW,
        _ => return Err(format!("unknown optimizer `{s}`: expected sgd, momentum, nesterov, adam or adamw")),
    })
}

/// A parsed spec file.
#[derive(Clone, Debug)]
pub struct SpecFile {
    pub spec: ModelSpec,
    pub train: TrainConfig,
}

/// Reads and checks `path`.
pub fn read_spec_file(path: &Path) -> Result<SpecFile, SpecFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecFileError {
        path: path.into(),
        layer: None,
        message: format!("cannot read: {e}"),
    })?;
    parse_spec(&text).map_err(|(layer, message)| SpecFileError { path: path.into(), layer, message })
}

type ParseResult<T> = Result<T, (Option<(usize, String)>, String)>;

/// Parses spec text; errors carry the layer (index, name) they belong to.
pub fn parse_spec(text: &str) -> ParseResult<SpecFile> {
    let table: Table = text.parse().map_err(|e: toml::de::Error| (None, format!("invalid TOML: {}", e.message())))?;
    let top = Keys::new(&table, "the top level", &["name", "input", "layer", "loss", "train"]).map_err(|m| (None, m))?;
    let spec = (|| -> Result<_, String> {
        let name = top.str("name")?.unwrap_or("model");
        let name = heapless::String::try_from(name).map_err(|_| "`name` is longer than 32 bytes".to_string())?;
        let input = top.int_list("input")?.ok_or("missing `input` (one sample's shape, e.g. [1, 28, 28])")?;
        if input.is_empty() || input.len() > 3 || input.contains(&0) {
            return Err(format!("`input` must have 1 to 3 non-zero dimensions, got {input:?}"));
        }
        let loss = match table.get("loss") {
            None => Loss::CrossEntropy,
            Some(Value::Table(t)) => {
                let k = Keys::new(t, "[loss]", &["op"])?;
                match k.str("op")? {
                    Some("cross_entropy") | None => Loss::CrossEntropy,
                    Some("mse") => Loss::Mse,
                    Some(other) => return Err(format!("[loss]: unknown loss `{other}`: expected cross_entropy or mse")),
                }
            }
            Some(_) => return Err("`loss` must be a table: [loss] op = \"cross_entropy\"".into()),
        };
        Ok((name, input.iter().map(|&d| d as u32).collect::<heapless::Vec<u32, 3>>(), loss))
    })()
    .map_err(|m| (None, m))?;
    let (name, input, loss) = spec;
    let layers = match table.get("layer") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err((None, "`layer` must be an array of tables ([[layer]])".into())),
        None => return Err((None, "no layers: add [[layer]] tables".into())),
    };
    let mut spec = ModelSpec { name, input, layers: heapless::Vec::new(), loss };
    for (i, value) in layers.iter().enumerate() {
        let layer = parse_layer(i, value)?;
        let name = layer.name.to_string();
        if name == "input" {
            return Err((Some((i, name)), "`input` names the model's input: give the layer another name".into()));
        }
        if let Some(first) = spec.layers.iter().position(|l| l.name == layer.name) {
            return Err((Some((i, name)), format!("the name is already layer {first}'s: layer names must be distinct")));
        }
        spec.layers.push(layer).map_err(|_| (Some((i, name)), format!("too many layers (at most {})", mote_core::model::MAX_LAYERS)))?;
    }
    let train = match table.get("train") {
        None => TrainConfig::default(),
        Some(Value::Table(t)) => parse_train(t).map_err(|m| (None, format!("[train]: {m}")))?,
        Some(_) => return Err((None, "`train` must be a table".into())),
    };
    Ok(SpecFile { spec, train })
}

/// Keys of one TOML table, with the ones allowed there.
struct Keys<'a> {
    table: &'a Table,
}

impl<'a> Keys<'a> {
    fn new(table: &'a Table, place: &str, allowed: &[&str]) -> Result<Self, String> {
        if let Some(k) = table.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(format!("unknown key `{k}` in {place}: expected one of {}", allowed.join(", ")));
        }
        Ok(Keys { table })
    }
    fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(format!("`{key}` must be a string, got {}", v.type_str())),
        }
    }
    fn int(&self, key: &str) -> Result<Option<u64>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Integer(n)) if *n >= 0 && *n <= u32::MAX as i64 => Ok(Some(*n as u64)),
            Some(v) => Err(format!("`{key}` must be a non-negative integer, got {v}")),
        }
    }
    fn float(&self, key: &str) -> Result<Option<f32>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Float(x)) => Ok(Some(*x as f32)),
            Some(Value::Integer(n)) => Ok(Some(*n as f32)),
            Some(v) => Err(format!("`{key}` must be a number, got {v}")),
        }
    }
    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(v) => Err(format!("`{key}` must be true or false, got {v}")),
        }
    }
    fn int_list(&self, key: &str) -> Result<Option<Vec<u64>>, String> {
        match self.table.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::Integer(n) if *n >= 0 && *n <= u32::MAX as i64 => Ok(*n as u64),
                    _ => Err(format!("`{key}` must be a list of non-negative integers, got {v}")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(format!("`{key}` must be a list of integers, got {v}")),
        }
    }
    /// An integer or a pair `[h, w]`.
    fn pair(&self, key: &str) -> Result<Option<[u32; 2]>, String> {
        if let Ok(Some(n)) = self.int(key) {
            return Ok(Some([n as u32; 2]));
        }
        match self.int_list(key) {
            Ok(Some(v)) if v.len() == 2 => Ok(Some([v[0] as u32, v[1] as u32])),
            Ok(None) => Ok(None),
            _ => Err(format!("`{key}` must be an integer or [h, w], got {}", self.table[key])),
        }
    }
    /// A list of one to four integers ≥ 1 (a shape or a permutation).
    fn dims(&self, key: &str) -> Result<Option<[u32; 4]>, String> {
        match self.int_list(key) {
            Ok(Some(v)) if (1..=4).contains(&v.len()) && v.iter().all(|&d| d >= 1) => {
                let mut out = [0; 4];
                out.iter_mut().zip(&v).for_each(|(o, &d)| *o = d as u32);
                Ok(Some(out))
            }
            Ok(None) => Ok(None),
            _ => Err(format!("`{key}` must be a list of 1 to 4 integers ≥ 1, got {}", self.table[key])),
        }
    }
    /// The value a spec gives for `setting`, read as its kind (ranges are the core's check).
    fn setting(&self, setting: &Setting) -> Result<Option<SettingValue>, String> {
        let key = setting.key;
        Ok(match setting.kind {
            SettingKind::Int { .. } => self.int(key)?.map(|n| SettingValue::Int(n as u32)),
            SettingKind::Pair { .. } => self.pair(key)?.map(SettingValue::Pair),
            SettingKind::Bool => self.bool(key)?.map(SettingValue::Bool),
            SettingKind::Real { .. } => self.float(key)?.map(SettingValue::Real),
            SettingKind::Dims => self.dims(key)?.map(SettingValue::Dims),
        })
    }
    fn names(&self, key: &str) -> Result<heapless::Vec<Name, 2>, String> {
        let Some(v) = self.table.get(key) else { return Ok(heapless::Vec::new()) };
        let Value::Array(a) = v else { return Err(format!("`{key}` must be a list of layer names, got {v}")) };
        let mut out = heapless::Vec::new();
        for item in a {
            let Value::String(s) = item else { return Err(format!("`{key}` must be a list of layer names, got {item}")) };
            let name = Name::try_from(s.as_str()).map_err(|_| format!("layer name `{s}` is longer than 24 bytes"))?;
            out.push(name).map_err(|_| format!("`{key}` lists more than 2 layers"))?;
        }
        Ok(out)
    }
}

/// The spec names of every op, for error messages.
fn op_names() -> String {
    LAYER_OPS.iter().map(|op| op.name).collect::<Vec<_>>().join(", ")
}

fn parse_layer(i: usize, value: &Value) -> ParseResult<Layer> {
    let Value::Table(t) = value else { return Err((Some((i, "?".into())), "a layer must be a table".into())) };
    let op = match t.get("op") {
        Some(Value::String(s)) => s.as_str(),
        Some(v) => return Err((Some((i, "?".into())), format!("`op` must be a string, got {v}"))),
        None => return Err((Some((i, "?".into())), format!("missing `op`: expected one of {}", op_names()))),
    };
    let default_name = format!("{op}_{i}");
    let name = match t.get("name") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err((Some((i, default_name)), format!("`name` must be a string, got {v}"))),
        None => default_name,
    };
    let at = |m: String| (Some((i, name.clone())), m);
    let info = OpInfo::by_name(op).ok_or_else(|| at(format!("unknown op `{op}`: expected one of {}", op_names())))?;
    let allowed: Vec<&str> = ["op", "name", "inputs"].into_iter().chain(info.settings.iter().map(|s| s.key)).collect();
    let k = Keys::new(t, &format!("a {op} layer"), &allowed).map_err(at)?;
    let given = info.settings.iter().map(|s| k.setting(s)).collect::<Result<Vec<_>, _>>().map_err(at)?;
    let op_value = info.layer_op(&given).map_err(|e| at(e.to_string()))?;
    let inputs = k.names("inputs").map_err(at)?;
    let name = Name::try_from(name.as_str()).map_err(|_| at("the name is longer than 24 bytes".into()))?;
    Ok(Layer { name, op: op_value, inputs })
}

fn parse_train(t: &Table) -> Result<TrainConfig, String> {
    let allowed = ["optimizer", "lr", "momentum", "betas", "weight_decay", "batch", "epochs", "seed", "init", "schedule"];
    let k = Keys::new(t, "[train]", &allowed)?;
    let mut c = TrainConfig::default();
    if let Some(o) = k.str("optimizer")? {
        c.optimizer = parse_optimizer(o)?;
    }
    let checked = |key: &str, check: fn(f32) -> Result<(), String>, default: f32| -> Result<f32, String> {
        let v = k.float(key)?.unwrap_or(default);
        check(v).map_err(|m| format!("`{key}` {m}"))?;
        Ok(v)
    };
    c.lr = checked("lr", check_lr, c.lr)?;
    c.momentum = checked("momentum", check_unit, c.momentum)?;
    c.weight_decay = checked("weight_decay", check_weight_decay, c.weight_decay)?;
    c.batch = k.int("batch")?.map_or(c.batch, |v| v as usize);
    c.epochs = k.int("epochs")?.map_or(c.epochs, |v| v as usize);
    c.seed = k.int("seed")?.unwrap_or(c.seed);
    if let Some(v) = t.get("betas") {
        let number = |v: &Value| v.as_float().or_else(|| v.as_integer().map(|n| n as f64));
        let betas = match v.as_array().map(|b| b.iter().map(number).collect::<Vec<_>>()) {
            Some(b) if b.len() == 2 && b.iter().all(Option::is_some) => (b[0].unwrap_or(0.0) as f32, b[1].unwrap_or(0.0) as f32),
            _ => return Err(format!("`betas` must be two numbers, e.g. [0.9, 0.999], got {v}")),
        };
        for (i, beta) in [betas.0, betas.1].into_iter().enumerate() {
            check_unit(beta).map_err(|m| format!("`betas` [{i}] {m}"))?;
        }
        c.betas = betas;
    }
    if let Some(init) = k.str("init")? {
        c.init = match init {
            "kaiming_uniform" => Init::KaimingUniform,
            "kaiming_normal" => Init::KaimingNormal,
            "xavier_uniform" => Init::XavierUniform,
            "xavier_normal" => Init::XavierNormal,
            _ => return Err(format!("unknown init `{init}`: expected kaiming_uniform, kaiming_normal, xavier_uniform or xavier_normal")),
        };
    }
    if let Some(s) = k.str("schedule")? {
        c.schedule = match s {
            "constant" => Schedule::Constant,
            "cosine" => Schedule::Cosine,
            _ => return Err(format!("unknown schedule `{s}`: expected constant or cosine")),
        };
    }
    if c.batch == 0 || c.epochs == 0 {
        return Err("`batch` and `epochs` must be ≥ 1".into());
    }
    Ok(c)
}
