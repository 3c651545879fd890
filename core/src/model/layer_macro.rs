//! The macro that turns the op table's rows into `LayerOp`, its `LAYER_OPS` descriptions, and
//! the per-op glue (tags, settings as values and back, building into a graph), so that none of
//! it is written by hand per op.

/// See `op_table.rs` for the row syntax.
macro_rules! layer_ops {
    ($(
        $(#[doc = $doc:literal])*
        $tag:literal $variant:ident $name:literal arity $arity:literal {
            $($field:ident : $ty:ty = $setting:expr),* $(,)?
        } build |$g:ident, $x:pat_param, $y:pat_param| $build:expr;
    )*) => {
        /// One layer's op and its settings (generated from the op table).
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub enum LayerOp {
            $(
                $(#[doc = $doc])*
                $variant { $($field: $ty),* },
            )*
        }

        /// Every layer op, in table order: name, tag, arity, settings.
        pub const LAYER_OPS: &[$crate::model::OpInfo] = &[$(
            $crate::model::OpInfo {
                name: $name,
                tag: $tag,
                arity: $arity,
                settings: &[$($setting.named(stringify!($field))),*],
            },
        )*];

        // Each row fits MAX_SETTINGS and has a tag below 64 (a bit of an op set), and no two
        // rows share a tag or a name.
        const _: () = {
            $(assert!(<[&str]>::len(&[$(stringify!($field)),*]) <= $crate::model::MAX_SETTINGS);)*
            $(assert!($tag < 64);)*
            assert!($crate::model::op_info::all_distinct(LAYER_OPS));
        };

        impl LayerOp {
            /// The op's row of [`LAYER_OPS`].
            pub fn info(&self) -> &'static $crate::model::OpInfo {
                #[allow(clippy::enum_variant_names)]
                enum Row { $($variant),* }
                let row = match self { $(LayerOp::$variant { .. } => Row::$variant),* };
                &LAYER_OPS[row as usize]
            }

            /// The settings' values, in the row's order (the rest are padding).
            pub fn values(&self) -> [$crate::model::SettingValue; $crate::model::MAX_SETTINGS] {
                use $crate::model::settings::SettingType;
                let mut out = [$crate::model::SettingValue::Bool(false); $crate::model::MAX_SETTINGS];
                match self {
                    $(LayerOp::$variant { $($field),* } => {
                        let values: &[$crate::model::SettingValue] = &[$($field.into_value()),*];
                        out[..values.len()].copy_from_slice(values);
                    })*
                }
                out
            }

            /// The op with tag `tag` from its settings' values in row order; `None` if the tag
            /// is unknown or a value is of the wrong kind (ranges are not checked here).
            pub(crate) fn from_values(tag: u32, values: &[$crate::model::SettingValue]) -> Option<LayerOp> {
                use $crate::model::settings::SettingType;
                #[allow(unused_mut, unused_variables)]
                let mut values = values.iter().copied();
                match tag {
                    $($tag => Some(LayerOp::$variant { $($field: <$ty>::from_value(values.next()?)?),* }),)*
                    _ => None,
                }
            }

            /// Adds the op over `ins` to `graph` (the second input is used by two-input ops only).
            pub fn add_to<const N: usize>(self, graph: &mut $crate::Graph<N>, ins: [$crate::NodeId; 2]) -> $crate::Result<$crate::NodeId> {
                self.add_to_in::<N, { u64::MAX }>(graph, ins)
            }

            /// [`LayerOp::add_to`] in a build that links only the ops whose tag bits are set in
            /// `TAGS` (a firmware's model's ops: `ModelSpec::layer_tags`); other ops are
            /// refused with [`$crate::Error::OpNotInBuild`].
            pub fn add_to_in<const N: usize, const TAGS: u64>(self, graph: &mut $crate::Graph<N>, ins: [$crate::NodeId; 2]) -> $crate::Result<$crate::NodeId> {
                match self {
                    $(LayerOp::$variant { $($field),* } if TAGS & (1u64 << $tag) != 0 => {
                        let $g = graph;
                        let [$x, $y] = ins;
                        $build
                    })*
                    _ => Err($crate::Error::OpNotInBuild { op: self.name() }),
                }
            }
        }
    };
}

pub(crate) use layer_ops;
