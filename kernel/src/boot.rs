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

    .section .multiboot2, "a"
    .balign 8
mb2_header:
    .long 0xE85250D6
    .long 0
    .long mb2_header_end - mb2_header
    .long 0x100000000 - (0xE85250D6 + (mb2_header_end - mb2_header))
    .short 0
    .short 0
    .long 8
mb2_header_end:

    .section .data.boot, "aw"
    .balign 8
    .global KERNDB_BOOT_TSC
KERNDB_BOOT_TSC:
    .quad 0
    .global KERNDB_BOOT_MB2
KERNDB_BOOT_MB2:
    .long 0
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
    // Multiboot2 (GRUB, the ISO image): 32-bit protected mode, paging off, eax the magic,
    // ebx the boot information; no stack. Noted, then the PVH path continues.
    .global mb2_start32
mb2_start32:
    cli
    cmp eax, 0x36d76289
    jne 8f
    mov dword ptr [KERNDB_BOOT_MB2], ebx
    mov esp, offset boot_stack_top
    jmp pvh_start32
8:
    hlt
    jmp 8b

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
    static KERNDB_BOOT_MB2: u32;
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

/// What a loader told us, copied out of its structures before the heap claims free RAM.
struct BootInfo {
    memmap: [MemmapEntry; MAX_MEMMAP],
    entries: usize,
    cmdline: [u8; MAX_CMDLINE],
    cmdline_len: usize,
    rsdp_paddr: u64,
}

const MAX_MEMMAP: usize = 128;
const MAX_CMDLINE: usize = 4096;
const EMPTY_ENTRY: MemmapEntry = MemmapEntry { addr: 0, size: 0, kind: 0, reserved: 0 };

/// A copy of the RSDP that GRUB hands over inside its boot information (multiboot2 tags 14
/// and 15 carry the structure itself, not its address).
#[repr(C, align(16))]
struct RsdpCopy([u8; 64]);
static mut RSDP_COPY: RsdpCopy = RsdpCopy([0; 64]);

impl BootInfo {
    fn new() -> BootInfo {
        BootInfo { memmap: [EMPTY_ENTRY; MAX_MEMMAP], entries: 0, cmdline: [0; MAX_CMDLINE], cmdline_len: 0, rsdp_paddr: 0 }
    }

    /// Copies a NUL-terminated string at `paddr`.
    ///
    /// # Safety
    /// `paddr` must point at a readable NUL-terminated string in the first 4 GiB.
    unsafe fn set_cmdline(&mut self, paddr: u64) {
        let mut p = paddr as usize as *const u8;
        // SAFETY: the caller promises a terminated string; the buffer size bounds a bad one.
        unsafe {
            while *p != 0 && self.cmdline_len < MAX_CMDLINE {
                self.cmdline[self.cmdline_len] = *p;
                self.cmdline_len += 1;
                p = p.add(1);
            }
        }
    }

    /// The PVH start info (`hvm_start_info`).
    ///
    /// # Safety
    /// `addr` is what a PVH loader passed in ebx.
    unsafe fn pvh(addr: u32) -> BootInfo {
        // SAFETY: the PVH ABI passes a valid hvm_start_info in ebx, in low memory.
        let info = unsafe { &*(addr as usize as *const StartInfo) };
        if info.magic != HVM_START_MAGIC {
            crate::println!("kerndb: not started by a PVH or multiboot2 loader (start info magic {:#x})", info.magic);
            crate::exit::exit_qemu(2);
        }
        if info.version < 1 || info.memmap_entries == 0 {
            crate::println!("kerndb: the loader gave no memory map (PVH start info version {})", info.version);
            crate::exit::exit_qemu(2);
        }
        let mut b = BootInfo::new();
        // SAFETY: version >= 1 guarantees memmap_paddr/entries describe an array of entries.
        let memmap = unsafe { core::slice::from_raw_parts(info.memmap_paddr as usize as *const MemmapEntry, info.memmap_entries as usize) };
        for e in memmap.iter().take(MAX_MEMMAP) {
            b.memmap[b.entries] = *e;
            b.entries += 1;
        }
        if info.cmdline_paddr != 0 {
            // SAFETY: a nonzero cmdline_paddr names a NUL-terminated string.
            unsafe { b.set_cmdline(info.cmdline_paddr) };
        }
        b.rsdp_paddr = info.rsdp_paddr;
        b
    }

    /// The multiboot2 boot information: tags of (type u32, size u32, payload), 8-aligned.
    ///
    /// # Safety
    /// `addr` is what a multiboot2 loader passed in ebx.
    unsafe fn multiboot2(addr: u32) -> BootInfo {
        let mut b = BootInfo::new();
        let base = addr as usize;
        // SAFETY: the multiboot2 ABI passes the information structure in ebx: a u32 total
        // size, then tags until the end tag; every read below stays inside total size.
        unsafe {
            let total = core::ptr::read_unaligned(base as *const u32) as usize;
            let mut at = base + 8;
            while at + 8 <= base + total {
                let kind = core::ptr::read_unaligned(at as *const u32);
                let size = core::ptr::read_unaligned((at + 4) as *const u32) as usize;
                if kind == 0 || size < 8 || at + size > base + total {
                    break;
                }
                match kind {
                    1 => b.set_cmdline((at + 8) as u64),
                    6 => {
                        let entry_size = core::ptr::read_unaligned((at + 8) as *const u32) as usize;
                        let mut e = at + 16;
                        while entry_size >= 24 && e + 24 <= at + size && b.entries < MAX_MEMMAP {
                            b.memmap[b.entries] = core::ptr::read_unaligned(e as *const MemmapEntry);
                            b.entries += 1;
                            e += entry_size;
                        }
                    }
                    14 | 15 if b.rsdp_paddr == 0 || kind == 15 => {
                        let n = (size - 8).min(64);
                        let copy = &raw mut RSDP_COPY;
                        core::ptr::copy_nonoverlapping((at + 8) as *const u8, (*copy).0.as_mut_ptr(), n);
                        b.rsdp_paddr = copy as u64;
                    }
                    _ => {}
                }
                at += size.next_multiple_of(8);
            }
        }
        if b.entries == 0 {
            crate::println!("kerndb: the multiboot2 loader gave no memory map");
            crate::exit::exit_qemu(2);
        }
        b
    }
}

extern "C" fn pvh_rust_entry(start_info: u32) -> ! {
    console::init();
    // SAFETY: written by the entry code before any Rust ran; only read here.
    let mb2 = unsafe { core::ptr::read_volatile(&raw const KERNDB_BOOT_MB2) };
    // SAFETY: the entry code passes what the loader passed: multiboot2 information when
    // mb2_start32 noted it, else the PVH start info.
    let boot = unsafe { if mb2 != 0 { BootInfo::multiboot2(mb2) } else { BootInfo::pvh(start_info) } };
    // SAFETY: linker-defined symbols; only their addresses are used.
    let (image_start, image_end) = unsafe { (&__image_start as *const u8 as usize, &__image_end as *const u8 as usize) };
    let (ram_bytes, heap_bytes) = heap::init(&boot.memmap[..boot.entries], image_end);
    let cmdline = String::from_utf8_lossy(&boot.cmdline[..boot.cmdline_len]).into_owned();
    if mb2 != 0 {
        crate::println!("kerndb: started by a multiboot2 loader (GRUB)");
    }
    time::calibrate();
    console::init_log(log::LevelFilter::Info);
    crate::interrupts::init(TIMER_PERIOD_US);
    let acpi = crate::acpi::Acpi::find(boot.rsdp_paddr);
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
