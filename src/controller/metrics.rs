//! Prometheus metrics of the operator, served on `/metrics`.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use kube::runtime::reflector::ObjectRef;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::crd::{MaestroApply, Phase};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionReasonLabels {
    pub action: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub consumer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

/// A MaestroApplySet's status.phase values (and Pending: not reconciled
/// yet), each exported from the start so a rate or alert sees 0, not no
/// series.
pub const SET_PHASES: [&str; 8] = [
    "Pending",
    "Progressing",
    "Ready",
    "RolledBack",
    "Halted",
    "Suspended",
    "Failed",
    "Stalled",
];

/// Where a set's consumers stand against its update revision; they
/// partition the selected consumers.
pub const SET_CONSUMER_STATES: [&str; 4] = ["Pending", "Progressing", "Succeeded", "Failed"];

/// How a set's rollout ended.
pub const ROLLOUT_RESULTS: [&str; 2] = ["complete", "rolled_back"];

/// One set's share of the set gauges, from its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetSample {
    pub phase: String,
    /// Consumers per state of [`SET_CONSUMER_STATES`].
    pub consumers: [i64; 4],
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 5 ms to ~40 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

pub struct Metrics {
    pub registry: Registry,
    reconciles: Counter,
    reconcile_errors: Family<ReasonLabels, Counter>,
    reconcile_duration: Histogram,
    publishes: Family<ActionLabels, Counter>,
    publish_errors: Family<ActionReasonLabels, Counter>,
    publish_duration: HistogramFamily<ActionLabels>,
    polls: Counter,
    poll_requests: Counter,
    poll_errors: Family<ReasonLabels, Counter>,
    poll_duration: Histogram,
    objects: Family<PhaseLabels, Gauge>,
    status_writes: Counter,
    status_updates: Family<SourceLabels, Counter>,
    status_events: Family<OutcomeLabels, Counter>,
    status_stream_up: Gauge,
    status_stream_subscriptions: Counter,
    drift_corrections: Counter,
    leader: Gauge,
    unconfirmed_deletions: Family<ConsumerLabels, Gauge>,
    queued_deletions: Family<ConsumerLabels, Gauge>,
    applysets: Family<PhaseLabels, Gauge>,
    applyset_consumers: Family<StateLabels, Gauge>,
    applyset_rollouts: Family<ResultLabels, Counter>,
    /// Each object's phase, by "namespace/name": one small key per
    /// object rather than a whole `ObjectRef` (about 100 bytes less each).
    phases: Mutex<HashMap<Box<str>, Phase>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("maestro_operator");
        let m = Metrics {
            reconciles: Counter::default(),
            reconcile_errors: Family::default(),
            reconcile_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            publishes: Family::default(),
            publish_errors: Family::default(),
            publish_duration: Family::new_with_constructor(latency_histogram),
            polls: Counter::default(),
            poll_requests: Counter::default(),
            poll_errors: Family::default(),
            poll_duration: latency_histogram(),
            objects: Family::default(),
            status_writes: Counter::default(),
            status_updates: Family::default(),
            status_events: Family::default(),
            status_stream_up: Gauge::default(),
            status_stream_subscriptions: Counter::default(),
            drift_corrections: Counter::default(),
            leader: Gauge::default(),
            unconfirmed_deletions: Family::default(),
            queued_deletions: Family::default(),
            applysets: Family::default(),
            applyset_consumers: Family::default(),
            applyset_rollouts: Family::default(),
            phases: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        m.register_reconciles(&mut registry);
        m.register_publishes(&mut registry);
        m.register_polls(&mut registry);
        m.register_objects_and_status(&mut registry);
        m.register_leader_and_deletions(&mut registry);
        m.register_applysets(&mut registry);
        register_traces(&mut registry);
        m.export_initial_series();
        Metrics { registry, ..m }
    }

    fn register_reconciles(&self, registry: &mut Registry) {
        registry.register("reconciles", "Reconciles run", self.reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that failed, by reason",
            self.reconcile_errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time spent in one reconcile",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
    }

    fn register_publishes(&self, registry: &mut Registry) {
        registry.register(
            "maestro_publishes",
            "Publishes to Maestro that succeeded, by action",
            self.publishes.clone(),
        );
        registry.register(
            "maestro_publish_errors",
            "Publishes to Maestro that failed, by action and reason",
            self.publish_errors.clone(),
        );
        registry.register_with_unit(
            "maestro_publish_duration",
            "Latency of a publish to Maestro, including the read before it",
            Unit::Seconds,
            self.publish_duration.clone(),
        );
    }

    fn register_polls(&self, registry: &mut Registry) {
        registry.register(
            "maestro_polls",
            "Status polls of one consumer (each one list, all pages)",
            self.polls.clone(),
        );
        registry.register(
            "maestro_poll_requests",
            "REST requests made by status polls (one per page)",
            self.poll_requests.clone(),
        );
        registry.register(
            "maestro_poll_errors",
            "Status polls that failed, by reason",
            self.poll_errors.clone(),
        );
        registry.register_with_unit(
            "maestro_poll_duration",
            "Latency of one status poll of one consumer",
            Unit::Seconds,
            self.poll_duration.clone(),
        );
    }

    fn register_objects_and_status(&self, registry: &mut Registry) {
        registry.register(
            "objects",
            "MaestroApply objects by phase",
            self.objects.clone(),
        );
        registry.register(
            "status_writes",
            "Status patches written to the API server",
            self.status_writes.clone(),
        );
        registry.register(
            "status_updates",
            "Bundle changes that woke an object, by the path that delivered them (stream or poll)",
            self.status_updates.clone(),
        );
        registry.register(
            "status_stream_events",
            "Status events received on the stream, by what became of them \
             (applied, stale: older or repeated, early: bundle not cached yet, ignored)",
            self.status_events.clone(),
        );
        registry.register(
            "status_stream_up",
            "1 while the status stream is subscribed",
            self.status_stream_up.clone(),
        );
        registry.register(
            "status_stream_subscriptions",
            "Times the status stream was (re)subscribed, each followed by a REST resync",
            self.status_stream_subscriptions.clone(),
        );
        registry.register(
            "drift_corrections",
            "Works restored to their declared spec after another client changed them",
            self.drift_corrections.clone(),
        );
    }

    fn register_leader_and_deletions(&self, registry: &mut Registry) {
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            self.leader.clone(),
        );
        registry.register(
            "unconfirmed_deletions",
            "Deletions requested from Maestro that the consumer's agent has not confirmed, by consumer",
            self.unconfirmed_deletions.clone(),
        );
        registry.register(
            "queued_deletions",
            "Deletions waiting for room under --max-unconfirmed-deletions, by consumer",
            self.queued_deletions.clone(),
        );
    }

    fn register_applysets(&self, registry: &mut Registry) {
        registry.register(
            "applysets",
            "MaestroApplySet objects by status.phase (Pending: not reconciled yet)",
            self.applysets.clone(),
        );
        registry.register(
            "applyset_consumers",
            "Consumers selected by MaestroApplySets, summed over the sets, by where they stand \
             against their set's update revision",
            self.applyset_consumers.clone(),
        );
        registry.register(
            "applyset_rollouts",
            "MaestroApplySet rollouts that ended, by result (complete, rolled_back)",
            self.applyset_rollouts.clone(),
        );
    }

    /// Series a rate or an alert must see as 0 before their first event,
    /// not as missing.
    fn export_initial_series(&self) {
        for phase in Phase::ALL {
            self.objects.get_or_create(&phase_labels(phase)).set(0);
        }
        self.set_applysets(&[]);
        for result in ROLLOUT_RESULTS {
            self.applyset_rollouts
                .get_or_create(&ResultLabels {
                    result: result.to_string(),
                })
                .inc_by(0);
        }
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn reconcile_started(&self) -> Instant {
        self.reconciles.inc();
        Instant::now()
    }

    pub fn reconcile_finished(&self, started: Instant, error: Option<&str>) {
        self.reconcile_duration
            .observe(started.elapsed().as_secs_f64());
        if let Some(reason) = error {
            self.reconcile_errors
                .get_or_create(&ReasonLabels {
                    reason: reason.to_string(),
                })
                .inc();
        }
    }

    pub fn publish_finished(&self, action: &str, elapsed: Duration, error: Option<&str>) {
        let labels = ActionLabels {
            action: action.to_string(),
        };
        self.publish_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        match error {
            None => {
                self.publishes.get_or_create(&labels).inc();
            }
            Some(reason) => {
                self.publish_errors
                    .get_or_create(&ActionReasonLabels {
                        action: action.to_string(),
                        reason: reason.to_string(),
                    })
                    .inc();
            }
        }
    }

    pub fn poll_finished(&self, elapsed: Duration, pages: u64, error: Option<&str>) {
        self.polls.inc();
        self.poll_requests.inc_by(pages);
        self.poll_duration.observe(elapsed.as_secs_f64());
        if let Some(reason) = error {
            self.poll_errors
                .get_or_create(&ReasonLabels {
                    reason: reason.to_string(),
                })
                .inc();
        }
    }

    /// REST requests made by polls so far.
    pub fn poll_requests(&self) -> u64 {
        self.poll_requests.get()
    }

    pub fn polls(&self) -> u64 {
        self.polls.get()
    }

    pub fn status_written(&self) {
        self.status_writes.inc();
    }

    pub fn status_writes(&self) -> u64 {
        self.status_writes.get()
    }

    /// A bundle change reached the cache through `source` and woke an
    /// object.
    pub fn status_updated(&self, source: &str) {
        self.status_updates
            .get_or_create(&SourceLabels {
                source: source.to_string(),
            })
            .inc();
    }

    pub fn status_updates(&self, source: &str) -> u64 {
        self.status_updates
            .get_or_create(&SourceLabels {
                source: source.to_string(),
            })
            .get()
    }

    pub fn status_event(&self, outcome: &str) {
        self.status_events
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn set_stream_up(&self, up: bool) {
        if up {
            self.status_stream_subscriptions.inc();
        }
        self.status_stream_up.set(i64::from(up));
    }

    /// A drifted work was published again as declared.
    pub fn drift_corrected(&self) {
        self.drift_corrections.inc();
    }

    pub fn set_deletions(&self, consumer: &str, unconfirmed: usize, queued: usize) {
        let labels = ConsumerLabels {
            consumer: consumer.to_string(),
        };
        let gauge = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.unconfirmed_deletions
            .get_or_create(&labels)
            .set(gauge(unconfirmed));
        self.queued_deletions
            .get_or_create(&labels)
            .set(gauge(queued));
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Sets the MaestroApplySet gauges from every set's sample (the whole
    /// population each time: a deleted set simply is not in it).
    pub fn set_applysets(&self, sets: &[SetSample]) {
        let mut phases: HashMap<&str, i64> = SET_PHASES.iter().map(|p| (*p, 0)).collect();
        let mut consumers = [0i64; 4];
        for s in sets {
            // Only the phases the set controller writes; any other would
            // leave a series behind once no set has it.
            if let Some(n) = phases.get_mut(s.phase.as_str()) {
                *n += 1;
            }
            for (sum, n) in consumers.iter_mut().zip(s.consumers) {
                *sum += n;
            }
        }
        for (phase, n) in phases {
            self.applysets
                .get_or_create(&PhaseLabels {
                    phase: phase.to_string(),
                })
                .set(n);
        }
        for (state, n) in SET_CONSUMER_STATES.iter().zip(consumers) {
            self.applyset_consumers
                .get_or_create(&StateLabels {
                    state: state.to_string(),
                })
                .set(n);
        }
    }

    /// A set's rollout ended with `result` (one of [`ROLLOUT_RESULTS`]).
    pub fn applyset_rollout(&self, result: &str) {
        self.applyset_rollouts
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// Records an object's phase; `None` when it is gone.
    pub fn set_phase(&self, key: &ObjectRef<MaestroApply>, phase: Option<Phase>) {
        let key = format!(
            "{}/{}",
            key.namespace.as_deref().unwrap_or_default(),
            key.name
        );
        let mut phases = self.phases.lock();
        let old = match phase {
            Some(p) => phases.insert(key.into_boxed_str(), p),
            None => phases.remove(key.as_str()),
        };
        if old == phase {
            return;
        }
        if let Some(old) = old {
            self.objects.get_or_create(&phase_labels(old)).dec();
        }
        if let Some(new) = phase {
            self.objects.get_or_create(&phase_labels(new)).inc();
        }
    }
}

fn register_traces(registry: &mut Registry) {
    // Process-wide (telemetry::traces), zero while traces are off.
    let traces = crate::telemetry::traces::stats();
    registry.register(
        "trace_spans_exported",
        "Spans the OTLP collector accepted",
        traces.exported.clone(),
    );
    registry.register(
        "trace_spans_dropped",
        "Spans that did not reach the OTLP collector, by reason (queue_full, export_failed, shutdown)",
        traces.dropped.clone(),
    );
}

fn phase_labels(phase: Phase) -> PhaseLabels {
    PhaseLabels {
        phase: phase.as_str().to_string(),
    }
}

#[cfg(test)]
mod tests;
