//! The alert dispatcher's counters ([`AlertStats`]) as four counter families by `sink`,
//! read at scrape time from the atomics the dispatcher and its sink tasks bump.
//!
//! # Decisions
//! - **Every configured sink from start**, at 0 until it delivers: `rate()` and the
//!   `MeridianAlertDeliveryFailing` rule (`deploy/prometheus/alerts.yml`) see a sink's first
//!   failure as an increase, not as a series appearing.
//! - **`sink=""` is the dispatcher's own queue** (in `meridian_alerts_dropped_total` only):
//!   alerts the detection thread could not hand over because the dispatcher's queue was full,
//!   before any sink saw them. Sink names are never empty (`alerting::settings`), so it
//!   cannot collide with one; in PromQL the series has no `sink` label at all.
//! - **The families are described even without `[alerting]`** (no series then): the deploy
//!   files name them, and a coordinator that sends no alerts still tells Prometheus what it
//!   would export. A [`Collector`] writes its descriptors whether or not it has samples.
//!
//! Cardinality: 4 series per configured sink, plus one.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use crate::alerting::{AlertStats, SinkStats};

/// The `sink` label of the dispatcher-queue drops.
pub const QUEUE_SINK: &str = "";

/// The four families over one scrape's view of the dispatcher (none: alerting is off).
#[derive(Debug)]
pub struct AlertMetrics(pub Option<AlertStats>);

/// Which of a sink's counters a family reads.
type Read = fn(&SinkStats) -> &AtomicU64;

/// Each family: name before `_total`, help, and which sink counter it reads.
const FAMILIES: [(&str, &str, Read); 4] = [
    (
        "meridian_alerts_sent",
        "Alert deliveries the receiver accepted, by sink (an Alertmanager re-send counts again)",
        |s| &s.sent,
    ),
    (
        "meridian_alerts_failed",
        "Alert deliveries given up, by sink: attempts or retry time exhausted, or refused for \
         good (a 4xx other than 408 and 429)",
        |s| &s.failed,
    ),
    (
        "meridian_alerts_dropped",
        "Alerts dropped because a queue was full, by sink; sink=\"\" is the dispatcher's own \
         queue, before any sink",
        |s| &s.dropped,
    ),
    (
        "meridian_alerts_retries",
        "Delivery attempts beyond the first, by sink",
        |s| &s.retries,
    ),
];

impl Collector for AlertMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, counter) in FAMILIES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            let Some(stats) = &self.0 else {
                continue;
            };
            if name == "meridian_alerts_dropped" {
                let n = stats.queue_dropped.load(Ordering::Relaxed);
                ConstCounter::new(n).encode(family.encode_family(&[("sink", QUEUE_SINK)])?)?;
            }
            for (sink, s) in &stats.sinks {
                let n = counter(s).load(Ordering::Relaxed);
                ConstCounter::new(n).encode(family.encode_family(&[("sink", sink.as_str())])?)?;
            }
        }
        Ok(())
    }
}
