//! Kernels for one instruction set each, with the reference's signatures, exporting only what
//! they speed up; `dispatch` decides when they run. Helium has none yet.

pub mod m4;
#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub mod x86;
