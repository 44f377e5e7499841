//! Interrupts: an IDT whose exception handlers print the vector, error code, registers and a
//! backtrace of return addresses before ending QEMU with a failure status; the local APIC
//! timer, which wakes the CPU from `hlt` so that an idle appliance sleeps instead of spinning.
//!
//! Interrupts are enabled only inside [`idle`] (`sti; hlt`), so no handler ever interrupts
//! kernel or database code: there is nothing to make reentrant.
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::arch::{outb, rdtsc};

pub const TIMER_VECTOR: u8 = 32;
/// virtio-net's receive queue (MSI-X): a frame arrived.
pub const NET_VECTOR: u8 = 33;
const SPURIOUS_VECTOR: u8 = 0xff;
const LAPIC_BASE: usize = 0xfee0_0000;

static TICKS: AtomicU64 = AtomicU64::new(0);
static NET_IRQS: AtomicU64 = AtomicU64::new(0);
/// Timer counts per millisecond, measured at boot.
static COUNTS_PER_MS: AtomicU64 = AtomicU64::new(0);
static PERIOD_US: AtomicU64 = AtomicU64::new(0);

/// Register state pushed by the common stub; the CPU's frame follows.
#[repr(C)]
pub struct Frame {
    r15: u64,
    r14: u64,
    r13: u64,
    r12: u64,
    r11: u64,
    r10: u64,
    r9: u64,
    r8: u64,
    rbp: u64,
    rdi: u64,
    rsi: u64,
    rdx: u64,
    rcx: u64,
    rbx: u64,
    rax: u64,
    vector: u64,
    error: u64,
    rip: u64,
    cs: u64,
    rflags: u64,
    rsp: u64,
    ss: u64,
}

global_asm!(
    r#"
    .macro ISR_NOERR n
    .balign 16
isr_stub_\n:
    push 0
    push \n
    jmp isr_common
    .endm
    .macro ISR_ERR n
    .balign 16
isr_stub_\n:
    push \n
    jmp isr_common
    .endm

    .section .text.isr, "ax"
    .code64
    ISR_NOERR 0
    ISR_NOERR 1
    ISR_NOERR 2
    ISR_NOERR 3
    ISR_NOERR 4
    ISR_NOERR 5
    ISR_NOERR 6
    ISR_NOERR 7
    ISR_ERR 8
    ISR_NOERR 9
    ISR_ERR 10
    ISR_ERR 11
    ISR_ERR 12
    ISR_ERR 13
    ISR_ERR 14
    ISR_NOERR 15
    ISR_NOERR 16
    ISR_ERR 17
    ISR_NOERR 18
    ISR_NOERR 19
    ISR_NOERR 20
    ISR_ERR 21
    ISR_NOERR 22
    ISR_NOERR 23
    ISR_NOERR 24
    ISR_NOERR 25
    ISR_NOERR 26
    ISR_NOERR 27
    ISR_NOERR 28
    ISR_ERR 29
    ISR_ERR 30
    ISR_NOERR 31
    ISR_NOERR 32
    ISR_NOERR 33
    ISR_NOERR 255

isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call {dispatch}
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

    .section .rodata.isr, "a"
    .balign 8
    .global KERNDB_ISR_TABLE
KERNDB_ISR_TABLE:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33
    .quad isr_stub_\n
    .endr
    .quad isr_stub_255
    "#,
    dispatch = sym dispatch,
);

unsafe extern "C" {
    static KERNDB_ISR_TABLE: [u64; 35];
}

#[repr(C, packed)]
#[derive(Clone, Copy)]
struct IdtEntry {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    zero: u32,
}

const EMPTY: IdtEntry = IdtEntry { offset_low: 0, selector: 0, ist: 0, attributes: 0, offset_mid: 0, offset_high: 0, zero: 0 };

static mut IDT: [IdtEntry; 256] = [EMPTY; 256];

#[repr(C, packed)]
struct IdtPointer {
    limit: u16,
    base: u64,
}

fn gate(handler: u64, ist: u8) -> IdtEntry {
    IdtEntry {
        offset_low: handler as u16,
        selector: 0x08,
        ist,
        attributes: 0x8e, // present, ring 0, 64-bit interrupt gate
        offset_mid: (handler >> 16) as u16,
        offset_high: (handler >> 32) as u32,
        zero: 0,
    }
}

fn lapic_write(reg: usize, v: u32) {
    // SAFETY: the local APIC's registers are at LAPIC_BASE (identity-mapped); writes of
    // architectural registers have only the documented effect.
    unsafe { core::ptr::write_volatile((LAPIC_BASE + reg) as *mut u32, v) }
}

fn lapic_read(reg: usize) -> u32 {
    // SAFETY: as for lapic_write.
    unsafe { core::ptr::read_volatile((LAPIC_BASE + reg) as *const u32) }
}

const DOUBLE_FAULT: u8 = 8;
const PAGE_FAULT: u8 = 14;
const IST_STACK: usize = 64 * 1024;

/// The 64-bit task-state segment: only its interrupt stack table is used.
#[repr(C, packed(4))]
struct Tss {
    reserved0: u32,
    rsp: [u64; 3],
    reserved1: u64,
    ist: [u64; 7],
    reserved2: u64,
    reserved3: u16,
    iomap_base: u16,
}

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK]);

static mut TSS: Tss = Tss { reserved0: 0, rsp: [0; 3], reserved1: 0, ist: [0; 7], reserved2: 0, reserved3: 0, iomap_base: 104 };
static mut IST1: IstStack = IstStack([0; IST_STACK]);
static mut IST2: IstStack = IstStack([0; IST_STACK]);
/// Null, code (0x08), data (0x10), TSS (0x18, two slots): the boot GDT plus the TSS.
static mut GDT: [u64; 5] = [0, 0x00AF_9A00_0000_FFFF, 0x00CF_9200_0000_FFFF, 0, 0];

#[repr(C, align(4096))]
struct PageTable([u64; 512]);
/// 4 KiB mappings for the 2 MiB that hold the bottom of the kernel stack, so that its lowest
/// page can be left unmapped as a guard.
static mut GUARD_PT: PageTable = PageTable([0; 512]);

unsafe extern "C" {
    static KERNDB_BOOT_PD: [u64; 2048];
    static KERNDB_STACK_BOTTOM: u8;
}

/// The page below which the kernel stack overflows: unmapped, so an overflow faults.
pub fn stack_guard() -> u64 {
    &raw const KERNDB_STACK_BOTTOM as u64
}

#[repr(C, packed)]
struct GdtPointer {
    limit: u16,
    base: u64,
}

/// Installs the GDT with a TSS whose interrupt stack table gives the double-fault and
/// page-fault handlers their own stacks, and unmaps the guard page under the kernel stack.
fn init_tss_and_guard() {
    // SAFETY: called once at boot with interrupts off; the statics are only touched here and
    // by the CPU afterwards. The guard page table maps the same 2 MiB identically except the
    // guard page, which nothing but an overflowing stack uses (it is the stack's own lowest
    // page), and the TLB is flushed by reloading CR3.
    unsafe {
        let tss = &mut *(&raw mut TSS);
        tss.ist[0] = (&raw const IST1 as u64) + IST_STACK as u64;
        tss.ist[1] = (&raw const IST2 as u64) + IST_STACK as u64;
        let base = &raw const TSS as u64;
        let limit = (core::mem::size_of::<Tss>() - 1) as u64;
        let gdt = &mut *(&raw mut GDT);
        gdt[3] = (limit & 0xffff) | (base & 0xff_ffff) << 16 | 0x89 << 40 | ((limit >> 16) & 0xf) << 48 | ((base >> 24) & 0xff) << 56;
        gdt[4] = base >> 32;
        let ptr = GdtPointer { limit: (core::mem::size_of::<[u64; 5]>() - 1) as u16, base: gdt.as_ptr() as u64 };
        asm!("lgdt [{}]", in(reg) &ptr, options(readonly, nostack));
        asm!("ltr {0:x}", in(reg) 0x18u16, options(nomem, nostack));

        let guard = stack_guard();
        let region = guard & !0x1f_ffff;
        let pt = &mut *(&raw mut GUARD_PT);
        for (i, e) in pt.0.iter_mut().enumerate() {
            let addr = region + (i as u64) * 4096;
            *e = if addr == guard { 0 } else { addr | 0x3 };
        }
        let pd = &raw const KERNDB_BOOT_PD as *mut u64;
        *pd.add((region >> 21) as usize) = (&raw const GUARD_PT as u64) | 0x3;
        asm!("mov {0}, cr3", "mov cr3, {0}", out(reg) _, options(nostack));
    }
}

/// Loads the IDT, masks the legacy PICs, enables the local APIC and starts its timer with a
/// period of `period_us`. Interrupts stay disabled until [`idle`].
pub fn init(period_us: u64) {
    init_tss_and_guard();
    // SAFETY: called once at boot, before interrupts are enabled; the table is static.
    unsafe {
        let table = &*(&raw const KERNDB_ISR_TABLE);
        let idt = &mut *(&raw mut IDT);
        for v in 0..34 {
            idt[v] = gate(table[v], 0);
        }
        // A double fault and a page fault run on stacks of their own, so that a stack overflow
        // (a fault on the guard page below the kernel stack) is still reported.
        idt[DOUBLE_FAULT as usize] = gate(table[DOUBLE_FAULT as usize], 1);
        idt[PAGE_FAULT as usize] = gate(table[PAGE_FAULT as usize], 2);
        idt[SPURIOUS_VECTOR as usize] = gate(table[34], 0);
        let ptr = IdtPointer { limit: (core::mem::size_of::<[IdtEntry; 256]>() - 1) as u16, base: idt.as_ptr() as u64 };
        asm!("lidt [{}]", in(reg) &ptr, options(readonly, nostack));
    }
    // Legacy 8259 PICs: masked, so that no stray IRQ lands on an exception vector.
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    // SAFETY: reading and writing IA32_APIC_BASE to set its global-enable bit.
    unsafe {
        let (lo, hi): (u32, u32);
        asm!("rdmsr", in("ecx") 0x1bu32, out("eax") lo, out("edx") hi, options(nomem, nostack));
        asm!("wrmsr", in("ecx") 0x1bu32, in("eax") lo | 0x800, in("edx") hi, options(nomem, nostack));
    }
    lapic_write(0xf0, 0x100 | SPURIOUS_VECTOR as u32); // software enable
    lapic_write(0x3e0, 0x3); // divide by 16
    // Calibrate the timer against the TSC.
    lapic_write(0x320, 1 << 16); // masked, one-shot
    lapic_write(0x380, u32::MAX);
    let per_us = crate::time::tsc_mhz().max(1);
    let t0 = rdtsc();
    while rdtsc() - t0 < 1000 * per_us {}
    let per_ms = u32::MAX - lapic_read(0x390);
    COUNTS_PER_MS.store(per_ms as u64, Ordering::Relaxed);
    lapic_write(0x380, 0);
    lapic_write(0x320, TIMER_VECTOR as u32 | 1 << 17); // periodic
    set_period(period_us);
    log::debug!("local APIC timer: {per_ms} counts/ms, period {period_us} us");
}

/// Changes the timer period (the longest `idle` sleeps).
pub fn set_period(period_us: u64) {
    if PERIOD_US.swap(period_us, Ordering::Relaxed) == period_us {
        return;
    }
    let count = (COUNTS_PER_MS.load(Ordering::Relaxed) * period_us / 1000).clamp(1, u32::MAX as u64) as u32;
    lapic_write(0x380, count);
}

/// Sleeps until the next interrupt (at the latest the next timer tick).
pub fn idle() {
    // SAFETY: `sti; hlt` enables interrupts only for the halt: the instruction after sti runs
    // before any interrupt is taken, so the wake-up cannot be missed; cli restores the state.
    unsafe { asm!("sti; hlt; cli", options(nomem, nostack)) }
}

/// virtio-net receive interrupts so far.
pub fn net_interrupts() -> u64 {
    NET_IRQS.load(Ordering::Relaxed)
}

pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

extern "C" fn dispatch(f: &mut Frame) {
    match f.vector as u8 {
        TIMER_VECTOR => {
            TICKS.fetch_add(1, Ordering::Relaxed);
            lapic_write(0xb0, 0); // end of interrupt
        }
        NET_VECTOR => {
            NET_IRQS.fetch_add(1, Ordering::Relaxed);
            lapic_write(0xb0, 0);
        }
        SPURIOUS_VECTOR => {}
        v => exception(v, f),
    }
}

const NAMES: [&str; 32] = [
    "divide error", "debug", "NMI", "breakpoint", "overflow", "bound range", "invalid opcode",
    "device not available", "double fault", "coprocessor segment overrun", "invalid TSS",
    "segment not present", "stack-segment fault", "general protection fault", "page fault",
    "reserved", "x87 floating point", "alignment check", "machine check", "SIMD floating point",
    "virtualization", "control protection", "reserved", "reserved", "reserved", "reserved",
    "reserved", "reserved", "hypervisor injection", "VMM communication", "security", "reserved",
];

fn exception(v: u8, f: &Frame) -> ! {
    let cr2: u64;
    // SAFETY: reading CR2 has no side effect.
    unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack)) };
    crate::console::write_bytes(b"\n");
    let guard = stack_guard();
    if (v == PAGE_FAULT || v == DOUBLE_FAULT) && (guard..guard + 4096).contains(&cr2) || (v == DOUBLE_FAULT && (guard..guard + 4096).contains(&f.rsp)) {
        crate::println!("KERNEL STACK OVERFLOW: the stack reached its guard page at {guard:#x}");
    }
    crate::println!("CPU EXCEPTION {v} ({}), error code {:#x}", NAMES.get(v as usize).unwrap_or(&"?"), f.error);
    crate::println!("  rip {:#018x}  cs {:#x}  rflags {:#x}  rsp {:#018x}  ss {:#x}  cr2 {:#x}", f.rip, f.cs, f.rflags, f.rsp, f.ss, cr2);
    crate::println!("  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}", f.rax, f.rbx, f.rcx, f.rdx);
    crate::println!("  rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}", f.rsi, f.rdi, f.rbp, f.r8);
    crate::println!("  r9  {:#018x} r10 {:#018x} r11 {:#018x} r12 {:#018x}", f.r9, f.r10, f.r11, f.r12);
    crate::println!("  r13 {:#018x} r14 {:#018x} r15 {:#018x}", f.r13, f.r14, f.r15);
    backtrace(f.rip, f.rbp);
    crate::println!("kerndb: the machine stops here (exit status 3 under QEMU)");
    crate::exit::exit_qemu(1)
}

/// Prints return addresses by walking saved frame pointers (the image is built with
/// -C force-frame-pointers=yes); resolve them with addr2line against the image.
pub fn backtrace(rip: u64, mut rbp: u64) {
    let (lo, hi) = crate::boot::image_range();
    crate::println!("  backtrace (addr2line -e target/x86_64-unknown-none/image/kerndb):");
    if rip != 0 {
        crate::println!("    {rip:#018x}");
    }
    for _ in 0..32 {
        let guard = stack_guard();
        if rbp % 8 != 0 || rbp < lo as u64 || rbp + 16 > hi as u64 || (guard..guard + 4096).contains(&(rbp + 8)) || (guard..guard + 4096).contains(&rbp) {
            break;
        }
        // SAFETY: rbp lies inside the image (its stack is in .bss) and is aligned; reading
        // two words there cannot fault.
        let (next, ret) = unsafe { (*(rbp as *const u64), *((rbp + 8) as *const u64)) };
        if ret == 0 {
            break;
        }
        crate::println!("    {ret:#018x}");
        if next <= rbp {
            break;
        }
        rbp = next;
    }
}
