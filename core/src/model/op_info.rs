//! What the op table says about each op, and the generic work done from it: finding an op by
//! name or tag, making a `LayerOp` from settings (defaults and ranges applied), checking a
//! decoded one, and encoding it in model files under its stable tag.

use super::settings::{Setting, SettingDefault, SettingError, SettingProblem, SettingValue, MAX_SETTINGS};
use super::{LayerOp, LAYER_OPS};
use core::fmt;
use serde::de::{self, EnumAccess, SeqAccess, VariantAccess, Visitor};
use serde::ser::SerializeTupleVariant;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One row of the op table.
#[derive(Debug, PartialEq)]
pub struct OpInfo {
    /// The name specs use (`op = "conv2d"`).
    pub name: &'static str,
    /// The op's number in model files: explicit and append-only.
    pub tag: u32,
    /// Inputs the op takes: 1, or 2 for add, sub, mul and matmul.
    pub arity: usize,
    /// The op's settings, in the order they are stored.
    pub settings: &'static [Setting],
}

/// Whether no two rows share a tag or a name (checked when the table is compiled).
pub(crate) const fn all_distinct(rows: &[OpInfo]) -> bool {
    let mut i = 0;
    while i < rows.len() {
        let mut j = i + 1;
        while j < rows.len() {
            if rows[i].tag == rows[j].tag || same_str(rows[i].name, rows[j].name) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl OpInfo {
    /// The row of the op named `name` in specs.
    pub fn by_name(name: &str) -> Option<&'static OpInfo> {
        LAYER_OPS.iter().find(|op| op.name == name)
    }

    /// The row of the op with model-file tag `tag`.
    pub fn by_tag(tag: u32) -> Option<&'static OpInfo> {
        LAYER_OPS.iter().find(|op| op.tag == tag)
    }

    /// The op from the settings a spec gave, in row order (`None`: left out). Defaults fill
    /// what is left out; every value is checked against its setting's kind and range.
    pub fn layer_op(&'static self, given: &[Option<SettingValue>]) -> Result<LayerOp, SettingError> {
        let mut values = [SettingValue::Bool(false); MAX_SETTINGS];
        for (i, setting) in self.settings.iter().enumerate() {
            let err = |problem| SettingError { op: self.name, setting, problem };
            let value = match (given.get(i).copied().flatten(), setting.default) {
                (Some(v), _) => v,
                (None, SettingDefault::Value(v)) => v,
                (None, SettingDefault::SameAs(key)) => {
                    let earlier = self.settings[..i].iter().position(|s| s.key == key);
                    values[earlier.ok_or(err(SettingProblem::Missing))?]
                }
                (None, SettingDefault::Required) => return Err(err(SettingProblem::Missing)),
            };
            if !setting.allows(value) {
                return Err(err(SettingProblem::NotAllowed(value)));
            }
            values[i] = value;
        }
        LayerOp::from_values(self.tag, &values[..self.settings.len()]).ok_or(SettingError {
            op: self.name,
            setting: self.settings.first().unwrap_or(&NO_SETTING),
            problem: SettingProblem::Missing,
        })
    }
}

/// Stands in for a setting in an error about an op that has none (never reached: a row's
/// values always make its variant).
static NO_SETTING: Setting = Setting { key: "", kind: super::SettingKind::Bool, default: SettingDefault::Required, help: "" };

impl LayerOp {
    /// The op's name as written in specs.
    pub fn name(&self) -> &'static str {
        self.info().name
    }
    /// How many inputs the op takes.
    pub fn arity(&self) -> usize {
        self.info().arity
    }
    /// Each setting with its value, in row order.
    pub fn settings(&self) -> impl Iterator<Item = (&'static Setting, SettingValue)> {
        self.info().settings.iter().zip(self.values())
    }
    /// Checks every setting is in its range (a model file may carry anything).
    pub fn check(&self) -> Result<(), SettingError> {
        let name = self.name();
        match self.settings().find(|(s, v)| !s.allows(*v)) {
            Some((setting, v)) => Err(SettingError { op: name, setting, problem: SettingProblem::NotAllowed(v) }),
            None => Ok(()),
        }
    }
}

impl Serialize for SettingValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SettingValue::Int(n) => n.serialize(s),
            SettingValue::Pair(p) => p.serialize(s),
            SettingValue::Bool(b) => b.serialize(s),
            SettingValue::Real(x) => x.serialize(s),
            SettingValue::Dims(d) => d.serialize(s),
        }
    }
}

/// In model files an op is its tag (a postcard varint) followed by its settings in row order:
/// the same bytes as a derived enum whose variant index is the tag.
impl Serialize for LayerOp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let info = self.info();
        if info.settings.is_empty() {
            return s.serialize_unit_variant("LayerOp", info.tag, info.name);
        }
        let mut t = s.serialize_tuple_variant("LayerOp", info.tag, info.name, info.settings.len())?;
        for (_, value) in self.settings() {
            t.serialize_field(&value)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for LayerOp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_enum("LayerOp", &[], OpVisitor)
    }
}

struct OpVisitor;

impl<'de> Visitor<'de> for OpVisitor {
    type Value = LayerOp;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a layer op tag and its settings")
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<LayerOp, A::Error> {
        let (tag, access): (u32, _) = data.variant()?;
        let info = OpInfo::by_tag(tag).ok_or_else(|| de::Error::custom("unknown layer op tag"))?;
        if info.settings.is_empty() {
            access.unit_variant()?;
            return LayerOp::from_values(tag, &[]).ok_or_else(|| de::Error::custom("unknown layer op tag"));
        }
        access.tuple_variant(info.settings.len(), SettingsVisitor(info))
    }
}

/// Reads an op's settings in row order, each as its kind's type.
struct SettingsVisitor(&'static OpInfo);

impl<'de> Visitor<'de> for SettingsVisitor {
    type Value = LayerOp;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the settings of {}", self.0.name)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LayerOp, A::Error> {
        use super::SettingKind as K;
        let mut values = [SettingValue::Bool(false); MAX_SETTINGS];
        for (value, setting) in values.iter_mut().zip(self.0.settings) {
            let missing = || de::Error::custom("a layer op setting is missing");
            *value = match setting.kind {
                K::Int { .. } => SettingValue::Int(seq.next_element()?.ok_or_else(missing)?),
                K::Pair { .. } => SettingValue::Pair(seq.next_element()?.ok_or_else(missing)?),
                K::Bool => SettingValue::Bool(seq.next_element()?.ok_or_else(missing)?),
                K::Real { .. } => SettingValue::Real(seq.next_element()?.ok_or_else(missing)?),
                K::Dims => SettingValue::Dims(seq.next_element()?.ok_or_else(missing)?),
            };
        }
        LayerOp::from_values(self.0.tag, &values[..self.0.settings.len()]).ok_or_else(|| de::Error::custom("bad layer op settings"))
    }
}
