//! What a layer op's settings are: their kinds, allowed ranges and defaults, as the op table
//! declares them. The spec parser, `inspect` and the model-file checks all read them from here.

use core::fmt;

/// The most settings one op has (conv2d_general: out_channels, kernel, stride, pad_begin,
/// pad_end, dilation, groups, bias).
pub const MAX_SETTINGS: usize = 8;

/// A setting's value.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SettingValue {
    Int(u32),
    Pair([u32; 2]),
    Bool(bool),
    Real(f32),
    /// One to four whole numbers, trailing zeros meaning "absent" (a shape or a permutation).
    Dims([u32; 4]),
}

/// The numbers a [`SettingValue::Dims`] holds (the entries before the first 0).
pub fn dims_of(d: &[u32; 4]) -> &[u32] {
    &d[..d.iter().position(|&v| v == 0).unwrap_or(4)]
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SettingValue::Int(n) => write!(f, "{n}"),
            SettingValue::Pair([a, b]) => write!(f, "[{a}, {b}]"),
            SettingValue::Bool(b) => write!(f, "{b}"),
            SettingValue::Real(x) => write!(f, "{x}"),
            SettingValue::Dims(d) => write!(f, "{:?}", dims_of(&d)),
        }
    }
}

/// What values a setting takes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SettingKind {
    /// A whole number ≥ `min`.
    Int {
        min: u32,
    },
    /// Two whole numbers ≥ `min` (`[h, w]`; specs may give one number for both).
    Pair {
        min: u32,
    },
    Bool,
    /// A finite real in `[min, max]`, or `[min, max)` when `max_open`.
    Real {
        min: f32,
        max: f32,
        max_open: bool,
    },
    /// A list of one to four whole numbers, each ≥ 1.
    Dims,
}

/// What a setting is when a spec leaves it out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SettingDefault {
    /// The spec must give it.
    Required,
    Value(SettingValue),
    /// The value of the earlier setting with this key (pooling's stride is its kernel).
    SameAs(&'static str),
}

/// One setting of an op: its key in specs, what it takes, its default, what it means.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub key: &'static str,
    pub kind: SettingKind,
    pub default: SettingDefault,
    pub help: &'static str,
}

impl Setting {
    /// The setting under `key` (the op table names each setting after its field).
    pub const fn named(self, key: &'static str) -> Setting {
        Setting { key, ..self }
    }

    /// Whether `value` is of this setting's kind and in its range.
    pub fn allows(&self, value: SettingValue) -> bool {
        match (self.kind, value) {
            (SettingKind::Int { min }, SettingValue::Int(n)) => n >= min,
            (SettingKind::Pair { min }, SettingValue::Pair(p)) => p[0] >= min && p[1] >= min,
            (SettingKind::Bool, SettingValue::Bool(_)) => true,
            (SettingKind::Real { min, max, max_open }, SettingValue::Real(x)) => {
                x.is_finite() && x >= min && (x < max || (!max_open && x == max))
            }
            (SettingKind::Dims, SettingValue::Dims(d)) => {
                let n = dims_of(&d).len();
                n >= 1 && d[n..].iter().all(|&v| v == 0)
            }
            _ => false,
        }
    }
}

impl fmt::Display for SettingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SettingKind::Int { min } => write!(f, "an integer ≥ {min}"),
            SettingKind::Pair { min } => write!(f, "an integer ≥ {min} or a pair [h, w] of them"),
            SettingKind::Bool => write!(f, "true or false"),
            SettingKind::Real { min, max, .. } if max == f32::MAX => write!(f, "a finite number ≥ {min}"),
            SettingKind::Real { min, max, max_open } => write!(f, "a number in [{min}, {max}{}", if max_open { ")" } else { "]" }),
            SettingKind::Dims => write!(f, "a list of 1 to 4 integers ≥ 1"),
        }
    }
}

/// A whole number ≥ 1 that a spec must give (a count of features or filters).
pub(crate) const fn count(help: &'static str) -> Setting {
    Setting { key: "", kind: SettingKind::Int { min: 1 }, default: SettingDefault::Required, help }
}

/// A whole number ≥ `min`, `default` when left out.
pub(crate) const fn int_or(min: u32, default: u32, help: &'static str) -> Setting {
    Setting { key: "", kind: SettingKind::Int { min }, default: SettingDefault::Value(SettingValue::Int(default)), help }
}

/// A list of one to four whole numbers ≥ 1 that a spec must give.
pub(crate) const fn dims(help: &'static str) -> Setting {
    Setting { key: "", kind: SettingKind::Dims, default: SettingDefault::Required, help }
}

/// A pair of whole numbers ≥ `min` that a spec must give.
pub(crate) const fn pair(min: u32, help: &'static str) -> Setting {
    Setting { key: "", kind: SettingKind::Pair { min }, default: SettingDefault::Required, help }
}

/// A pair of whole numbers ≥ `min`, `default` when left out.
pub(crate) const fn pair_or(min: u32, default: [u32; 2], help: &'static str) -> Setting {
    Setting { key: "", kind: SettingKind::Pair { min }, default: SettingDefault::Value(SettingValue::Pair(default)), help }
}

/// A pair of whole numbers ≥ `min`, the earlier setting `key` when left out.
pub(crate) const fn pair_like(min: u32, key: &'static str, help: &'static str) -> Setting {
    Setting { key: "", kind: SettingKind::Pair { min }, default: SettingDefault::SameAs(key), help }
}

/// A flag, `default` when left out.
pub(crate) const fn flag(default: bool, help: &'static str) -> Setting {
    Setting { key: "", kind: SettingKind::Bool, default: SettingDefault::Value(SettingValue::Bool(default)), help }
}

/// A finite real in `[min, max]` (`[min, max)` when `max_open`), `default` when left out.
pub(crate) const fn real(min: f32, max: f32, max_open: bool, default: f32, help: &'static str) -> Setting {
    Setting { key: "", kind: SettingKind::Real { min, max, max_open }, default: SettingDefault::Value(SettingValue::Real(default)), help }
}

/// A finite real ≥ 0 (an epsilon), `default` when left out.
pub(crate) const fn non_negative(default: f32, help: &'static str) -> Setting {
    real(0.0, f32::MAX, false, default, help)
}

/// A setting a spec or model file got wrong.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SettingError {
    pub op: &'static str,
    pub setting: &'static Setting,
    pub problem: SettingProblem,
}

/// What is wrong with a setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SettingProblem {
    /// A required setting was left out.
    Missing,
    /// A value of the wrong kind, or out of its range.
    NotAllowed(SettingValue),
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (op, key, kind) = (self.op, self.setting.key, self.setting.kind);
        match self.problem {
            SettingProblem::Missing => write!(f, "{op} needs `{key}` ({}): {kind}", self.setting.help),
            SettingProblem::NotAllowed(v) => write!(f, "{op}: `{key}` must be {kind}, got {v}"),
        }
    }
}

impl core::error::Error for SettingError {}

#[cfg(feature = "defmt")]
impl defmt::Format for SettingError {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self.problem {
            SettingProblem::Missing => defmt::write!(f, "{=str} needs `{=str}`", self.op, self.setting.key),
            SettingProblem::NotAllowed(v) => defmt::write!(f, "{=str}: `{=str}` out of range: {}", self.op, self.setting.key, v),
        }
    }
}

/// A Rust type a setting is stored as in [`super::LayerOp`].
pub(crate) trait SettingType: Copy {
    fn from_value(v: SettingValue) -> Option<Self>;
    fn into_value(self) -> SettingValue;
}

/// `SettingType` for each Rust type a setting is stored as, with its [`SettingValue`] variant.
macro_rules! setting_types {
    ($($ty:ty => $variant:ident),* $(,)?) => {$(
        impl SettingType for $ty {
            fn from_value(v: SettingValue) -> Option<Self> {
                if let SettingValue::$variant(x) = v {
                    Some(x)
                } else {
                    None
                }
            }
            fn into_value(self) -> SettingValue {
                SettingValue::$variant(self)
            }
        }
    )*};
}

setting_types!(u32 => Int, [u32; 2] => Pair, bool => Bool, f32 => Real, [u32; 4] => Dims);
