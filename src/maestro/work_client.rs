//! ManifestWork-level operations over Maestro, in the manner of the Go
//! `grpcsource` work client: reads over REST, writes and status over gRPC.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, warn};

use super::codec::{self, ManifestBundle, SpecAction};
use super::config::MaestroConfig;
use super::fence::WriteFence;
use super::grpc::{GrpcSourceClient, StreamEvent, SubscribeOptions};
pub use super::held::Detail;
use super::held::HeldWork;
use super::rest::{Consumer, LabelSelector, ListOptions, Operator, Page, RestClient, Search};
use crate::maestro::error::{Error, Result};
use crate::manifestwork::{ManifestWork, validate_work};
use crate::names::{ConsumerName, ResourceId, SourceId, WorkName};

/// Annotation holding a digest of what we published, so an unchanged work
/// costs no publish and no new bundle version.
pub const SPEC_HASH_ANNOTATION: &str = "maestro.hyperfleet.io/spec-hash";

#[derive(Clone, Debug)]
pub struct WorkClient {
    grpc: GrpcSourceClient,
    rest: RestClient,
    source: SourceId,
    fence: WriteFence,
}

/// What [`WorkClient::apply`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum ApplyOutcome {
    Created {
        version: i64,
    },
    /// Updated from `from_version`; Maestro's bundle is now `from_version + 1`.
    Updated {
        from_version: i64,
    },
    Unchanged {
        version: i64,
    },
}

/// What [`WorkClient::delete`] and [`WorkClient::delete_if`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Maestro marked the bundle deleting; it disappears once the agent
    /// confirms.
    Deleting,
    /// There was nothing to delete.
    NotFound,
    /// The caller's check refused the bundle as read just before the
    /// write; nothing was sent.
    Refused(Refusal),
}

/// Why a [`WorkClient::delete_if`] check left a bundle alone, e.g. "owned
/// by another object".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// How often [`WorkClient::apply_with`] reads, decides and writes before
/// a stale version or a conflict is returned to the caller.
pub const APPLY_ATTEMPTS: u32 = 3;

/// What a [`WorkClient::apply_with`] decision answers, having seen the
/// bundle Maestro holds now (`None`: nothing).
#[derive(Debug)]
pub enum Decision<T, R = Refusal> {
    /// Publish this work: a create when Maestro holds nothing, otherwise
    /// an update at the version just read. `T` is the caller's note of
    /// what the write means (an update, a correction, an adoption).
    Publish(Box<ManifestWork>, T),
    /// Leave Maestro as it is (e.g. it already holds the work).
    Skip(T),
    /// Leave Maestro as it is, and tell the caller why not.
    Refuse(R),
}

/// What [`WorkClient::apply_with`] did.
#[derive(Debug)]
pub enum Applied<T, R = Refusal> {
    /// Created at version 1.
    Created {
        note: T,
    },
    /// Updated from `from_version`; Maestro's bundle is now `from_version + 1`.
    Updated {
        from_version: i64,
        note: T,
    },
    /// Nothing was written; `current` is the work the decision saw.
    Skipped {
        note: T,
        current: Option<Box<HeldWork>>,
    },
    Refused(R),
}

/// The decision of a plain apply: create or replace the work as a whole,
/// nothing when Maestro already holds it (by spec hash), and refuse a work
/// being deleted.
pub fn replace(work: &ManifestWork) -> impl FnMut(Option<&HeldWork>) -> Decision<()> + '_ {
    let hash = spec_hash_of_work(work);
    move |current| match current {
        None => Decision::Publish(Box::new(work.clone()), ()),
        Some(held) if held.is_deleting() => Decision::Refuse(Refusal(format!(
            "work {}/{} is being deleted; apply again once it is gone",
            work.metadata.namespace.as_deref().unwrap_or(""),
            work.metadata.name.as_deref().unwrap_or(""),
        ))),
        Some(held) if spec_hash_of(held) == Some(hash.as_str()) => Decision::Skip(()),
        Some(_) => Decision::Publish(Box::new(work.clone()), ()),
    }
}

/// One change seen by [`WorkClient::watch`].
#[derive(Debug, Clone)]
pub enum WatchEvent {
    /// The current state of a work: from the initial list, a resync, or a
    /// status report.
    Modified(Box<ManifestWork>),
    /// The agent confirmed deletion, or a resync no longer found the work.
    Deleted(Box<ManifestWork>),
    /// A (re)subscription finished its resync; everything before this is
    /// the current state.
    Synced,
    /// The status stream is down; the watch reconnects by itself.
    Disconnected { error: String, retry_in: Duration },
}

impl WorkClient {
    pub fn new(config: &MaestroConfig) -> Result<Self> {
        Ok(WorkClient {
            grpc: GrpcSourceClient::new(config)?,
            rest: RestClient::new(config)?,
            source: config.source_id.clone(),
            fence: WriteFence::open(),
        })
    }

    /// This client, sending writes (create, update, delete) only while
    /// `fence` allows them. The fence is checked immediately before each
    /// CloudEvent goes out, so a write already under way when the fence
    /// closes still sends nothing. Reads are never fenced.
    pub fn with_fence(mut self, fence: WriteFence) -> Self {
        self.fence = fence;
        self
    }

    pub fn fence(&self) -> &WriteFence {
        &self.fence
    }

    pub fn grpc(&self) -> &GrpcSourceClient {
        &self.grpc
    }

    pub fn source(&self) -> &SourceId {
        &self.source
    }

    pub fn resource_id(&self, consumer: &ConsumerName, name: &WorkName) -> ResourceId {
        ResourceId::for_work(&self.source, consumer.as_str(), name.as_str())
    }

    /// Where the REST API answers, for messages.
    pub fn rest_endpoint(&self) -> &url::Url {
        self.rest.endpoint()
    }

    /// Every consumer registered in Maestro, all pages followed.
    pub async fn list_consumers(&self) -> Result<Vec<Consumer>> {
        self.rest.list_consumers(&ListOptions::default()).await
    }

    /// The consumer with this name, if registered.
    pub async fn find_consumer(&self, name: &ConsumerName) -> Result<Option<Consumer>> {
        self.rest.find_consumer_by_name(name).await
    }

    /// The consumer with this server-generated id.
    pub async fn get_consumer(&self, id: &str) -> Result<Consumer> {
        self.rest.get_consumer(id).await
    }

    /// Registers a consumer; a taken name is [`Error::Conflict`].
    pub async fn create_consumer(
        &self,
        name: &ConsumerName,
        labels: &BTreeMap<String, String>,
    ) -> Result<Consumer> {
        self.rest.create_consumer(name, labels).await
    }

    /// Deletes a consumer that has no bundles left; an unknown id succeeds.
    pub async fn delete_consumer(&self, id: &str) -> Result<()> {
        self.rest.delete_consumer(id).await
    }

    /// One page of this source's works on `consumer`, without the
    /// published works, ordered by id so that paging is stable. Not
    /// filtered by labels: a bundle another client rewrote without them is
    /// still under its resource ID. A row whose id is not a UUID cannot be
    /// any work's and is left out.
    pub async fn list_page(
        &self,
        consumer: &ConsumerName,
        page: u32,
        size: u32,
    ) -> Result<Page<HeldWork>> {
        let options = ListOptions {
            search: Some(Search::source(&self.source).consumer(consumer).build()),
            page: Some(page),
            size: Some(size),
            order_by: Some("id".into()),
        };
        let page = self.rest.list_resource_bundles_page(&options).await?;
        Ok(
            page.filter_map(|bundle| match bundle.into_held(Detail::Summary) {
                Ok(held) => Some(held),
                Err(e) => {
                    debug!(%consumer, error = %e, "skipping a listed bundle");
                    None
                }
            }),
        )
    }

    /// Deletes a bundle by its id over REST: for bundles other clients
    /// made under ids this client does not derive, which
    /// [`WorkClient::delete`] cannot name. Idempotent.
    pub async fn delete_bundle_by_id(&self, id: &ResourceId) -> Result<()> {
        self.fence.check()?;
        self.rest.delete_resource_bundle(id).await
    }

    /// What Maestro holds under a work's resource ID, or `None` when it
    /// holds nothing. Works being deleted are returned: callers see
    /// `deleting_since`.
    pub async fn get_held(
        &self,
        consumer: &ConsumerName,
        name: &WorkName,
        detail: Detail,
    ) -> Result<Option<HeldWork>> {
        match self
            .rest
            .get_resource_bundle(&self.resource_id(consumer, name))
            .await
        {
            Ok(bundle) => bundle.into_held(detail).map(Some),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn get(
        &self,
        consumer: &ConsumerName,
        name: &WorkName,
    ) -> Result<Option<ManifestWork>> {
        let held = self.get_held(consumer, name, Detail::Work).await?;
        Ok(held.and_then(|h| h.work).map(|w| *w))
    }

    /// Every work of this source, optionally of one consumer and matching
    /// a label selector (`a=b,c!=d,e in (x,y)`), all pages followed, with
    /// the published works. Each row is read on its own: one that cannot
    /// be read as a work is its own error and hides no other.
    pub async fn list_held(
        &self,
        consumer: Option<&ConsumerName>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Result<HeldWork>>> {
        let mut search = Search::source(&self.source);
        if let Some(consumer) = consumer {
            search = search.consumer(consumer);
        }
        self.list_matching(search, label_selector).await
    }

    /// This source's works on any of `consumers` (optionally only works
    /// whose labels match `label_selector`), with the published works, each
    /// read on its own. An empty list is refused rather than read as
    /// "every consumer".
    pub async fn list_held_on(
        &self,
        consumers: &[ConsumerName],
        label_selector: Option<&str>,
    ) -> Result<Vec<Result<HeldWork>>> {
        let search = Search::source(&self.source).consumers(consumers)?;
        self.list_matching(search, label_selector).await
    }

    /// Every work `search` finds, narrowed to works whose labels match
    /// `label_selector` when one is given.
    async fn list_matching(
        &self,
        mut search: Search,
        label_selector: Option<&str>,
    ) -> Result<Vec<Result<HeldWork>>> {
        if let Some(selector) = label_selector.filter(|s| !s.trim().is_empty()) {
            search = search.labels(selector)?;
        }
        let options = ListOptions {
            search: Some(search.build()),
            size: Some(super::rest::DEFAULT_PAGE_SIZE),
            ..ListOptions::default()
        };
        let bundles = self.rest.list_resource_bundles(&options).await?;
        Ok(bundles
            .into_iter()
            .map(|b| b.into_held(Detail::Work))
            .collect())
    }

    pub async fn list(
        &self,
        consumer: Option<&ConsumerName>,
        label_selector: Option<&str>,
    ) -> Result<Vec<ManifestWork>> {
        let rows = self.list_held(consumer, label_selector).await?;
        rows.into_iter()
            .map(|row| row.map(|h| h.work.map(|w| *w).unwrap_or_default()))
            .collect()
    }

    /// Creates the work; fails with a conflict if it exists.
    pub async fn create(&self, work: &ManifestWork) -> Result<()> {
        self.fence.check()?;
        let (work, consumer) = self.prepare(work)?;
        self.publish(SpecAction::Create, &work, 0, &consumer).await
    }

    /// Creates the work, or replaces the existing one with it as a whole
    /// ([`replace`] decides); a work being deleted is a conflict.
    pub async fn apply(&self, work: &ManifestWork) -> Result<ApplyOutcome> {
        self.fence.check()?;
        let (work, consumer) = self.prepare(work)?;
        let name = work_name(&work)?;
        let applied = self
            .apply_with(&consumer, &name, Detail::Summary, replace(&work))
            .await?;
        match applied {
            Applied::Created { .. } => Ok(ApplyOutcome::Created { version: 1 }),
            Applied::Updated { from_version, .. } => Ok(ApplyOutcome::Updated { from_version }),
            Applied::Skipped { current, .. } => Ok(ApplyOutcome::Unchanged {
                version: current.map_or(0, |b| b.version),
            }),
            Applied::Refused(refusal) => Err(Error::Conflict(refusal.0)),
        }
    }

    /// The one read-decide-write loop of every writer: reads the bundle
    /// behind `consumer`/`name`, lets `decide` answer what to do with it,
    /// and publishes a [`Decision::Publish`] as a create when Maestro holds
    /// nothing or as an update at the version just read. That version makes
    /// a concurrent writer's change a stale-version conflict rather than a
    /// lost update; such a conflict (or a concurrent create) is answered by
    /// a fresh read and a fresh decision, up to [`APPLY_ATTEMPTS`] times.
    pub async fn apply_with<T, R>(
        &self,
        consumer: &ConsumerName,
        name: &WorkName,
        detail: Detail,
        mut decide: impl FnMut(Option<&HeldWork>) -> Decision<T, R>,
    ) -> Result<Applied<T, R>> {
        self.fence.check()?;
        let mut attempt = 1;
        loop {
            let current = self.get_held(consumer, name, detail).await?;
            let (work, note) = match decide(current.as_ref()) {
                Decision::Publish(work, note) => (work, note),
                Decision::Skip(note) => {
                    let current = current.map(Box::new);
                    return Ok(Applied::Skipped { note, current });
                }
                Decision::Refuse(refusal) => return Ok(Applied::Refused(refusal)),
            };
            let (work, _) = self.prepare_for(&work, consumer, name)?;
            let result = match &current {
                None => self
                    .publish(SpecAction::Create, &work, 0, consumer)
                    .await
                    .map(|()| Applied::Created { note }),
                Some(bundle) => {
                    let from_version = bundle.version;
                    self.publish(SpecAction::Update, &work, from_version, consumer)
                        .await
                        .map(|()| Applied::Updated { from_version, note })
                }
            };
            match result {
                Err(Error::StaleVersion { .. } | Error::Conflict(_))
                    if attempt < APPLY_ATTEMPTS =>
                {
                    // A concurrent create or update landed between our read
                    // and our write; read again and decide again.
                    attempt += 1;
                    debug!(%consumer, %name, attempt, "conflict on apply; retrying with a fresh read");
                }
                other => return other,
            }
        }
    }

    /// Replaces the work at a known version; fails with
    /// [`Error::StaleVersion`] if Maestro has moved on.
    pub async fn update(&self, work: &ManifestWork, version: i64) -> Result<()> {
        self.fence.check()?;
        let (work, consumer) = self.prepare(work)?;
        self.publish(SpecAction::Update, &work, version, &consumer)
            .await
    }

    /// Asks Maestro to delete the work, whoever wrote it. Idempotent.
    pub async fn delete(&self, consumer: &ConsumerName, name: &WorkName) -> Result<DeleteOutcome> {
        self.delete_if(consumer, name, |_| Ok(())).await
    }

    /// Asks Maestro to delete the work if `check` accepts the bundle as read
    /// right before the write, e.g. that it still belongs to the caller:
    /// a decision taken on an older read (a cache, a list) may be stale, as
    /// another owner may have taken the work over meanwhile. A refusal is
    /// [`DeleteOutcome::Refused`], and nothing is sent. Idempotent.
    pub async fn delete_if(
        &self,
        consumer: &ConsumerName,
        name: &WorkName,
        check: impl FnOnce(&HeldWork) -> std::result::Result<(), Refusal>,
    ) -> Result<DeleteOutcome> {
        self.fence.check()?;
        let Some(held) = self.get_held(consumer, name, Detail::Work).await? else {
            return Ok(DeleteOutcome::NotFound);
        };
        // Checked before the deleting case too: a caller that does not own
        // the bundle must not take someone else's deletion for its own.
        if let Err(refusal) = check(&held) {
            debug!(%consumer, %name, %refusal, "delete refused by the caller's check");
            return Ok(DeleteOutcome::Refused(refusal));
        }
        if held.is_deleting() {
            return Ok(DeleteOutcome::Deleting);
        }
        let Some(work) = held.work.as_deref() else {
            return Err(Error::Protocol(format!(
                "work {consumer}/{name} was read without its manifests"
            )));
        };
        self.publish(SpecAction::Delete, work, held.version, consumer)
            .await?;
        Ok(DeleteOutcome::Deleting)
    }

    /// Follows works of this source (optionally one consumer, optionally
    /// one label selector): the current state first, then every status
    /// change; after each reconnect a fresh list, reporting works that
    /// vanished meanwhile as deleted.
    pub fn watch(
        &self,
        consumer: Option<ConsumerName>,
        label_selector: Option<String>,
        options: SubscribeOptions,
    ) -> mpsc::Receiver<Result<WatchEvent>> {
        let (tx, rx) = mpsc::channel(options.buffer);
        let client = self.clone();
        tokio::spawn(async move {
            client
                .run_watch(consumer, label_selector, options, tx)
                .await
        });
        rx
    }

    async fn run_watch(
        self,
        consumer: Option<ConsumerName>,
        label_selector: Option<String>,
        options: SubscribeOptions,
        tx: mpsc::Sender<Result<WatchEvent>>,
    ) {
        let selector = match label_selector
            .as_deref()
            .map(LabelFilter::parse)
            .transpose()
        {
            Ok(s) => s,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let mut stream = self.grpc.subscribe(options);
        // Last known works by resource ID, to report vanished ones.
        let mut known: HashMap<ResourceId, ManifestWork> = HashMap::new();
        while let Some(event) = stream.recv().await {
            let out: Vec<Result<WatchEvent>> = match event {
                StreamEvent::Subscribed { .. } => {
                    match self
                        .list(consumer.as_ref(), label_selector.as_deref())
                        .await
                    {
                        Ok(works) => resync(&mut known, works),
                        // The stream is up but REST is not: report, and
                        // rely on the status events until the next resync.
                        Err(e) => vec![Err(e)],
                    }
                }
                StreamEvent::Status(status) => {
                    let work = status.work;
                    let wanted = consumer
                        .as_ref()
                        .is_none_or(|c| work.metadata.namespace.as_deref() == Some(c.as_str()))
                        && selector.as_ref().is_none_or(|s| s.matches(&work));
                    if !wanted {
                        continue;
                    }
                    if status.deleted {
                        known.remove(&status.resource_id);
                        vec![Ok(WatchEvent::Deleted(Box::new(work)))]
                    } else {
                        known.insert(status.resource_id, work.clone());
                        vec![Ok(WatchEvent::Modified(Box::new(work)))]
                    }
                }
                StreamEvent::Undecodable(e) => {
                    warn!(error = %e, "skipping an undecodable status event");
                    continue;
                }
                StreamEvent::Disconnected { error, retry_in } => {
                    vec![Ok(WatchEvent::Disconnected {
                        error: error.to_string(),
                        retry_in,
                    })]
                }
            };
            for item in out {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Validates a work and fills in what the wire needs: the consumer as
    /// namespace and our spec-hash annotation.
    fn prepare(&self, work: &ManifestWork) -> Result<(ManifestWork, ConsumerName)> {
        validate_work(work).map_err(Error::InvalidWork)?;
        let consumer = work
            .metadata
            .namespace
            .as_deref()
            .map(ConsumerName::new)
            .transpose()
            .map_err(|e| Error::Config(e.to_string()))?
            .ok_or_else(|| Error::Config("work has no namespace (consumer)".into()))?;
        let mut work = work.clone();
        work.status = None;
        let hash = spec_hash_of_work(&work);
        work.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(SPEC_HASH_ANNOTATION.into(), hash);
        Ok((work, consumer))
    }

    /// [`WorkClient::prepare`], and the work must be `consumer`/`name`: a
    /// decision that publishes a different work is a caller's bug.
    fn prepare_for(
        &self,
        work: &ManifestWork,
        consumer: &ConsumerName,
        name: &WorkName,
    ) -> Result<(ManifestWork, ConsumerName)> {
        let (work, work_consumer) = self.prepare(work)?;
        let work_name = work_name(&work)?;
        if &work_consumer != consumer || &work_name != name {
            return Err(Error::Config(format!(
                "asked to apply {consumer}/{name}, but the work is {work_consumer}/{work_name}"
            )));
        }
        Ok((work, work_consumer))
    }

    /// Publishes in a producer span when traces are on; the event carries
    /// its trace context.
    async fn publish(
        &self,
        action: SpecAction,
        work: &ManifestWork,
        version: i64,
        consumer: &ConsumerName,
    ) -> Result<()> {
        let span = tracing::info_span!(
            "maestro.publish",
            otel.kind = "producer",
            otel.status_code = tracing::field::Empty,
            %consumer,
            work = work.metadata.name.as_deref().unwrap_or(""),
            action = ?action,
            version,
        );
        let result = self
            .publish_event(action, work, version, consumer)
            .instrument(span.clone())
            .await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        result
    }

    async fn publish_event(
        &self,
        action: SpecAction,
        work: &ManifestWork,
        version: i64,
        consumer: &ConsumerName,
    ) -> Result<()> {
        let mut event = codec::encode_spec(&self.source, action, work, version, Utc::now())?;
        if let Some(traceparent) = crate::telemetry::traces::current_traceparent() {
            codec::set_trace_context(&mut event, &traceparent);
        }
        // The last moment before the event leaves: the reads before it may
        // have taken long enough for the fence to close.
        if let Err(e) = self.fence.check() {
            warn!(%consumer, work = work.metadata.name.as_deref().unwrap_or(""),
                  ?action, version, error = %e, "not published: writes are fenced off");
            return Err(e);
        }
        let name = work.metadata.name.as_deref().unwrap_or("");
        let result = match self.grpc.publish(event).await {
            Err(e) if may_have_landed(&e) && self.landed(action, work, version, consumer).await => {
                info!(%consumer, work = name, ?action, version, error = %e,
                      "publish reported a failure, but Maestro holds what it sent: it had landed");
                Ok(())
            }
            other => other,
        };
        match &result {
            Ok(()) => info!(%consumer, work = name, ?action, version, "published"),
            Err(e) => warn!(%consumer, work = name, ?action, version, error = %e, "publish failed"),
        }
        result.map_err(|e| e.with_consumer(consumer.as_str()))
    }

    /// Whether Maestro now holds what this publish asked for, read back
    /// after an ambiguous failure. A reply lost to a timeout or a cut
    /// connection may follow a commit, and a retry of such a publish
    /// meets its own earlier write as a conflict or a stale version;
    /// either way the declared state is in place, and saying "failed"
    /// would send the caller into needless retries or a false Conflict.
    /// The spec hash covers labels and annotations too, so another
    /// writer's different work never passes for ours. A failed read
    /// answers "no": the caller keeps the original error.
    async fn landed(
        &self,
        action: SpecAction,
        work: &ManifestWork,
        version: i64,
        consumer: &ConsumerName,
    ) -> bool {
        let Some(name) = work
            .metadata
            .name
            .as_deref()
            .and_then(|n| WorkName::new(n).ok())
        else {
            return false;
        };
        let current = match self.get_held(consumer, &name, Detail::Summary).await {
            Ok(current) => current,
            Err(e) => {
                debug!(%consumer, work = %name, error = %e, "cannot read back after a failed publish");
                return false;
            }
        };
        match (action, current) {
            (SpecAction::Delete, None) => true,
            (SpecAction::Delete, Some(held)) => held.is_deleting(),
            (_, None) => false,
            (SpecAction::Create | SpecAction::Update, Some(held)) => {
                !held.is_deleting()
                    && held.version > version
                    && spec_hash_of(&held) == Some(spec_hash_of_work(work).as_str())
            }
        }
    }
}

fn work_name(work: &ManifestWork) -> Result<WorkName> {
    work.metadata
        .name
        .as_deref()
        .map(WorkName::new)
        .transpose()
        .map_err(|e| Error::Config(e.to_string()))?
        .ok_or_else(|| Error::Config("work has no name".into()))
}

fn resync(
    known: &mut HashMap<ResourceId, ManifestWork>,
    works: Vec<ManifestWork>,
) -> Vec<Result<WatchEvent>> {
    let mut fresh: HashMap<ResourceId, ManifestWork> = HashMap::new();
    let mut out = Vec::with_capacity(works.len() + 1);
    for work in works {
        let Some(id) = work.metadata.uid.as_deref().and_then(|u| u.parse().ok()) else {
            continue;
        };
        out.push(Ok(WatchEvent::Modified(Box::new(work.clone()))));
        fresh.insert(id, work);
    }
    for (id, work) in known.drain() {
        if !fresh.contains_key(&id) {
            out.push(Ok(WatchEvent::Deleted(Box::new(work))));
        }
    }
    *known = fresh;
    out.push(Ok(WatchEvent::Synced));
    out
}

/// Digest of everything a publish carries that a user controls: the
/// bundle, labels and annotations (without our own annotation).
/// Failures after which the publish may nevertheless have been committed:
/// the reply was lost (timeout, cut connection), or a retry met its own
/// earlier write (conflict, stale version).
fn may_have_landed(error: &Error) -> bool {
    matches!(
        error,
        Error::Timeout { .. }
            | Error::Unavailable(_)
            | Error::Conflict(_)
            | Error::StaleVersion { .. }
    )
}

pub fn spec_hash_of_work(work: &ManifestWork) -> String {
    let bundle = ManifestBundle::from_spec(&work.spec);
    let mut annotations = work.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(SPEC_HASH_ANNOTATION);
    let labels = work.metadata.labels.clone().unwrap_or_default();
    let value = serde_json::json!({
        "bundle": bundle,
        "labels": labels,
        "annotations": annotations,
    });
    // serde_json's Map is ordered by key here (no preserve_order feature),
    // so equal works give equal bytes.
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    format!("{:x}", Sha256::digest(bytes))
}

/// The digest of what was published, as [`WorkClient::prepare`] stored it.
pub fn spec_hash_of(held: &HeldWork) -> Option<&str> {
    held.annotations.get(SPEC_HASH_ANNOTATION)
}

/// Client-side label matching for status events, which Maestro does not
/// filter by selector.
#[derive(Debug, Clone)]
struct LabelFilter(LabelSelector);

impl LabelFilter {
    fn parse(selector: &str) -> Result<LabelFilter> {
        LabelSelector::parse(selector).map(LabelFilter)
    }

    fn matches(&self, work: &ManifestWork) -> bool {
        let empty = BTreeMap::new();
        let labels = work.metadata.labels.as_ref().unwrap_or(&empty);
        self.0.requirements().iter().all(|r| {
            let value = labels.get(&r.key);
            let number = |v: &String| v.parse::<i64>().ok();
            let bound = r.values.first().and_then(number);
            match r.operator {
                Operator::Equals | Operator::In => value.is_some_and(|v| r.values.contains(v)),
                Operator::NotEquals | Operator::NotIn => {
                    value.is_none_or(|v| !r.values.contains(v))
                }
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
                Operator::GreaterThan => value
                    .and_then(number)
                    .zip(bound)
                    .is_some_and(|(v, b)| v > b),
                Operator::LessThan => value
                    .and_then(number)
                    .zip(bound)
                    .is_some_and(|(v, b)| v < b),
            }
        })
    }
}

#[cfg(test)]
mod fake_tests;

#[cfg(test)]
mod tests;
