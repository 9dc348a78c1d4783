//! The chaos rehearsal (`warehouse pipeline --chaos SEED`): faults injected
//! into the local pipeline while it runs, to watch that nothing is lost or
//! counted twice. A seed plans them (which, and at which loader invocation
//! or backfill invocation); when each lands still depends on timing.
//!
//! - A loader process killed with SIGKILL while its batch's transaction is
//!   open, and replaced (as Lambda replaces a dead container); the
//!   invocation fails, so the whole batch comes back after the visibility
//!   timeout.
//! - A loader's database connection killed on the server (`KILL
//!   CONNECTION`) while its batch's transaction is open.
//! - A batch delivered twice to its loader, as SQS's at-least-once delivery may.
//! - A backfill invocation killed mid-way; invoked again, it resumes from
//!   its last checkpoint.
//!
//! A loader's connections are told apart by their client ports (the
//! loaders connect over TCP in a rehearsal), matched with the sockets its
//! process holds in Linux's /proc.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use mysql::prelude::Queryable;

use crate::local::lock;
use crate::processes::FunctionProcesses;

/// How often an armed fault looks for its loader's open transaction.
const POLL: Duration = Duration::from_millis(5);

/// A fault injected into one loader invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoaderFault {
    KillProcess,
    KillConnection,
    DeliverTwice,
}

/// Counts of faults, by kind (what `warehouse pipeline --chaos` prints).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultCounts {
    pub loader_killed: u64,
    pub connection_killed: u64,
    pub delivered_twice: u64,
    pub backfill_killed: u64,
}

/// What a seed plans: each loader fault at a loader invocation (counted
/// over all loaders, from 1), and the backfill invocation to kill with the
/// delay after which it is killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub loader_faults: Vec<(u64, LoaderFault)>,
    pub backfill_kill: (u32, Duration),
}

impl Plan {
    /// One to three faults of each loader kind between the 3rd and the 60th
    /// loader invocation (the sample takes about 150), and one backfill kill
    /// from its 2nd invocation on (the first has no checkpoint to resume).
    pub fn from_seed(seed: u64) -> Plan {
        let mut random = SplitMix64(seed);
        let mut loader_faults = Vec::new();
        for fault in [
            LoaderFault::KillProcess,
            LoaderFault::KillConnection,
            LoaderFault::DeliverTwice,
        ] {
            for _ in 0..1 + random.below(3) {
                loader_faults.push((3 + random.below(58), fault));
            }
        }
        loader_faults.sort_by_key(|(at, _)| *at);
        let invocation = 2 + random.below(4) as u32;
        let delay = Duration::from_millis(30 + random.below(200));
        Plan {
            loader_faults,
            backfill_kill: (invocation, delay),
        }
    }

    pub fn counts(&self) -> FaultCounts {
        let of = |kind| {
            self.loader_faults
                .iter()
                .filter(|(_, f)| *f == kind)
                .count() as u64
        };
        FaultCounts {
            loader_killed: of(LoaderFault::KillProcess),
            connection_killed: of(LoaderFault::KillConnection),
            delivered_twice: of(LoaderFault::DeliverTwice),
            backfill_killed: 1,
        }
    }
}

/// SplitMix64: a few lines, and the same plan from a seed on every
/// platform and release (unlike `rand`'s `StdRng`).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What `warehouse pipeline --chaos` reports.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChaosReport {
    pub seed: u64,
    /// Injected; a planned fault whose moment never came (a short export)
    /// is not.
    pub faults: FaultCounts,
    pub planned: FaultCounts,
    /// Messages in the batches delivered twice.
    pub messages_delivered_twice: u64,
}

/// The faults of a running rehearsal.
pub struct Chaos {
    seed: u64,
    planned: FaultCounts,
    /// Loader faults not injected yet, by invocation; one whose invocation
    /// ended before it could strike waits for the next one.
    pending: Mutex<Vec<(u64, LoaderFault)>>,
    backfill_kill: Mutex<Option<(u32, Duration)>>,
    invocations: AtomicU64,
    injected: Mutex<(FaultCounts, u64)>,
    functions: Arc<Mutex<FunctionProcesses>>,
    /// The rehearsal's own connection to the server, to find and kill the
    /// loaders' connections (never itself).
    db: mysql::Pool,
}

impl Chaos {
    pub fn new(
        seed: u64,
        database_url: &shared::store::Secret,
        functions: Arc<Mutex<FunctionProcesses>>,
    ) -> anyhow::Result<Chaos> {
        let plan = Plan::from_seed(seed);
        let opts = mysql::Opts::from_url(database_url.expose())
            .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid MySQL URL"))?;
        // One connection at a time is all it uses.
        let constraints = mysql::PoolConstraints::new(0, 2).expect("0 <= 2");
        let opts = mysql::OptsBuilder::from_opts(opts)
            .pool_opts(mysql::PoolOpts::default().with_constraints(constraints));
        let db = mysql::Pool::new(opts).context("cannot connect to the database")?;
        Ok(Chaos {
            seed,
            planned: plan.counts(),
            pending: Mutex::new(plan.loader_faults),
            backfill_kill: Mutex::new(Some(plan.backfill_kill)),
            invocations: AtomicU64::new(0),
            injected: Mutex::new((FaultCounts::default(), 0)),
            functions,
            db,
        })
    }

    pub fn report(&self) -> ChaosReport {
        let (faults, messages) = self.injected.lock().expect("counts").clone();
        ChaosReport {
            seed: self.seed,
            faults,
            planned: self.planned.clone(),
            messages_delivered_twice: messages,
        }
    }

    /// Counts a loader invocation; the fault due at it, if any (one at a time).
    pub fn loader_fault(&self) -> Option<LoaderFault> {
        let invocation = self.invocations.fetch_add(1, Ordering::SeqCst) + 1;
        let mut pending = self.pending.lock().expect("plan");
        let due = pending.iter().position(|(at, _)| *at <= invocation)?;
        Some(pending.remove(due).1)
    }

    pub fn delivered_twice(&self, messages: usize) {
        let mut injected = self.injected.lock().expect("counts");
        injected.0.delivered_twice += 1;
        injected.1 += messages as u64;
    }

    /// Runs a loader's `invocation`, striking with `fault` once its batch's
    /// transaction is open. A killed process fails the invocation at once,
    /// as Lambda reports a crashed runtime. When the invocation ends first,
    /// the fault waits for the next loader invocation.
    pub async fn strike_during(
        &self,
        function: &str,
        fault: LoaderFault,
        invocation: impl Future<Output = anyhow::Result<serde_json::Value>>,
    ) -> anyhow::Result<serde_json::Value> {
        tokio::pin!(invocation);
        let target = tokio::select! {
            answer = &mut invocation => {
                self.defer(fault);
                return answer;
            }
            target = self.open_transaction(function) => target,
        };
        // Struck whatever the invocation does meanwhile: racing the kill
        // itself could kill an idle runtime between invocations.
        let pool = self.db.clone();
        let functions = self.functions.clone();
        let name = function.to_string();
        let struck = match target {
            Ok(thread) => tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                match fault {
                    LoaderFault::KillProcess => lock(&functions).kill_and_restart(&name),
                    _ => Ok(pool
                        .get_conn()?
                        .query_drop(format!("KILL CONNECTION {thread}"))?),
                }
            })
            .await
            .map_err(anyhow::Error::from)
            .and_then(|struck| struck),
            Err(error) => Err(error),
        };
        let killed = fault == LoaderFault::KillProcess && struck.is_ok();
        match struck {
            Ok(()) => {
                tracing::info!(function, ?fault, "chaos: struck mid-batch");
                let mut injected = self.injected.lock().expect("counts");
                match fault {
                    LoaderFault::KillProcess => injected.0.loader_killed += 1,
                    _ => injected.0.connection_killed += 1,
                }
            }
            Err(error) => {
                // An unknown thread: its transaction ended just before.
                tracing::warn!(function, error = %format!("{error:#}"), "chaos: the fault missed; it waits for the next invocation");
                self.defer(fault);
            }
        }
        if killed {
            anyhow::bail!("{function}'s runtime was killed (chaos): the invocation failed");
        }
        invocation.await
    }

    fn defer(&self, fault: LoaderFault) {
        self.pending.lock().expect("plan").insert(0, (0, fault));
    }

    /// Waits until one of `function`'s connections has an open transaction;
    /// returns its server thread.
    async fn open_transaction(&self, function: &str) -> anyhow::Result<u64> {
        loop {
            let pool = self.db.clone();
            let functions = self.functions.clone();
            let name = function.to_string();
            let found = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<u64>> {
                let Some(pid) = lock(&functions).pid(&name) else {
                    return Ok(None);
                };
                open_transaction_of(&mut pool.get_conn()?, pid)
            })
            .await??;
            if let Some(thread) = found {
                return Ok(thread);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs a backfill `invocation`; when it is the planned one, kills the
    /// backfill process after the planned delay if it still runs, and
    /// restarts it. `Ok(None)` means killed: invoke again with the same
    /// payload. A planned kill whose invocation ended first moves to the
    /// next invocation, with half the delay.
    pub async fn backfill_invocation<T>(
        &self,
        number: u32,
        function: &str,
        invocation: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<Option<T>> {
        let planned = *self.backfill_kill.lock().expect("plan");
        let delay = match planned {
            Some((at, delay)) if at <= number => delay,
            _ => return invocation.await.map(Some),
        };
        tokio::pin!(invocation);
        tokio::select! {
            answer = &mut invocation => {
                *self.backfill_kill.lock().expect("plan") = Some((number + 1, delay / 2));
                answer.map(Some)
            }
            _ = tokio::time::sleep(delay) => {
                let functions = self.functions.clone();
                let name = function.to_string();
                tokio::task::spawn_blocking(move || lock(&functions).kill_and_restart(&name))
                    .await??;
                tracing::info!(function, number, ?delay, "chaos: backfill invocation killed");
                *self.backfill_kill.lock().expect("plan") = None;
                self.injected.lock().expect("counts").0.backfill_killed += 1;
                Ok(None)
            }
        }
    }
}

/// The server thread of a connection of process `pid` that has an open
/// transaction.
fn open_transaction_of(conn: &mut mysql::PooledConn, pid: u32) -> anyhow::Result<Option<u64>> {
    let open: Vec<(u64, String)> = conn.query(
        "SELECT p.ID, p.HOST FROM information_schema.PROCESSLIST p \
         JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
         WHERE p.ID <> CONNECTION_ID()",
    )?;
    if open.is_empty() {
        return Ok(None);
    }
    let ports = tcp_ports_of(pid);
    Ok(open.into_iter().find_map(|(id, host)| {
        let port: u16 = host.rsplit_once(':')?.1.parse().ok()?;
        ports.contains(&port).then_some(id)
    }))
}

/// The local ports of the TCP sockets process `pid` holds (Linux's /proc).
fn tcp_ports_of(pid: u32) -> HashSet<u16> {
    let inodes: HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.ok()?.path()).ok()?;
            let target = target.to_str()?;
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_string(),
            )
        })
        .collect();
    let mut ports = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        // Columns: sl local_address rem_address st queues tr retrnsmt uid timeout inode …
        for line in text.lines().skip(1) {
            let columns: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (columns.get(1), columns.get(9)) else {
                continue;
            };
            if inodes.contains(*inode) {
                if let Some(port) = local
                    .rsplit_once(':')
                    .and_then(|(_, hex)| u16::from_str_radix(hex, 16).ok())
                {
                    ports.insert(port);
                }
            }
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_plans_the_same_faults_and_every_kind() {
        for seed in 0..200 {
            let plan = Plan::from_seed(seed);
            assert_eq!(plan, Plan::from_seed(seed), "seed {seed}");
            let counts = plan.counts();
            for (kind, n) in [
                ("loaderKilled", counts.loader_killed),
                ("connectionKilled", counts.connection_killed),
                ("deliveredTwice", counts.delivered_twice),
            ] {
                assert!((1..=3).contains(&n), "seed {seed}: {kind} {n}");
            }
            assert!(plan
                .loader_faults
                .iter()
                .all(|(at, _)| (3..=60).contains(at)));
            assert!((2..=5).contains(&plan.backfill_kill.0));
        }
        assert_ne!(Plan::from_seed(1), Plan::from_seed(2));
    }

    #[test]
    fn a_process_holds_the_port_it_connected_from() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let port = client.local_addr().unwrap().port();
        assert!(tcp_ports_of(std::process::id()).contains(&port));
    }
}
