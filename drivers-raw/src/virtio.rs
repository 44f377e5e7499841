//! virtio-blk as a raw disk, over the `virtio-drivers` crate.
use platform::{BlockDevice, IoError, SECTOR_SIZE};
use virtio_drivers::device::blk::VirtIOBlk;
use virtio_drivers::transport::Transport;
use virtio_drivers::Hal;

/// The most bytes one request carries (larger reads and writes are split): 256 KiB, a size
/// every virtio-blk device takes in one descriptor.
const MAX_REQUEST: usize = 256 * 1024;

pub struct VirtioBlk<H: Hal, T: Transport> {
    dev: VirtIOBlk<H, T>,
    len: u64,
}

impl<H: Hal, T: Transport> VirtioBlk<H, T> {
    pub fn new(dev: VirtIOBlk<H, T>) -> Self {
        let len = dev.capacity() * SECTOR_SIZE as u64;
        VirtioBlk { dev, len }
    }
}

fn dev_err(e: virtio_drivers::Error) -> IoError {
    log::error!("virtio-blk: {e:?}");
    IoError::Device
}

impl<H: Hal, T: Transport> BlockDevice for VirtioBlk<H, T> {
    fn len(&self) -> u64 {
        self.len
    }
    fn read(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.check_range(offset, buf.len())?;
        for (i, part) in buf.chunks_mut(MAX_REQUEST).enumerate() {
            let at = offset + (i * MAX_REQUEST) as u64;
            self.dev.read_blocks((at / SECTOR_SIZE as u64) as usize, part).map_err(dev_err)?;
        }
        Ok(())
    }
    fn write(&mut self, offset: u64, buf: &[u8]) -> Result<(), IoError> {
        self.check_range(offset, buf.len())?;
        if self.dev.readonly() {
            return Err(IoError::Device);
        }
        for (i, part) in buf.chunks(MAX_REQUEST).enumerate() {
            let at = offset + (i * MAX_REQUEST) as u64;
            self.dev.write_blocks((at / SECTOR_SIZE as u64) as usize, part).map_err(dev_err)?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), IoError> {
        self.dev.flush().map_err(dev_err)
    }
}
