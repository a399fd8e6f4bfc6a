//! Publishing: bring Maestro in line with an object's spec, never over a
//! work another object owns.

use std::time::Instant;

use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::events::EventType;
use tracing::{debug, info};

use super::crd::MaestroApply;
use super::poller::View;
use super::reconcile::event;
use super::status::Outcome;
use super::target::{Owner, Target, bundle_owner, bundle_spec_hash};
use super::{Context, Error, Result};
use crate::maestro::work_client::spec_hash_of_work;
use crate::manifestwork::{ManifestWork, validate_work};

/// Brings Maestro in line with the spec. Returns what happened and, for a
/// failure worth a retry with backoff, the error.
pub(super) async fn sync_work(
    obj: &MaestroApply,
    target: &Target,
    desired: &ManifestWork,
    view: &View,
    ctx: &Context,
) -> (Outcome, Option<Error>) {
    if obj.spec.suspend {
        return (Outcome::Suspended, None);
    }
    if let Err(errors) = validate_work(desired) {
        return (
            Outcome::Failed {
                reason: "InvalidWork".into(),
                message: format!("the ManifestWork would be refused: {errors}"),
                terminal: true,
            },
            None,
        );
    }
    let desired_hash = spec_hash_of_work(desired);
    let mut adopt_from = None;
    if let Some(bundle) = &view.bundle {
        match bundle_owner(bundle) {
            Some(owner) if owner.uid != target.owner.uid => match owner_exists(ctx, &owner).await {
                Ok(true) => {
                    return (
                        Outcome::Claimed {
                            owner: owner.to_string(),
                        },
                        None,
                    );
                }
                // Its owner is gone (orphaned, or deleted while the
                // operator was not running): adopt it.
                Ok(false) => adopt_from = Some(owner.uid),
                Err(e) => return failed(e),
            },
            _ => {}
        }
        if bundle.is_deleting() {
            return (Outcome::WaitingForOldBundle, None);
        }
        if adopt_from.is_none() && bundle_spec_hash(bundle) == Some(desired_hash.as_str()) {
            return (Outcome::InSync, None);
        }
    }
    match publish(ctx, target, desired, &desired_hash, adopt_from.as_deref()).await {
        Ok(Published::Created) => {
            event(
                ctx,
                obj,
                EventType::Normal,
                "Created",
                "Publish",
                format!(
                    "created ManifestWork {} on consumer {} (resource bundle {})",
                    target.work, target.consumer, target.resource_id
                ),
            )
            .await;
            (Outcome::Published, None)
        }
        Ok(Published::Updated { from_version }) => {
            event(
                ctx,
                obj,
                EventType::Normal,
                "Updated",
                "Publish",
                format!(
                    "updated ManifestWork {} on consumer {} from bundle version {from_version}",
                    target.work, target.consumer
                ),
            )
            .await;
            (Outcome::Published, None)
        }
        Ok(Published::Unchanged) => (Outcome::InSync, None),
        Ok(Published::Deleting) => (Outcome::WaitingForOldBundle, None),
        Ok(Published::Claimed(owner)) => (Outcome::Claimed { owner }, None),
        Err(e) => failed(Error::Maestro(e)),
    }
}

fn failed(error: Error) -> (Outcome, Option<Error>) {
    let terminal = match &error {
        Error::Maestro(e) => matches!(
            e,
            crate::Error::InvalidWork(_)
                | crate::Error::Rejected { .. }
                | crate::Error::UnknownConsumer { .. }
                | crate::Error::Unauthenticated(_)
                | crate::Error::Forbidden(_)
                | crate::Error::Config(_)
        ),
        Error::InvalidSpec(_) | Error::Config(_) => true,
        Error::Kube(_) | Error::Finalizer(_) => false,
    };
    (
        Outcome::Failed {
            reason: error.reason().to_string(),
            message: error.to_string(),
            terminal,
        },
        Some(error),
    )
}

/// Whether the object named by a bundle's owner labels still exists (with
/// the same uid: a re-created namesake is another object).
async fn owner_exists(ctx: &Context, owner: &Owner) -> Result<bool> {
    if owner.namespace.is_empty() || owner.name.is_empty() {
        return Ok(true);
    }
    let api: Api<MaestroApply> = Api::namespaced(ctx.client.clone(), &owner.namespace);
    match api.get_opt(&owner.name).await {
        Ok(found) => Ok(found.is_some_and(|o| o.uid().as_deref() == Some(owner.uid.as_str()))),
        // An operator limited to its own namespace may not read the owner.
        // What it cannot see it must not take over: count the owner as
        // present, so the object reports the claim instead of an RBAC error.
        Err(e) if is_forbidden(&e) => {
            debug!(owner = %owner, "cannot read the bundle's owner; treating it as present");
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

fn is_forbidden(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 403)
}

enum Published {
    Created,
    Updated { from_version: i64 },
    Unchanged,
    Deleting,
    Claimed(String),
}

/// Publishes `desired` after a fresh read: create when Maestro has
/// nothing, update at the version read when it differs, nothing when it
/// matches; never over a bundle another owner holds (unless adopting from
/// `adopt_from`, an owner known to be gone). One conflict (a concurrent
/// create, a stale version) is retried with a new read.
async fn publish(
    ctx: &Context,
    target: &Target,
    desired: &ManifestWork,
    desired_hash: &str,
    adopt_from: Option<&str>,
) -> crate::Result<Published> {
    ctx.limiter.acquire().await;
    let client = ctx.maestro.get();
    let started = Instant::now();
    // "read" until the read before the write tells create from update.
    let mut action = "read";
    let mut outcome = Err(crate::Error::Protocol("no publish attempted".into()));
    for attempt in 0..2 {
        let current = match client.get_bundle(&target.consumer, &target.work).await {
            Ok(c) => c,
            Err(e) => {
                outcome = Err(e);
                break;
            }
        };
        let result = match current {
            None => {
                action = "create";
                client.create(desired).await.map(|()| Published::Created)
            }
            Some(bundle) if bundle.is_deleting() => Ok(Published::Deleting),
            Some(bundle) => {
                match bundle_owner(&bundle) {
                    Some(o) if o.uid == target.owner.uid || Some(o.uid.as_str()) == adopt_from => {}
                    Some(o) => {
                        outcome = Ok(Published::Claimed(o.to_string()));
                        break;
                    }
                    None => {
                        outcome = Ok(Published::Claimed(
                            "another client of this source ID (the bundle carries no owner label)"
                                .into(),
                        ));
                        break;
                    }
                }
                if bundle_spec_hash(&bundle) == Some(desired_hash) {
                    ctx.poller
                        .record(&target.consumer, target.resource_id, Some(bundle));
                    outcome = Ok(Published::Unchanged);
                    break;
                }
                action = "update";
                let from_version = bundle.version;
                client
                    .update(desired, from_version)
                    .await
                    .map(|()| Published::Updated { from_version })
            }
        };
        match result {
            Err(crate::Error::Conflict(_) | crate::Error::StaleVersion { .. }) if attempt == 0 => {
                debug!(consumer = %target.consumer, work = %target.work, "publish conflict; reading again");
            }
            other => {
                outcome = other;
                break;
            }
        }
    }
    let published = matches!(outcome, Ok(Published::Created | Published::Updated { .. }));
    if published || outcome.is_err() {
        ctx.metrics.publish_finished(
            action,
            started.elapsed(),
            outcome.as_ref().err().map(crate::Error::reason),
        );
    }
    if published {
        info!(consumer = %target.consumer, work = %target.work, action, "published");
        // Let reconciles see the new version before the next poll.
        match client.get_bundle(&target.consumer, &target.work).await {
            Ok(fresh) => ctx
                .poller
                .record(&target.consumer, target.resource_id, fresh),
            Err(e) => debug!(error = %e, "cannot read the bundle back; the next poll will"),
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16) -> kube::Error {
        let mut status = Status::failure("denied", "Forbidden");
        status.code = code;
        kube::Error::Api(status.boxed())
    }

    #[test]
    fn only_a_403_counts_as_not_allowed_to_read_the_owner() {
        assert!(is_forbidden(&api_error(403)));
        assert!(!is_forbidden(&api_error(404)));
        assert!(!is_forbidden(&api_error(500)));
    }
}
