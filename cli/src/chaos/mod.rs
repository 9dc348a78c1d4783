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
//! A loader's faults strike at its next `COMMIT`, held by the loader's own
//! proxy to the database ([`CommitTrap`]) while the fault is done.

mod commit_trap;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use mysql::prelude::Queryable;

pub use commit_trap::CommitTrap;
use commit_trap::Release;

use crate::local::lock;
use crate::processes::FunctionProcesses;

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
    /// Each loader function's proxy to the database, by function name.
    traps: HashMap<String, CommitTrap>,
    /// The rehearsal's own connection to the server, to kill the loaders'.
    db: mysql::Pool,
}

impl Chaos {
    pub fn new(
        seed: u64,
        database_url: &shared::store::Secret,
        functions: Arc<Mutex<FunctionProcesses>>,
        traps: HashMap<String, CommitTrap>,
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
            traps,
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

    /// Runs a loader's `invocation`, striking with `fault` at its next
    /// commit, held meanwhile. A killed process fails the invocation at
    /// once, as Lambda reports a crashed runtime. When the invocation ends
    /// without a commit, the fault waits for the next loader invocation.
    pub async fn strike_during(
        &self,
        function: &str,
        fault: LoaderFault,
        invocation: impl Future<Output = anyhow::Result<serde_json::Value>>,
    ) -> anyhow::Result<serde_json::Value> {
        let Some(trap) = self.traps.get(function) else {
            anyhow::bail!("chaos: {function} has no database proxy to strike through");
        };
        let held = trap.arm();
        tokio::pin!(invocation);
        let held = tokio::select! {
            answer = &mut invocation => {
                trap.disarm();
                self.defer(fault);
                return answer;
            }
            held = held => held.context("the chaos proxy stopped")?,
        };
        let (pool, functions, name) = (
            self.db.clone(),
            self.functions.clone(),
            function.to_string(),
        );
        let thread = held.server_thread;
        let struck = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            match fault {
                LoaderFault::KillProcess => lock(&functions).kill_and_restart(&name),
                _ => Ok(pool
                    .get_conn()?
                    .query_drop(format!("KILL CONNECTION {thread}"))?),
            }
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|struck| struck);
        // A dead process's commit never reaches the server; a killed
        // connection's does, and fails there.
        held.release(match fault {
            LoaderFault::KillProcess => Release::Drop,
            _ => Release::Forward,
        });
        struck.with_context(|| format!("chaos: the {fault:?} of {function} failed"))?;
        tracing::info!(function, ?fault, thread, "chaos: struck at a held commit");
        {
            let mut injected = self.injected.lock().expect("counts");
            match fault {
                LoaderFault::KillProcess => injected.0.loader_killed += 1,
                _ => injected.0.connection_killed += 1,
            }
        }
        if fault == LoaderFault::KillProcess {
            anyhow::bail!("{function}'s runtime was killed (chaos): the invocation failed");
        }
        invocation.await
    }

    fn defer(&self, fault: LoaderFault) {
        self.pending.lock().expect("plan").insert(0, (0, fault));
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
}
