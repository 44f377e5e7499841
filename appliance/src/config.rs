//! Configuration: the kernel command line in the image (`key=value` words, in the spirit of
//! rumprun's boot config), flags in hosted mode. Every key has a default that suits a small
//! machine; README.md lists them.
use alloc::format;
use alloc::string::{String, ToString};

use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

#[derive(Debug, Clone)]
pub struct Config {
    pub user: String,
    pub password: String,
    /// `trust`: no password at all (only when asked for); `scram`: SCRAM-SHA-256.
    pub trust: bool,
    pub port: u16,
    pub ip: Ipv4Cidr,
    /// `ip=dhcp`: address, prefix and gateway come from a DHCP server (`ip` and `gw` unused).
    pub dhcp: bool,
    pub gateway: Option<Ipv4Address>,
    pub max_connections: usize,
    /// Largest protocol message accepted, in bytes.
    pub max_message: usize,
    pub log_level: log::LevelFilter,
    /// The buffer pool, in MiB.
    pub cache_mib: usize,
    /// Memory one query may take, in MiB (past it: 53200).
    pub work_mem_mib: usize,
    /// Seconds an authenticated session may sit idle outside a transaction (0: forever).
    pub idle_session_timeout: u64,
    /// Seconds a client has to finish start-up and authentication.
    pub authentication_timeout: u64,
    /// Self-test hooks for the boot tests (`selftest=panic`).
    pub selftest: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            user: "kerndb".into(),
            password: "kerndb".into(),
            trust: false,
            port: 5432,
            ip: Ipv4Cidr::new(Ipv4Address::new(10, 0, 2, 15), 24),
            dhcp: false,
            gateway: Some(Ipv4Address::new(10, 0, 2, 2)),
            max_connections: 64,
            max_message: 1 << 20,
            log_level: log::LevelFilter::Info,
            cache_mib: 64,
            work_mem_mib: 2048,
            idle_session_timeout: 3600,
            authentication_timeout: 60,
            selftest: None,
        }
    }
}

impl Config {
    /// Applies one `key=value` setting.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let bad = || format!("invalid value for {key}: {value:?}");
        match key {
            "user" if !value.is_empty() => self.user = value.to_string(),
            "password" => self.password = value.to_string(),
            "auth" => {
                self.trust = match value {
                    "trust" => true,
                    "scram" | "scram-sha-256" => false,
                    _ => return Err(bad()),
                }
            }
            "port" => self.port = value.parse().map_err(|_| bad())?,
            "ip" if value == "dhcp" => self.dhcp = true,
            "ip" => {
                self.dhcp = false;
                let (a, p) = value.split_once('/').unwrap_or((value, "24"));
                let addr: Ipv4Address = a.parse().map_err(|_| bad())?;
                let prefix: u8 = p.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
                self.ip = Ipv4Cidr::new(addr, prefix);
            }
            "gw" | "gateway" => {
                self.gateway = if value == "none" { None } else { Some(value.parse().map_err(|_| bad())?) };
            }
            "max_connections" => self.max_connections = value.parse().ok().filter(|n| (1..=4096).contains(n)).ok_or_else(bad)?,
            "max_message" => self.max_message = value.parse().ok().filter(|n| (1024..=(1 << 30)).contains(n)).ok_or_else(bad)?,
            "log" => self.log_level = value.parse().map_err(|_| bad())?,
            "idle_session_timeout" => self.idle_session_timeout = value.parse().ok().filter(|n| *n <= 1 << 31).ok_or_else(bad)?,
            "authentication_timeout" => self.authentication_timeout = value.parse().ok().filter(|n| (1..=600).contains(n)).ok_or_else(bad)?,
            "work_mem" => self.work_mem_mib = value.parse().ok().filter(|n| (1..=1 << 20).contains(n)).ok_or_else(bad)?,
            "cache" => self.cache_mib = value.parse().ok().filter(|n| (1..=1 << 20).contains(n)).ok_or_else(bad)?,
            "selftest" => self.selftest = Some(value.to_string()),
            _ => return Err(format!("unknown setting {key:?}")),
        }
        Ok(())
    }

    /// The database's limits under this configuration.
    pub fn limits(&self) -> dbcore::Limits {
        dbcore::Limits { cache_bytes: self.cache_mib << 20, work_mem_bytes: self.work_mem_mib << 20, ..dbcore::Limits::default() }
    }

    /// Parses a kernel command line: whitespace-separated `key=value` words. Words without
    /// `=` are ignored (loaders put the image path there).
    pub fn from_cmdline(line: &str) -> Result<Config, String> {
        let mut c = Config::default();
        for word in line.split_whitespace() {
            if let Some((k, v)) = word.split_once('=') {
                c.set(k, v)?;
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_overrides_defaults() {
        let c = Config::from_cmdline("/kerndb.elf ip=192.168.1.5/16 gw=192.168.0.1 port=6000 user=u password=p log=debug").unwrap();
        assert_eq!(c.ip, Ipv4Cidr::new(Ipv4Address::new(192, 168, 1, 5), 16));
        assert_eq!(c.gateway, Some(Ipv4Address::new(192, 168, 0, 1)));
        assert_eq!((c.port, c.user.as_str(), c.password.as_str()), (6000, "u", "p"));
        assert_eq!(c.log_level, log::LevelFilter::Debug);
        assert!(!c.trust);
        assert!(!c.dhcp);
        assert!(Config::from_cmdline("ip=dhcp").unwrap().dhcp);
        assert!(Config::from_cmdline("ip=dhcpx").is_err());
        assert!(Config::from_cmdline("port=70000").is_err());
        assert!(Config::from_cmdline("bogus=1").is_err());
    }
}
