//! Checks the int8 kernels the dispatch picks on this core — the DSP extension's on the M4,
//! Helium's (and the DSP extension's) on the M55 — against the reference kernels on odd shapes
//! (`mote_kernels::checks`: tails, strides, padding, dilation, pooling, in place), byte for
//! byte, on the core's own instructions; and the fused f32 convolution (the M4's assembly
//! rows, Helium's two-row kernel and sparse backward), the unfused convolution and the linear
//! layers' products bit for bit. Reports the outputs compared.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use mote_firmware::board;
use mote_firmware::error::FirmwareError;
use mote_kernels::checks::{self, Mismatch};
use mote_kernels::dispatch;
use mote_kernels::reference::int8::{Int8Io, Requant};
use mote_kernels::{Conv2dParams, Pool2dParams};

#[entry]
fn main() -> ! {
    board::run_main("kcheck", run)
}

#[allow(clippy::too_many_arguments)]
fn conv(
    p: &Conv2dParams,
    pool: Option<(&Pool2dParams, (i32, i32))>,
    io: &Int8Io,
    rq: &[Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
    scratch: &mut [u8],
) -> bool {
    dispatch::conv2d_s8(p, pool, io, rq, x, w, bias, y, scratch);
    true
}

fn pointwise(p: &Conv2dParams, io: &Int8Io, rq: &[Requant], xy: &mut [i8], w: &[i8], bias: Option<&[i32]>, scratch: &mut [u8]) -> bool {
    dispatch::conv2d_s8_in_place(p, false, io, rq, xy, w, bias, scratch);
    true
}

#[allow(clippy::too_many_arguments)]
fn fully_connected(
    batch: usize,
    depth: usize,
    out: usize,
    io: &Int8Io,
    rq: &[Requant],
    x: &[i8],
    w: &[i8],
    bias: Option<&[i32]>,
    y: &mut [i8],
) -> bool {
    dispatch::fully_connected_s8(batch, depth, out, io, rq, x, w, bias, y, &mut []);
    true
}

fn depthwise(p: &Conv2dParams, io: &Int8Io, rq: &[Requant], x: &[i8], w: &[i8], bias: Option<&[i32]>, y: &mut [i8]) -> bool {
    dispatch::depthwise_conv2d_s8(p, io, rq, x, w, bias, y);
    true
}

#[allow(clippy::too_many_arguments)]
fn fused_f32(
    conv: &Conv2dParams,
    pool: &Pool2dParams,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
    argmax: Option<&mut [u8]>,
    scratch: &mut [f32],
) -> bool {
    dispatch::conv2d_relu_maxpool2d_f32(conv, pool, x, w, bias, y, argmax, scratch)
}

fn run() -> Result<(), FirmwareError> {
    let mismatch = |m: Mismatch| FirmwareError::KernelMismatch { check: m.check, case: m.case as u32 };
    let pointwise_scratch = |p: &Conv2dParams| dispatch::conv2d_s8_in_place_scratch_bytes(p, false);
    let outputs = checks::conv(&conv, &dispatch::conv2d_s8_scratch_bytes, false).map_err(mismatch)?
        + checks::pointwise_in_place(&pointwise, &pointwise_scratch).map_err(mismatch)?
        + checks::fully_connected(&fully_connected).map_err(mismatch)?
        + checks::depthwise(&depthwise).map_err(mismatch)?
        + checks::requantization(&dispatch::requant_s8).map_err(mismatch)?;
    let fused_scratch = |c: &Conv2dParams, p: &Pool2dParams| dispatch::conv2d_relu_maxpool2d_scratch_len(c, p, dispatch::active());
    let mut f32_outputs = checks::fused_f32::fused_conv(&fused_f32, &fused_scratch).map_err(mismatch)?
        + checks::fused_f32::fused_backward(&dispatch::conv2d_relu_maxpool2d_backward_f32).map_err(mismatch)?
        + checks::gemm_f32::gemm(&dispatch::gemm_f32).map_err(mismatch)?;
    // The unfused convolution and the weight gradient's rows have kernels of their own only on
    // Helium; elsewhere the dispatch runs the reference, which the checks would meet with itself.
    if dispatch::active() == dispatch::Isa::Mve {
        f32_outputs += checks::conv_f32::conv(&dispatch::conv2d_f32).map_err(mismatch)?
            + checks::gemm_f32::weight_grad(&dispatch::linear_weight_grad_row_f32).map_err(mismatch)?;
    }
    defmt::println!(
        "result int8_outputs_equal={=u32} f32_outputs_equal={=u32} isa={=u8}",
        outputs as u32,
        f32_outputs as u32,
        dispatch::active() as u8
    );
    Ok(())
}
