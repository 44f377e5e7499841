//! Entropy: RDRAND where the CPU has it; otherwise TSC jitter mixed through a 64-bit finalizer.
//! The fallback is weak (TCG's default CPU lacks RDRAND; `cargo xtask run` passes `-cpu max`).
use core::arch::x86_64::{__cpuid, _rdrand64_step};

use crate::arch::rdtsc;

pub struct CpuEntropy {
    rdrand: bool,
    state: u64,
}

impl CpuEntropy {
    pub fn new() -> CpuEntropy {
        let ecx = __cpuid(1).ecx;
        let rdrand = ecx & (1 << 30) != 0;
        if !rdrand {
            log::warn!("the CPU has no RDRAND: SCRAM nonces come from TSC jitter (use -cpu max or host)");
        }
        CpuEntropy { rdrand, state: rdtsc() }
    }

    fn next(&mut self) -> u64 {
        if self.rdrand {
            let mut v = 0u64;
            for _ in 0..10 {
                // SAFETY: the CPU reported RDRAND support.
                if unsafe { _rdrand64_step(&mut v) } == 1 {
                    return v;
                }
            }
        }
        // splitmix64 over the TSC, which moves between calls by an amount that jitters.
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15 ^ rdtsc());
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Default for CpuEntropy {
    fn default() -> Self {
        Self::new()
    }
}

impl platform::Entropy for CpuEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}
