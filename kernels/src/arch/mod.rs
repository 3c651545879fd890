//! Kernels for one instruction set each, with the reference's signatures, exporting only what
//! they speed up; `dispatch` decides when they run. Cortex-M DSP and Helium have none yet.

#[cfg(all(feature = "std", target_arch = "x86_64"))]
pub mod x86;
