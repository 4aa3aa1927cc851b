//! What the web side watches: the detection thread's latest view of every (target, region)
//! and the open incidents ([`LiveView`], on a `watch` channel: readers see the newest, never
//! a queue), and a broadcast of changes worth pushing to open pages ([`Event`]).
//!
//! # Decisions
//! - **Published at most once a second** (and at once after an incident transition), only when
//!   it changed: the evaluation itself runs on every round of results, and a map redrawn more
//!   often than once a second tells nobody anything.
//! - **Events are hints, not state**: a page that misses one (a lagging subscriber is skipped
//!   ahead by `broadcast`) re-reads the API, so nothing depends on every event arriving.

use std::sync::Arc;

use crate::detect::RegionCell;

/// Published views are at least this far apart, ms, unless an incident changed.
pub(super) const VIEW_EVERY_MS: i64 = 1_000;

/// Events buffered per subscriber before the slowest is skipped ahead.
const EVENT_BUFFER: usize = 256;

/// The detection thread's view of the monitoring network.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveView {
    /// When it was computed, Unix ms (0 before the first evaluation).
    pub at_ms: i64,
    /// Every (target, region) that has probes.
    pub cells: Vec<RegionCell>,
    /// The incidents open now.
    pub open: Vec<OpenIncident>,
}

/// An open incident, as the live view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    /// Stored id.
    pub id: u64,
    /// Class, kebab-case (`regional-network`, ...).
    pub class: String,
    /// `confirmed` or `paged`.
    pub state: String,
    /// `info`, `ticket` or `page` (`detect::Severity`).
    pub severity: String,
    /// Regions in scope.
    pub regions: Vec<String>,
    /// Whether it is about the monitoring network itself (probe faults, clocks, silences).
    pub operational: bool,
    /// Whether a maintenance window covering its whole scope holds its page back.
    pub held: bool,
}

/// A change worth telling open pages about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An incident was opened, updated, paged, resolved or re-opened.
    Incident {
        /// Stored id.
        id: u64,
        /// Class, kebab-case.
        class: String,
        /// Its state after the transition (`confirmed`, `paged`, `resolved`).
        state: String,
    },
    /// A member message was drafted, edited, approved or published.
    Message {
        /// The message.
        id: u64,
        /// Its incident.
        incident: u64,
        /// Its state after the change (`draft`, `approved`, `published`).
        state: String,
    },
}

/// Both channels; held by the service's shared state.
pub(super) struct Live {
    /// The newest view.
    pub(super) view: tokio::sync::watch::Sender<Arc<LiveView>>,
    /// Changes.
    pub(super) events: tokio::sync::broadcast::Sender<Event>,
}

impl Live {
    pub(super) fn new() -> Live {
        Live {
            view: tokio::sync::watch::Sender::new(Arc::new(LiveView::default())),
            events: tokio::sync::broadcast::Sender::new(EVENT_BUFFER),
        }
    }

    /// Publishes `view` unless it says what the current one says (its time aside).
    pub(super) fn publish(&self, view: LiveView) {
        self.view.send_if_modified(|current| {
            if current.cells == view.cells && current.open == view.open {
                return false;
            }
            *current = Arc::new(view);
            true
        });
    }

    /// Tells subscribers; nobody listening is fine.
    pub(super) fn announce(&self, event: Event) {
        let _ = self.events.send(event);
    }
}
