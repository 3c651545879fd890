//! The DSP extension's SIMD instructions the int8 kernels use (SXTB16, SADD16, SMLAD) as
//! functions: one instruction each through `asm!` on Arm, plain Rust that computes the same
//! elsewhere (so host tests check the kernels' data layouts).

/// The first four values of `b` as one little-endian word: one LDR, at any alignment (an extra
/// cycle on a real M4 when it straddles a word; byte loads would cost four instructions).
#[inline(always)]
pub(super) fn word(b: &[i8]) -> u32 {
    let four = b.first_chunk::<4>().expect("four values");
    // SAFETY: `four` is 4 readable bytes; `read_unaligned` has no alignment requirement.
    u32::from_le(unsafe { core::ptr::read_unaligned(four.as_ptr().cast::<u32>()) })
}

/// SXTB16: bytes 0 and 2 of `x`, sign-extended into the low and high halves.
#[inline(always)]
pub(super) fn sxtb16(x: u32) -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let r: u32;
        // SAFETY: a register-only DSP instruction (the `dsp` feature is built only for cores with it).
        unsafe { core::arch::asm!("sxtb16 {0}, {1}", out(reg) r, in(reg) x, options(pure, nomem, nostack, preserves_flags)) };
        r
    }
    #[cfg(not(target_arch = "arm"))]
    {
        (x as u8 as i8 as i16 as u16 as u32) | ((((x >> 16) as u8 as i8 as i16) as u16 as u32) << 16)
    }
}

/// SXTB16 of `x` rotated right by 8: bytes 1 and 3.
#[inline(always)]
pub(super) fn sxtb16_ror8(x: u32) -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let r: u32;
        // SAFETY: as `sxtb16`.
        unsafe { core::arch::asm!("sxtb16 {0}, {1}, ror #8", out(reg) r, in(reg) x, options(pure, nomem, nostack, preserves_flags)) };
        r
    }
    #[cfg(not(target_arch = "arm"))]
    {
        sxtb16(x.rotate_right(8))
    }
}

/// SADD16: the i16 halves of `a` and `b` added (wrapping, as the instruction).
#[inline(always)]
pub(super) fn sadd16(a: u32, b: u32) -> u32 {
    #[cfg(target_arch = "arm")]
    {
        let r: u32;
        // SAFETY: a register-only DSP instruction; it sets the GE flags, which nothing reads.
        unsafe { core::arch::asm!("sadd16 {0}, {1}, {2}", out(reg) r, in(reg) a, in(reg) b, options(pure, nomem, nostack)) };
        r
    }
    #[cfg(not(target_arch = "arm"))]
    {
        let lo = (a as u16).wrapping_add(b as u16) as u32;
        let hi = ((a >> 16) as u16).wrapping_add((b >> 16) as u16) as u32;
        lo | hi << 16
    }
}

/// SMLAD: `acc + lo(a)·lo(b) + hi(a)·hi(b)` on i16 halves (wrapping, as the instruction).
#[inline(always)]
pub(super) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    #[cfg(target_arch = "arm")]
    {
        let r: i32;
        // SAFETY: a register-only DSP instruction; it may set the Q flag, which nothing reads.
        unsafe {
            core::arch::asm!("smlad {0}, {1}, {2}, {3}", out(reg) r, in(reg) a, in(reg) b, in(reg) acc, options(pure, nomem, nostack))
        };
        r
    }
    #[cfg(not(target_arch = "arm"))]
    {
        let lo = |v: u32| v as u16 as i16 as i32;
        let hi = |v: u32| (v >> 16) as u16 as i16 as i32;
        acc.wrapping_add(lo(a) * lo(b)).wrapping_add(hi(a) * hi(b))
    }
}
