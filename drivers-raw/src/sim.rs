//! A simulated disk that models exactly what the storage engine is allowed to assume
//! (docs/storage-format.md): flushed writes are durable; at a crash every unflushed write is
//! kept, lost, or torn sector by sector, chosen by a seeded generator so that a failing run can
//! be replayed. It can also fail I/O after a countdown.
use alloc::vec::Vec;
use platform::{BlockDevice, IoError, SECTOR_SIZE};

/// xorshift64*: small, deterministic, good enough to choose crash outcomes. Written here
/// because the simulator must not depend on std or on a global generator.
#[derive(Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

pub struct SimDisk {
    durable: Vec<u8>,
    /// Writes since the last flush, oldest first.
    pending: Vec<(u64, Vec<u8>)>,
    /// Current contents as seen by reads (durable plus pending).
    visible: Vec<u8>,
    /// Fail every operation once this many more have succeeded (None: never).
    fail_after: Option<u64>,
    pub writes: u64,
    pub flushes: u64,
}

impl SimDisk {
    pub fn new(len: usize) -> Self {
        let len = len - len % SECTOR_SIZE;
        SimDisk {
            durable: alloc::vec![0; len],
            pending: Vec::new(),
            visible: alloc::vec![0; len],
            fail_after: None,
            writes: 0,
            flushes: 0,
        }
    }

    /// From now on, `ops` more reads/writes/flushes succeed and then every one fails.
    pub fn fail_after(&mut self, ops: u64) {
        self.fail_after = Some(ops);
    }

    /// Number of writes not yet made durable by a flush.
    pub fn unflushed(&self) -> usize {
        self.pending.len()
    }

    /// The disk as a machine would find it after losing power now: each unflushed write is
    /// applied whole, dropped, or applied to a random subset of its sectors, in its order.
    pub fn crash(&self, rng: &mut SimRng) -> SimDisk {
        let mut bytes = self.durable.clone();
        for (offset, data) in &self.pending {
            let off = *offset as usize;
            match rng.below(3) {
                0 => {}
                1 => bytes[off..off + data.len()].copy_from_slice(data),
                _ => {
                    for (i, sector) in data.chunks(SECTOR_SIZE).enumerate() {
                        if rng.below(2) == 0 {
                            let s = off + i * SECTOR_SIZE;
                            bytes[s..s + sector.len()].copy_from_slice(sector);
                        }
                    }
                }
            }
        }
        SimDisk {
            visible: bytes.clone(),
            durable: bytes,
            pending: Vec::new(),
            fail_after: None,
            writes: 0,
            flushes: 0,
        }
    }

    /// Flips one bit of the durable and visible contents (bit rot).
    pub fn flip_bit(&mut self, byte: usize, bit: u8) {
        self.durable[byte] ^= 1 << (bit % 8);
        self.visible[byte] ^= 1 << (bit % 8);
    }

    fn charge(&mut self) -> Result<(), IoError> {
        match &mut self.fail_after {
            Some(0) => Err(IoError::Device),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl BlockDevice for SimDisk {
    fn len(&self) -> u64 {
        self.durable.len() as u64
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.check_range(offset, buf.len())?;
        self.charge()?;
        let s = offset as usize;
        buf.copy_from_slice(&self.visible[s..s + buf.len()]);
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.check_range(offset, buf.len())?;
        self.charge()?;
        let s = offset as usize;
        self.visible[s..s + buf.len()].copy_from_slice(buf);
        self.pending.push((offset, buf.to_vec()));
        self.writes += 1;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.charge()?;
        for (offset, data) in self.pending.drain(..) {
            let s = offset as usize;
            self.durable[s..s + data.len()].copy_from_slice(&data);
        }
        self.flushes += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unflushed_writes_can_be_lost_flushed_ones_cannot() {
        let mut d = SimDisk::new(8 * SECTOR_SIZE);
        d.write(0, &[1; SECTOR_SIZE]).unwrap();
        d.flush().unwrap();
        d.write(SECTOR_SIZE as u64, &[2; SECTOR_SIZE]).unwrap();
        let mut lost = false;
        for seed in 0..32 {
            let mut c = d.crash(&mut SimRng::new(seed));
            let mut b = [0u8; SECTOR_SIZE];
            c.read(0, &mut b).unwrap();
            assert_eq!(b, [1; SECTOR_SIZE]);
            c.read(SECTOR_SIZE as u64, &mut b).unwrap();
            lost |= b == [0; SECTOR_SIZE];
        }
        assert!(lost, "some crash should lose the unflushed write");
    }

    #[test]
    fn injected_failure_is_reported() {
        let mut d = SimDisk::new(4 * SECTOR_SIZE);
        d.fail_after(1);
        d.write(0, &[0; SECTOR_SIZE]).unwrap();
        assert_eq!(d.flush(), Err(IoError::Device));
    }
}
