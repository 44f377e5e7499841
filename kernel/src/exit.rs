//! Ending the machine: QEMU's isa-debug-exit device, and the panic handler.
use crate::arch::{halt_forever, outl};

/// isa-debug-exit at iobase 0xf4: QEMU exits with status (value << 1) | 1.
const DEBUG_EXIT_PORT: u16 = 0xf4;

/// Ends QEMU with exit status `(code << 1) | 1` (so always odd, never 0); on a machine without
/// the device, stops the CPU.
pub fn exit_qemu(code: u32) -> ! {
    outl(DEBUG_EXIT_PORT, code);
    halt_forever()
}

pub struct Halt;

impl platform::Halt for Halt {
    fn halt(&mut self, status: u8) -> ! {
        exit_qemu(status as u32)
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    crate::console::write_bytes(b"\n");
    crate::println!("KERNEL PANIC: {info}");
    let rbp: u64;
    // SAFETY: reading the frame pointer register has no side effect.
    unsafe { core::arch::asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack)) };
    crate::interrupts::backtrace(0, rbp);
    crate::println!("kerndb: the machine stops here (exit status 3 under QEMU)");
    exit_qemu(1)
}

/// Self-test hook: reads an address the page tables do not map, to show that a CPU exception
/// is reported on the console and ends the machine with a failure status.
pub fn selftest_page_fault() -> ! {
    // SAFETY: deliberately faults (nothing is mapped at 256 GiB); the handler never returns.
    let v = unsafe { core::ptr::read_volatile(0x40_0000_0000 as *const u64) };
    panic!("read {v:#x} from an unmapped address without a fault");
}

/// Self-test hook: recurses without end, to show that a kernel stack overflow hits the guard
/// page and is reported (on the double-fault and page-fault stacks) instead of silently
/// overwriting memory below the stack.
pub fn selftest_stack_overflow() -> ! {
    #[inline(never)]
    #[allow(unconditional_recursion)]
    fn deeper(n: u64) -> u64 {
        let mut pad = [n; 64];
        core::hint::black_box(&mut pad);
        deeper(n + 1) + pad[7]
    }
    let v = deeper(core::hint::black_box(0));
    panic!("recursion ended without a fault ({v})");
}
