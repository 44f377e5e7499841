//! A block device in memory.
use alloc::vec;
use alloc::vec::Vec;
use platform::{BlockDevice, IoError};

pub struct MemDisk {
    bytes: Vec<u8>,
}

impl MemDisk {
    /// A zeroed disk of `len` bytes (rounded down to whole sectors).
    pub fn new(len: usize) -> Self {
        MemDisk { bytes: vec![0; len - len % platform::SECTOR_SIZE] }
    }
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }
}

impl BlockDevice for MemDisk {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.check_range(offset, buf.len())?;
        let start = offset as usize;
        buf.copy_from_slice(&self.bytes[start..start + buf.len()]);
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.check_range(offset, buf.len())?;
        let start = offset as usize;
        self.bytes[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        Ok(())
    }
    fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        self.check_range(offset, len).ok()?;
        let start = usize::try_from(offset).ok()?;
        self.bytes.get(start..start.checked_add(len)?)
    }
}
