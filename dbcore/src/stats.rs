//! Counters of the running system, shown by the `kerndb_stats`, `kerndb_stat_activity` and
//! `pg_stat_activity` system views (docs/sql.md, "Statistics views").
//!
//! The storage engine keeps its own counters ([`crate::storage::StoreStats`]). What only the
//! host knows (connections, bytes and packets on the wire, memory) the serving loop writes
//! into a [`HostStats`] that it shares with the database; a query that names a view reads both
//! at that moment. Nothing is computed unless a view is queried.
use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::RefCell;

/// What the serving loop, the network and the kernel count.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostCounters {
    pub connections_accepted: u64,
    pub connections_refused: u64,
    /// Query messages (simple protocol) and Execute messages (extended protocol).
    pub queries: u64,
    /// Group-commit passes that flushed the log.
    pub group_syncs: u64,
    /// Of those, the flushes run in line (no other session had anything under way).
    pub inline_syncs: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Frames through the network device (virtio-net queues in the image, a TAP device).
    pub net_rx_packets: u64,
    pub net_tx_packets: u64,
    /// virtio-net receive interrupts (MSI-X) in the image.
    pub net_interrupts: u64,
    /// Serving-loop passes, and the passes that found nothing to do and slept.
    pub loop_passes: u64,
    pub idle_waits: u64,
}

/// One session, as `kerndb_stat_activity` shows it.
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    pub pid: u32,
    pub user: String,
    /// `starting`, `idle`, `active`, `idle in transaction`, `idle in transaction (aborted)`,
    /// `waiting` (for the write transaction).
    pub state: &'static str,
    /// When the connection opened and when its last query started (µs since 2000-01-01).
    pub backend_start: i64,
    pub query_start: Option<i64>,
    pub queries: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// The last query's text, cut at [`QUERY_TEXT_MAX`] bytes.
    pub query: String,
}

/// Longest query text kept per session.
pub const QUERY_TEXT_MAX: usize = 1024;

/// Memory as the host sees it: (bytes in use, bytes available in all), if it can tell.
pub type MemoryProbe = fn() -> Option<(u64, u64)>;

#[derive(Debug, Default)]
pub struct HostStats {
    pub counters: HostCounters,
    pub sessions: BTreeMap<u32, SessionStats>,
    /// When the server started (µs since 2000-01-01), for `uptime_ms`.
    pub started: i64,
    pub memory: Option<MemoryProbe>,
}

impl HostStats {
    pub fn session(&mut self, pid: u32) -> Option<&mut SessionStats> {
        self.sessions.get_mut(&pid)
    }

    /// Records that session `pid` started running `sql` at `now`.
    pub fn query_started(&mut self, pid: u32, sql: &str, now: i64) {
        self.counters.queries += 1;
        if let Some(s) = self.sessions.get_mut(&pid) {
            s.queries += 1;
            s.state = "active";
            s.query_start = Some(now);
            s.query.clear();
            let mut end = sql.len().min(QUERY_TEXT_MAX);
            while !sql.is_char_boundary(end) {
                end -= 1;
            }
            s.query.push_str(&sql[..end]);
        }
    }
}

/// Shared between the serving loop (which writes) and the database (which reads when a view
/// is queried); both live on one thread.
pub type SharedHostStats = Rc<RefCell<HostStats>>;
