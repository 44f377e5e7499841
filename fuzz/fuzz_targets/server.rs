//! The whole session path: arbitrary client bytes, cut into arbitrary chunks, through the
//! protocol state machine, the serving loop (simple and extended protocol, COPY) and the SQL
//! engine on a memory disk. Any panic is a bug: in the image it would stop the machine.
#![no_main]
use appliance::server::{Server, Transport};
use appliance::Config;
use dbcore::{Database, Limits};
use drivers_raw::mem::MemDisk;
use libfuzzer_sys::fuzz_target;
use platform::Entropy;

struct Counter(u64);

impl Entropy for Counter {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (self.0 >> 56) as u8;
        }
    }
}

/// One connection whose client sends the fuzz input in chunks and reads everything.
struct OneClient<'a> {
    input: &'a [u8],
    accepted: bool,
    closed: bool,
    sent: usize,
}

impl Transport for OneClient<'_> {
    type Conn = u8;
    fn poll(&mut self, _now_us: u64) -> bool {
        false
    }
    fn accept(&mut self) -> Option<u8> {
        (!self.accepted).then(|| {
            self.accepted = true;
            1
        })
    }
    fn recv(&mut self, _c: u8, buf: &mut [u8]) -> Result<usize, ()> {
        if self.closed {
            return Err(());
        }
        // The first byte of each chunk says how long it is (1..=64).
        let Some((&len, rest)) = self.input.split_first() else { return Ok(0) };
        let n = (usize::from(len % 64) + 1).min(rest.len()).min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.input = &rest[n..];
        Ok(n)
    }
    fn send(&mut self, _c: u8, buf: &[u8]) -> Result<usize, ()> {
        if self.closed {
            return Err(());
        }
        self.sent += buf.len();
        Ok(buf.len())
    }
    fn close(&mut self, _c: u8) {
        self.closed = true;
    }
    fn wait(&mut self, _now_us: u64, _max_us: u64) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let mut cfg = Config::default();
    // Mostly trust, so that the input reaches the SQL engine; sometimes SCRAM.
    cfg.trust = mode % 8 != 0;
    cfg.max_message = 4096;
    // A small step budget, so that queries and writes yield and resume between steps.
    let limits = Limits { max_statement_bytes: 4096, max_result_rows: 10_000, cache_bytes: 1 << 20, step_rows: 64, ..Limits::default() };
    let Ok(db) = Database::open(MemDisk::new(2 << 20), limits) else { return };
    let mut entropy = Counter(u64::from(mode));
    let transport = OneClient { input, accepted: false, closed: false, sent: 0 };
    let mut server = Server::new(db, transport, &cfg, &mut entropy);
    let mut now = 0;
    for _ in 0..input.len() + 16 {
        now += 1000;
        server.step(now, &mut entropy);
    }
});
