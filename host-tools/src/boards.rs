//! Boards the firmware is built for, and what a model costs on them: the flash and RAM of each
//! firmware binary that embeds the model, from the model's plans (made exactly as the firmware's
//! `build.rs` makes them) and the binaries' measured code and stack.

use mote_core::model::{BuiltModel, FirmwarePlans, FIRMWARE_NODES};
use mote_core::{Graph, Isa, Result};

/// A board: its name for `--board` and its memory.
#[derive(Clone, Copy, Debug)]
pub struct Board {
    pub name: &'static str,
    pub flash_bytes: usize,
    pub ram_bytes: usize,
    pub about: &'static str,
}

/// The boards `mote export --board` knows (the README's "Real boards").
pub const BOARDS: &[Board] = &[
    Board { name: "mps2-an386", flash_bytes: 1024 << 10, ram_bytes: 256 << 10, about: "the emulated Cortex-M4 (firmware/memory.x)" },
    Board { name: "nrf52840", flash_bytes: 1024 << 10, ram_bytes: 256 << 10, about: "nRF52840-DK, without a SoftDevice" },
    Board { name: "stm32f429zi", flash_bytes: 2048 << 10, ram_bytes: 192 << 10, about: "NUCLEO-F429ZI (contiguous SRAM)" },
    Board { name: "stm32f411re", flash_bytes: 512 << 10, ram_bytes: 128 << 10, about: "NUCLEO-F411RE" },
    Board { name: "stm32f401re", flash_bytes: 512 << 10, ram_bytes: 96 << 10, about: "NUCLEO-F401RE" },
];

/// The board named `name`.
pub fn board(name: &str) -> std::result::Result<&'static Board, String> {
    BOARDS
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| format!("unknown board `{name}`: expected one of {}", BOARDS.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")))
}

/// Flash and RAM of one firmware binary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BinaryCost {
    pub binary: &'static str,
    pub flash_bytes: usize,
    pub ram_bytes: usize,
}

impl BinaryCost {
    /// Whether the binary fits `board`.
    pub fn fits(&self, board: &Board) -> bool {
        self.flash_bytes <= board.flash_bytes && self.ram_bytes <= board.ram_bytes
    }
}

/// Code and constants besides the model file, and stack, of the binaries that embed the model:
/// measured on the emulated M4 with mnist-cnn (code 46,016 / 127,392 / 97,572 B, stack 8,228 /
/// 8,692 / unmeasured B), rounded up by 8–9% for the code of other ops and larger plans.
const CODE_AND_STACK: [(&str, usize, usize); 3] =
    [("infer", 49 << 10, 9 << 10), ("train", 135 << 10, 10 << 10), ("bench", 104 << 10, 12 << 10)];

/// What each binary that embeds the model file of `model_file_bytes` costs: the arenas come from
/// the plans the firmware's `build.rs` makes (inference; a batch-1 SGD-momentum training step;
/// their unfused out-of-place baselines for `bench`).
pub fn firmware_costs(g: &Graph<FIRMWARE_NODES>, built: &BuiltModel, model_file_bytes: usize) -> Result<[BinaryCost; 3]> {
    let plans = FirmwarePlans::new(g, built, Isa::Dsp)?;
    let (infer, train, bench_arena) = (&plans.infer, &plans.train, plans.bench_arena_len());
    let values = |n: usize| n.saturating_mul(4);
    let (params, state) = (g.params_len(), train.optimizer_len());
    let statics = [values(infer.arena_len()), values(params + state + train.arena_len()), values(params + state + bench_arena)];
    let mut costs = [BinaryCost { binary: "", flash_bytes: 0, ram_bytes: 0 }; 3];
    for (cost, ((binary, code, stack), statics)) in costs.iter_mut().zip(CODE_AND_STACK.into_iter().zip(statics)) {
        *cost = BinaryCost { binary, flash_bytes: code + model_file_bytes, ram_bytes: statics.saturating_add(stack) };
    }
    Ok(costs)
}

/// The first of the binaries a user flashes (`infer`, `train`, or only `only`; never the
/// `bench` tool) that does not fit `board`, with what it needs against what the board has.
pub fn first_misfit(costs: &[BinaryCost], board: &Board, only: Option<&str>) -> Option<String> {
    costs.iter().filter(|c| c.binary != "bench" && only.is_none_or(|o| o == c.binary)).find_map(|c| {
        let kb = |b: usize| b.div_ceil(1024);
        if c.flash_bytes > board.flash_bytes {
            Some(format!(
                "the {} firmware needs {} KB of flash, {} has {} KB",
                c.binary,
                kb(c.flash_bytes),
                board.name,
                kb(board.flash_bytes)
            ))
        } else if c.ram_bytes > board.ram_bytes {
            Some(format!("the {} firmware needs {} KB of RAM, {} has {} KB", c.binary, kb(c.ram_bytes), board.name, kb(board.ram_bytes)))
        } else {
            None
        }
    })
}
