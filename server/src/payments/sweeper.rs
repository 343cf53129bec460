//! The background sweep: [`Payments::sweep`] (expiry, reconciliation of orders and refunds)
//! every `WXMALL_SWEEP_INTERVAL`. [`Sweeper::run_once`] is one pass (tests call it).

use super::{Payments, Result, SweepReport};
use std::time::Duration;

#[derive(Clone)]
pub struct Sweeper {
    pub payments: Payments,
}

impl Sweeper {
    pub async fn run_once(&self) -> Result<SweepReport> {
        self.payments.sweep().await
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
