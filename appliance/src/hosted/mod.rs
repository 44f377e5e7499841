//! Hosted mode: kerndb as an ordinary Linux process. The database and the serving loop are the
//! image's; below them sit a file or block device (O_DIRECT), host TCP sockets, the host clock
//! and the host's entropy. Like rump kernels' "sockin", hosted mode may use the host's TCP
//! stack instead of smoltcp.
pub mod memory;
pub mod sockets;
pub mod tap;

use std::path::PathBuf;
use std::time::Instant;

use dbcore::Database;
use drivers_raw::file::FileDisk;
use platform::{Clock, Entropy};

use crate::config::Config;
use crate::server::Server;

pub struct HostClock(Instant);

impl HostClock {
    pub fn new() -> HostClock {
        HostClock(Instant::now())
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now_micros(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
    fn wall_micros(&self) -> Option<i64> {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?;
        i64::try_from(d.as_micros()).ok()
    }
}

/// The kernel's CSPRNG, read from /dev/urandom.
pub struct HostEntropy(std::fs::File);

impl HostEntropy {
    pub fn open() -> std::io::Result<HostEntropy> {
        std::fs::File::open("/dev/urandom").map(HostEntropy)
    }
}

impl Entropy for HostEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        use std::io::Read;
        // A host that cannot read /dev/urandom cannot authenticate anyone safely.
        self.0.read_exact(buf).expect("reading /dev/urandom");
    }
}

pub struct ServeArgs {
    pub disk: PathBuf,
    pub listen: String,
    /// Serve over smoltcp on this TAP device instead of host sockets.
    pub tap: Option<String>,
    /// Size of a disk file created on first use, in bytes.
    pub create_size: u64,
    /// Read and write the disk through the Linux page cache instead of O_DIRECT.
    pub buffered: bool,
    /// Poll without sleeping for this long after the last traffic (µs).
    pub spin_us: u64,
    pub config: Config,
}

/// `--spin-us` unless given: about three of this machine's round trips to a sleeping thread.
const DEFAULT_SPIN_US: u64 = 1000;

const USAGE: &str = "usage: kerndb serve --disk PATH [--listen ADDR] [--user U] [--password P]
                    [--auth scram|trust] [--size MIB] [--max-connections N]
                    [--max-message BYTES] [--cache MIB] [--idle-timeout SECONDS]
                    [--auth-timeout SECONDS] [--work-mem MIB] [--log LEVEL]
                    [--io direct|buffered] [--spin-us N]
                    [--tap NAME [--ip ADDR/PREFIX] [--gw ADDR|none] [--port N]]

  --disk PATH         a file or block device; an absent or empty file is formatted
  --listen ADDR       address to listen on (default 127.0.0.1:5432)
  --user, --password  the one role (default kerndb / kerndb)
  --auth              scram (default) or trust (no password: development only)
  --size MIB          size of a disk file created on first use (default 1024)
  --max-connections   client limit (default 64); more get SQLSTATE 53300
  --max-message       largest protocol message in bytes (default 1048576)
  --cache MIB         buffer pool size (default 64)
  --work-mem MIB      memory one query may take (default 2048); past it SQLSTATE 53200
  --idle-timeout S    close sessions idle outside a transaction for S seconds (default 3600;
                      0: never)
  --auth-timeout S    seconds to finish start-up and authentication (default 60)
  --log LEVEL         error, warn, info (default), debug, trace
  --io MODE           direct (default): the disk is opened with O_DIRECT, so every page
                      kerndb does not cache is a device read, as on bare metal; buffered: reads
                      and writes go through the Linux page cache (commits still fdatasync)
  --spin-us N         after the last network traffic, poll for N microseconds before sleeping
                      (default 1000): a client's next request is answered without the cost
                      of waking a sleeping thread; 0 sleeps at once
  --tap NAME          serve over kerndb's own TCP/IP stack (smoltcp, as in the image) on the
                      TAP device NAME instead of host sockets; --listen is not used
  --ip ADDR/PREFIX    with --tap: the address on the TAP link (default 10.0.2.15/24), or dhcp
  --gw ADDR|none      with --tap: default gateway (default 10.0.2.2)
  --port N            with --tap: the port (default 5432)";

pub fn parse_args(args: &[String]) -> Result<ServeArgs, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("serve") => {}
        Some("-h" | "--help" | "help") | None => return Err(USAGE.into()),
        Some(other) => return Err(format!("unknown command {other:?}\n{USAGE}")),
    }
    let mut disk = None;
    let mut listen = String::from("127.0.0.1:5432");
    let mut tap = None;
    let mut create_size = 1024u64 << 20;
    let mut buffered = false;
    let mut spin_us = DEFAULT_SPIN_US;
    let mut config = Config::default();
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--disk" => disk = Some(PathBuf::from(value)),
            "--listen" => listen = value.clone(),
            "--tap" => tap = Some(value.clone()),
            "--ip" => config.set("ip", value)?,
            "--gw" => config.set("gw", value)?,
            "--port" => config.set("port", value)?,
            "--io" => {
                buffered = match value.as_str() {
                    "direct" => false,
                    "buffered" => true,
                    other => return Err(format!("--io: direct or buffered, not {other:?}")),
                }
            }
            "--spin-us" => spin_us = value.parse::<u64>().ok().filter(|n| *n <= 1_000_000).ok_or("--spin-us: microseconds, at most 1000000")?,
            "--size" => create_size = value.parse::<u64>().ok().filter(|m| *m >= 1).ok_or("--size: a number of MiB")? << 20,
            "--user" => config.set("user", value)?,
            "--password" => config.set("password", value)?,
            "--auth" => config.set("auth", value)?,
            "--max-connections" => config.set("max_connections", value)?,
            "--max-message" => config.set("max_message", value)?,
            "--log" => config.set("log", value)?,
            "--cache" => config.set("cache", value)?,
            "--work-mem" => config.set("work_mem", value)?,
            "--idle-timeout" => config.set("idle_session_timeout", value)?,
            "--auth-timeout" => config.set("authentication_timeout", value)?,
            other => return Err(format!("unknown flag {other:?}\n{USAGE}")),
        }
    }
    let disk = disk.ok_or_else(|| format!("--disk is required\n{USAGE}"))?;
    Ok(ServeArgs { disk, listen, tap, create_size, buffered, spin_us, config })
}

pub fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = match parse_args(&args) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return std::process::ExitCode::from(2);
        }
    };
    env_logger::Builder::new()
        .filter_level(a.config.log_level)
        .parse_env("KERNDB_LOG")
        .format_timestamp_millis()
        .init();
    let clock = HostClock::new();
    let mut entropy = match HostEntropy::open() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("kerndb: cannot open /dev/urandom: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let opened = if a.buffered { FileDisk::open_buffered(&a.disk, a.create_size) } else { FileDisk::open(&a.disk, a.create_size) };
    let mut disk = match opened {
        Ok(d) => d,
        Err(e) => {
            eprintln!("kerndb: cannot open disk {}: {e}", a.disk.display());
            return std::process::ExitCode::from(1);
        }
    };
    // Log flushes run on a thread of their own while the loop serves (the TAP transport
    // has no poll set to wake, so it flushes in line).
    let waker = if a.tap.is_none() {
        match disk.flush_waker() {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!("no background flushes ({e}); every flush waits");
                None
            }
        }
    } else {
        None
    };
    log::info!("disk {}: {} MiB, O_DIRECT {}", a.disk.display(), disk_len(&disk) >> 20, if disk.is_direct() { "on" } else { "off" });
    let mut limits = a.config.limits();
    limits.memory = Some(memory::gauge);
    let mut db = match Database::open(disk, limits) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("kerndb: cannot open the database on {}: {}", a.disk.display(), e.message);
            return std::process::ExitCode::from(1);
        }
    };
    db.set_owner(&a.config.user);
    if let Some(name) = &a.tap {
        let dev = match tap::TapDevice::open(name) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("kerndb: cannot open TAP device {name}: {e} (create it with `ip tuntap add dev {name} mode tap`, as root)");
                return std::process::ExitCode::from(1);
            }
        };
        let mut seed = [0u8; 8];
        entropy.fill(&mut seed);
        let transport = crate::smolnet::SmolTransport::new(dev, tap::MAC, &a.config, clock.now_micros(), u64::from_le_bytes(seed));
        let addr = if a.config.dhcp { String::from("(address from DHCP)") } else { a.config.ip.address().to_string() };
        let where_ = format!("{addr}:{} on TAP device {name} (smoltcp)", a.config.port);
        return serve(db, transport, &a.config, &clock, &mut entropy, &where_);
    }
    let mut transport = match sockets::SocketTransport::bind(&a.listen) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("kerndb: cannot listen on {}: {e}", a.listen);
            return std::process::ExitCode::from(1);
        }
    };
    if let Some(w) = waker {
        transport.set_waker(w);
    }
    transport.set_spin(a.spin_us);
    let addr = transport.local_addr();
    serve(db, transport, &a.config, &clock, &mut entropy, &addr.to_string())
}

/// Serves over `transport` until stopped.
fn serve<T: crate::server::Transport>(db: Database<FileDisk>, transport: T, config: &Config, clock: &HostClock, entropy: &mut HostEntropy, addr: &str) -> std::process::ExitCode {
    let mut server = Server::new(db, transport, config, entropy);
    server.set_memory_probe(|| {
        let (used, total) = memory::usage();
        Some((used as u64, total as u64))
    });
    if config.user == "kerndb" && config.password == "kerndb" {
        println!("kerndb: using the default development credentials kerndb / kerndb");
    }
    println!("kerndb: listening on {addr}, database kerndb; connect with:");
    println!("  psql 'postgresql://{}@{}/kerndb'", config.user, addr.split(' ').next().unwrap_or(addr));
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let why = server.run(clock, entropy, &mut || false);
    println!("kerndb: stopped ({why:?})");
    std::process::ExitCode::SUCCESS
}

fn disk_len(d: &FileDisk) -> u64 {
    platform::BlockDevice::len(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn io_mode_is_direct_unless_asked() {
        assert!(!parse_args(&args("serve --disk /tmp/x")).unwrap().buffered);
        assert!(!parse_args(&args("serve --disk /tmp/x --io direct")).unwrap().buffered);
        assert!(parse_args(&args("serve --disk /tmp/x --io buffered")).unwrap().buffered);
        assert!(parse_args(&args("serve --disk /tmp/x --io fast")).err().unwrap().contains("direct or buffered"));
    }

    #[test]
    fn spin_time_has_a_default_and_a_limit() {
        assert_eq!(parse_args(&args("serve --disk /tmp/x")).unwrap().spin_us, DEFAULT_SPIN_US);
        assert_eq!(parse_args(&args("serve --disk /tmp/x --spin-us 0")).unwrap().spin_us, 0);
        assert!(parse_args(&args("serve --disk /tmp/x --spin-us 2000000")).err().unwrap().contains("at most"));
        assert!(parse_args(&args("serve --disk /tmp/x --spin-us -1")).err().unwrap().contains("microseconds"));
    }
}
