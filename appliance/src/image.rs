//! The image's side of the appliance: from the machine the kernel set up to a serving loop.
extern crate alloc;

use appliance::server::Server;
use appliance::smolnet::SmolTransport;
use appliance::Config;
use dbcore::Database;
use kernel::entropy::CpuEntropy;
use kernel::time::TscClock;
use kernel::{println, Machine};
use platform::{BlockDevice, Clock, Entropy};

/// Called by the kernel once memory, the clock and the devices are up.
// SAFETY: the kernel declares this symbol with exactly this signature and calls it once.
#[unsafe(no_mangle)]
fn appliance_main(m: Machine) -> ! {
    let cfg = match Config::from_cmdline(&m.cmdline) {
        Ok(c) => c,
        Err(e) => {
            println!("kerndb: bad kernel command line: {e}");
            kernel::exit::exit_qemu(2);
        }
    };
    log::set_max_level(cfg.log_level);
    println!(
        "kerndb {}: RAM {} MiB, heap {} MiB, image {} KiB, TSC {} MHz",
        env!("CARGO_PKG_VERSION"),
        m.ram_bytes >> 20,
        m.heap_bytes >> 20,
        m.image_bytes >> 10,
        kernel::time::tsc_mhz()
    );
    match cfg.selftest.as_deref() {
        Some("panic") => panic!("selftest=panic on the command line"),
        Some("pagefault") => kernel::exit::selftest_page_fault(),
        Some("stackoverflow") => kernel::exit::selftest_stack_overflow(),
        _ => {}
    }
    let Some(blk) = m.blk else {
        println!("kerndb: no virtio-blk disk found; attach one (-drive if=none,id=d0,file=disk.img,format=raw -device virtio-blk-pci,drive=d0)");
        kernel::exit::exit_qemu(2);
    };
    let Some(net) = m.net else {
        println!("kerndb: no virtio-net device found; attach one (-device virtio-net-pci,netdev=n0)");
        kernel::exit::exit_qemu(2);
    };
    println!("kerndb: disk {} MiB", blk.len() >> 20);
    let mut limits = cfg.limits();
    limits.memory = Some(|| {
        // Queries stop before the heap is full: what remains is for the buffer pool's
        // growth, connections and answers being sent.
        let (used, total) = kernel::heap::usage();
        (used, total - (total / 8).max(32 << 20).min(total / 2))
    });
    let mut db = match Database::open(blk, limits) {
        Ok(db) => db,
        Err(e) => {
            println!("kerndb: cannot open the database: {}", e.message);
            kernel::exit::exit_qemu(2);
        }
    };
    db.set_owner(&cfg.user);
    let clock = TscClock;
    let mut entropy = CpuEntropy::new();
    let mut seed = [0u8; 8];
    entropy.fill(&mut seed);
    let mac = net.mac();
    let transport = SmolTransport::new(net, mac, &cfg, clock.now_micros(), u64::from_le_bytes(seed));
    let mut server = Server::new(db, transport, &cfg, &mut entropy);
    server.set_memory_probe(|| {
        let (used, total) = kernel::heap::usage();
        Some((used as u64, total as u64))
    });
    if cfg.user == "kerndb" && cfg.password == "kerndb" {
        println!("kerndb: using the default development credentials kerndb / kerndb");
    }
    let ready = clock.now_micros();
    let addr = if cfg.dhcp { alloc::string::String::from("(address from DHCP)") } else { alloc::format!("{}", cfg.ip.address()) };
    println!("kerndb: ready: listening on {addr}:{} database kerndb (boot-to-ready {}.{:03} ms)", cfg.port, ready / 1000, ready % 1000);
    let acpi = m.acpi;
    let mut power_button = || acpi.is_some_and(|a| a.power_button());
    let why = server.run(&clock, &mut entropy, &mut power_button);
    println!("kerndb: stopped ({why:?}); powering off");
    match acpi {
        Some(a) => a.power_off(),
        None => kernel::exit::exit_qemu(0),
    }
}
