//! Just enough ACPI to power off and to notice the power button: the FADT's PM1 blocks, the
//! S5 sleep type from the DSDT, and ACPI mode. The power button is polled (its status bit in
//! PM1a_STS), not taken as an SCI interrupt.
use crate::arch::{inb, inw, outb, outw};

#[derive(Debug, Clone, Copy)]
pub struct Acpi {
    pm1a_evt: u16,
    pm1_evt_len: u8,
    pm1a_cnt: u16,
    slp_typ_s5: u16,
}

const PWRBTN: u16 = 1 << 8;
const SLP_EN: u16 = 1 << 13;

/// Reads `len` bytes at a physical address.
///
/// # Safety
/// The range must be identity-mapped memory (ACPI tables live below 4 GiB under QEMU).
unsafe fn bytes(paddr: u64, len: usize) -> &'static [u8] {
    // SAFETY: the caller promises the range is mapped and holds ACPI data.
    unsafe { core::slice::from_raw_parts(paddr as usize as *const u8, len) }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// A whole SDT (header and body) at `paddr`, if its checksum is right.
unsafe fn table(paddr: u64) -> Option<&'static [u8]> {
    if paddr == 0 || paddr >= 1 << 32 {
        return None;
    }
    // SAFETY: caller passes a table address taken from the RSDP chain, below 4 GiB.
    let header = unsafe { bytes(paddr, 36) };
    let len = u32_at(header, 4)? as usize;
    if !(36..=1 << 20).contains(&len) {
        return None;
    }
    // SAFETY: as above, for the length the header gives.
    let t = unsafe { bytes(paddr, len) };
    (t.iter().fold(0u8, |a, &b| a.wrapping_add(b)) == 0).then_some(t)
}

impl Acpi {
    /// Finds the FADT through the RSDP the PVH loader passed.
    pub fn find(rsdp_paddr: u64) -> Option<Acpi> {
        if rsdp_paddr == 0 || rsdp_paddr >= 1 << 32 {
            return None;
        }
        // SAFETY: the loader gives the RSDP's physical address; 36 bytes cover revision 2.
        let rsdp = unsafe { bytes(rsdp_paddr, 36) };
        if &rsdp[..8] != b"RSD PTR " {
            return None;
        }
        let (root, entry) = if rsdp[15] >= 2 && u64_at(rsdp, 24)? != 0 { (u64_at(rsdp, 24)?, 8) } else { (u32_at(rsdp, 16)? as u64, 4) };
        // SAFETY: root table address from a valid RSDP.
        let root = unsafe { table(root)? };
        let fadt = root[36..].chunks_exact(entry).find_map(|e| {
            let p = if entry == 8 { u64_at(e, 0)? } else { u32_at(e, 0)? as u64 };
            // SAFETY: entry of the root table.
            let t = unsafe { table(p)? };
            (&t[..4] == b"FACP").then_some(t)
        })?;
        let pm1a_evt = u32_at(fadt, 56)? as u16;
        let pm1a_cnt = u32_at(fadt, 64)? as u16;
        let pm1_evt_len = *fadt.get(88)?;
        let smi_cmd = u32_at(fadt, 48)? as u16;
        let acpi_enable = *fadt.get(52)?;
        // SAFETY: the DSDT address comes from a valid FADT.
        let slp_typ_s5 = unsafe { table(u32_at(fadt, 40)? as u64) }.and_then(s5_sleep_type).unwrap_or(0);
        if pm1a_evt == 0 || pm1a_cnt == 0 {
            return None;
        }
        // Enter ACPI mode if the firmware left the machine in legacy mode.
        if inw(pm1a_cnt) & 1 == 0 && smi_cmd != 0 && acpi_enable != 0 {
            outb(smi_cmd, acpi_enable);
            for _ in 0..1_000_000 {
                if inw(pm1a_cnt) & 1 != 0 {
                    break;
                }
            }
        }
        let a = Acpi { pm1a_evt, pm1_evt_len, pm1a_cnt, slp_typ_s5 };
        // Power button: clear a stale status, enable the event so that pressing sets it.
        outw(pm1a_evt, PWRBTN);
        let en = pm1a_evt + (pm1_evt_len / 2) as u16;
        outw(en, inw(en) | PWRBTN);
        log::debug!("ACPI: {a:?}");
        Some(a)
    }

    /// True once the power button was pressed (QEMU: `system_powerdown`).
    pub fn power_button(&self) -> bool {
        inw(self.pm1a_evt) & PWRBTN != 0
    }

    /// Enters S5: QEMU exits with status 0.
    pub fn power_off(&self) -> ! {
        let _ = self.pm1_evt_len;
        outw(self.pm1a_cnt, (self.slp_typ_s5 << 10) | SLP_EN);
        for _ in 0..1_000_000 {
            let _ = inb(0x80);
        }
        crate::println!("kerndb: ACPI power-off did not take effect");
        crate::exit::exit_qemu(4)
    }
}

/// The first value of the DSDT's `_S5_` package: `_S5_` PackageOp PkgLength NumElements then
/// a BytePrefix value, Zero or One.
fn s5_sleep_type(dsdt: &[u8]) -> Option<u16> {
    let at = dsdt.windows(4).position(|w| w == b"_S5_")?;
    let mut i = at + 4;
    if *dsdt.get(i)? != 0x12 {
        return None;
    }
    i += 1;
    let lead = *dsdt.get(i)?;
    i += 1 + (lead >> 6) as usize; // PkgLength: extra bytes in the top two bits
    i += 1; // NumElements
    match *dsdt.get(i)? {
        0x0a => dsdt.get(i + 1).map(|&v| v as u16),
        0x00 => Some(0),
        0x01 => Some(1),
        _ => None,
    }
}
