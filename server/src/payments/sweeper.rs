//! The background sweep: [`Payments::sweep`] (expiry, reconciliation of orders and refunds)
//! and the pruning of idle anonymous shoppers and expired OAuth states, every
//! `WXMALL_SWEEP_INTERVAL`. [`Sweeper::run_once`] is one pass (tests call it).

use super::{Payments, Result, SweepReport};
use std::time::Duration;

#[derive(Clone)]
pub struct Sweeper {
    pub payments: Payments,
    /// `WXMALL_SESSION_IDLE`: sessions not seen for this long are deleted.
    pub session_idle: Duration,
    /// `WXMALL_AUTO_COMPLETE`: a shipped order completes by itself this long after shipping.
    pub auto_complete: Duration,
}

impl Sweeper {
    /// One pass: the payments sweep, then what unauthenticated requests left behind
    /// (`shop::sessions::prune`).
    pub async fn run_once(&self) -> Result<SweepReport> {
        let report = self.payments.sweep().await?;
        let pruned = crate::shop::sessions::prune(
            self.payments.pool(),
            super::now(),
            self.session_idle.as_secs() as i64,
        )
        .await?;
        let now = super::now();
        let completed = crate::shop::orders::auto_complete(
            self.payments.pool(),
            now - self.auto_complete.as_secs() as i64,
            now,
        )
        .await?;
        if completed > 0 {
            tracing::info!(completed, "shipped orders completed automatically");
        }
        if pruned != Default::default() {
            tracing::info!(
                ?pruned,
                "pruned expired OAuth states and idle anonymous shoppers"
            );
        }
        Ok(report)
    }

    /// Runs [`Sweeper::run_once`] every `every` until the runtime shuts down.
    pub fn spawn(self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %e, "order sweep failed");
                }
            }
        })
    }
}
