//! PVH entry: the 32-bit entry named by the Xen ELF note, the switch to long mode with the
//! first 4 GiB identity-mapped, and the hand-over to Rust and then to the appliance.
use alloc::string::String;
use core::arch::global_asm;

use crate::{console, heap, pci, time, virtio};

// XEN_ELFNOTE_PHYS32_ENTRY: loaders enter at `pvh_start32` in 32-bit protected mode, paging
// off, with the physical address of `struct hvm_start_info` in ebx.
global_asm!(
    r#"
    .section .note.Xen, "a"
    .balign 4
    .long 4
    .long 4
    .long 18
    .asciz "Xen"
    .balign 4
    .long pvh_start32
    .balign 4

    .section .data.boot, "aw"
    .balign 8
    .global KERNDB_BOOT_TSC
KERNDB_BOOT_TSC:
    .quad 0
    .balign 16
gdt64:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
gdt64_ptr:
    .word gdt64_ptr - gdt64 - 1
    .long gdt64

    .section .bss.boot, "aw", @nobits
    .balign 4096
    .global KERNDB_BOOT_PD
    .global KERNDB_STACK_BOTTOM
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
KERNDB_BOOT_PD:
    .skip 4096 * 4
boot_stack_bottom:
KERNDB_STACK_BOTTOM:
    .skip 4 * 1024 * 1024
boot_stack_top:

    .section .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov esi, ebx
    rdtsc
    mov dword ptr [KERNDB_BOOT_TSC], eax
    mov dword ptr [KERNDB_BOOT_TSC + 4], edx

    mov edi, offset __bss_start
    mov ecx, offset __bss_end
    sub ecx, edi
    xor eax, eax
    rep stosb

    mov eax, offset boot_pdpt
    or eax, 3
    mov dword ptr [boot_pml4], eax
    mov eax, offset boot_pd
    or eax, 3
    mov dword ptr [boot_pdpt], eax
    add eax, 4096
    mov dword ptr [boot_pdpt + 8], eax
    add eax, 4096
    mov dword ptr [boot_pdpt + 16], eax
    add eax, 4096
    mov dword ptr [boot_pdpt + 24], eax

    mov edi, offset boot_pd
    mov eax, 0x83
    mov ecx, 2048
2:
    mov dword ptr [edi], eax
    mov dword ptr [edi + 4], 0
    add eax, 0x200000
    add edi, 8
    dec ecx
    jnz 2b

    mov eax, cr4
    or eax, 0x20
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, 0xC0000080
    rdmsr
    or eax, 0x100
    wrmsr
    mov eax, cr0
    or eax, 0x80000001
    mov cr0, eax

    lgdt [gdt64_ptr]
    mov eax, offset pvh_start64
    push 0x08
    push eax
    retf

    .code64
pvh_start64:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    movabs rsp, offset boot_stack_top
    xor ebp, ebp
    mov edi, esi
    call {entry}
3:
    cli
    hlt
    jmp 3b
    "#,
    entry = sym pvh_rust_entry,
);

unsafe extern "C" {
    static KERNDB_BOOT_TSC: u64;
    static __image_start: u8;
    static __image_end: u8;
}

unsafe extern "Rust" {
    /// Defined by the appliance: everything after the machine is set up.
    fn appliance_main(machine: Machine) -> !;
}

const HVM_START_MAGIC: u32 = 0x336e_c578;

/// `struct hvm_start_info` from Xen's public headers (arch-x86/hvm/start_info.h).
#[repr(C)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct MemmapEntry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
    pub reserved: u32,
}

/// What the kernel found and set up, handed to the appliance.
pub struct Machine {
    pub cmdline: String,
    /// TSC at the PVH entry, for boot-to-ready time.
    pub boot_tsc: u64,
    pub ram_bytes: u64,
    pub heap_bytes: usize,
    pub image_bytes: usize,
    pub blk: Option<virtio::Blk>,
    pub net: Option<crate::net::VirtioNetDevice>,
    pub acpi: Option<crate::acpi::Acpi>,
}

/// The local APIC timer's period: the longest an idle machine sleeps before looking at its
/// devices again.
const TIMER_PERIOD_US: u64 = 1000;

/// Reads a NUL-terminated string at a physical address (identity-mapped).
///
/// # Safety
/// `paddr` must point at a readable NUL-terminated string in the first 4 GiB.
unsafe fn c_string(paddr: u64) -> String {
    let mut s = String::new();
    let mut p = paddr as *const u8;
    // SAFETY: the caller promises a terminated string; 4096 bounds a corrupt one.
    unsafe {
        while *p != 0 && s.len() < 4096 {
            s.push(*p as char);
            p = p.add(1);
        }
    }
    s
}

extern "C" fn pvh_rust_entry(start_info: u32) -> ! {
    console::init();
    // SAFETY: the PVH ABI passes a valid hvm_start_info in ebx; it sits in low memory that
    // nothing overwrites before we finish reading it here.
    let info = unsafe { &*(start_info as usize as *const StartInfo) };
    if info.magic != HVM_START_MAGIC {
        crate::println!("kerndb: not started by a PVH loader (start info magic {:#x})", info.magic);
        crate::exit::exit_qemu(2);
    }
    if info.version < 1 || info.memmap_entries == 0 {
        crate::println!("kerndb: the loader gave no memory map (PVH start info version {})", info.version);
        crate::exit::exit_qemu(2);
    }
    // SAFETY: version >= 1 guarantees memmap_paddr/entries describe an array of entries.
    let memmap = unsafe { core::slice::from_raw_parts(info.memmap_paddr as usize as *const MemmapEntry, info.memmap_entries as usize) };
    // SAFETY: linker-defined symbols; only their addresses are used.
    let (image_start, image_end) = unsafe { (&__image_start as *const u8 as usize, &__image_end as *const u8 as usize) };
    let (ram_bytes, heap_bytes) = heap::init(memmap, image_end);
    // SAFETY: the loader's command line is a NUL-terminated string when the address is nonzero.
    let cmdline = if info.cmdline_paddr != 0 { unsafe { c_string(info.cmdline_paddr) } } else { String::new() };
    time::calibrate();
    console::init_log(log::LevelFilter::Info);
    crate::interrupts::init(TIMER_PERIOD_US);
    let acpi = crate::acpi::Acpi::find(info.rsdp_paddr);
    if acpi.is_none() {
        log::warn!("no ACPI tables: power-off and the power button are unavailable");
    }
    let mut root = pci::root();
    let (blk, net) = virtio::probe(&mut root);
    let machine = Machine {
        cmdline,
        boot_tsc: boot_tsc(),
        ram_bytes,
        heap_bytes,
        image_bytes: image_end - image_start,
        blk,
        net,
        acpi,
    };
    // SAFETY: the appliance defines `appliance_main` with exactly this signature.
    unsafe { appliance_main(machine) }
}

/// The TSC value at the PVH entry.
pub fn boot_tsc() -> u64 {
    // SAFETY: written once by the entry code before any Rust ran; only read afterwards.
    unsafe { core::ptr::read_volatile(&raw const KERNDB_BOOT_TSC) }
}

/// Start and end of the loaded image (its stack included).
pub fn image_range() -> (usize, usize) {
    // Linker-defined symbols: only their addresses are taken.
    (&raw const __image_start as usize, &raw const __image_end as usize)
}
