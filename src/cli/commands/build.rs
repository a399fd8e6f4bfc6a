//! `build`: fetch the remote work (or start a new one), turn a source file
//! into manifests and combine them, then print, save or apply the result.
//!
//! Sources: Kubernetes manifests in any shape `apply` reads (a
//! ManifestWork lends its manifests), or the guide's nodepool
//! configuration (see [`super::nodepool`]).
//!
//! Strategies, matching manifests by kind, namespace and name:
//! - `merge` (default): a source manifest replaces the remote one with the
//!   same kind/namespace/name in place, or is appended; the others stay.
//! - `replace`: as merge, and remote manifests of a kind the source
//!   provides but whose name it does not list are removed (for nodepools:
//!   the source's NodePools become the only ones). Removing needs
//!   `--force`, so a short source cannot silently drop resources.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::maestro::error::Error;
use crate::maestro::work_client::WorkClient;
use crate::manifestwork::{Manifest, ManifestWork, validate_work};
use crate::names::ConsumerName;

use crate::cli::args::{WorkOnConsumer, WriteTimeout};
use crate::cli::connection::Connection;
use crate::cli::errors::CliError;
use crate::cli::errors::explain_unknown_consumer;
use crate::cli::input::{self, clean_server_fields};
use crate::cli::nodepool;
use crate::cli::ops::guard::{Touch, refuse_foreign, refuse_managed};
use crate::cli::ops::wait::{self, WorkCondition};
use crate::cli::output;
use crate::cli::output::Progress;
use crate::cli::remote::{Remote, describe_manifest, find_retrying};
use crate::cli::results::Report;
use crate::cli::results::{ResultsArgs, StatusResult, Subject};
use crate::cli::runtime::{Deadline, retry};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Strategy {
    /// Replace same kind/namespace/name, add new, keep the rest
    #[default]
    Merge,
    /// Like merge, and drop remote manifests of the source's kinds that the source does not list (needs --force)
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum FileFormat {
    #[default]
    Yaml,
    Json,
}

#[derive(Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub work: WorkOnConsumer,
    /// Manifests (YAML/JSON, List, ManifestWork) or a nodepool configuration
    #[arg(long, value_name = "FILE")]
    pub source_file: PathBuf,
    #[arg(long, value_enum, default_value_t = Strategy::Merge)]
    pub strategy: Strategy,
    /// Write the built ManifestWork to this file (default: standard output, unless --apply)
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = FileFormat::Yaml)]
    pub format: FileFormat,
    /// Apply the built work to Maestro
    #[arg(long, conflicts_with = "dry_run")]
    pub apply: bool,
    /// After --apply, wait for --condition
    #[arg(long, requires = "apply")]
    pub watch: bool,
    /// The condition --watch waits for
    #[arg(long, value_enum, ignore_case = true, default_value_t = WorkCondition::Applied, requires = "watch")]
    pub condition: WorkCondition,
    /// Build and validate, print what would change, write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Allow --strategy replace to remove manifests, and --apply to change a work a MaestroApply manages (it carries the operator's owner labels)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub timeout: WriteTimeout,
    #[command(flatten)]
    pub results: ResultsArgs,
}

/// What combining did to the remote manifests.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    pub unchanged: Vec<String>,
    pub kept: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_noop(&self) -> bool {
        self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty()
    }

    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} added, {} replaced, {} unchanged, {} kept, {} removed",
            self.added.len(),
            self.replaced.len(),
            self.unchanged.len(),
            self.kept.len(),
            self.removed.len()
        );
        for (what, list) in [
            ("added", &self.added),
            ("replaced", &self.replaced),
            ("removed", &self.removed),
        ] {
            if !list.is_empty() {
                s.push_str(&format!("; {what}: {}", list.join(", ")));
            }
        }
        s
    }
}

/// kind/namespace/name, the guide's identity of a manifest.
fn identity(m: &Manifest) -> (String, String, String) {
    let k = m.key();
    (k.kind, k.namespace, k.name)
}

/// Combines `source` into `existing` by `strategy`.
pub fn combine(
    existing: &[Manifest],
    source: &[Manifest],
    strategy: Strategy,
) -> (Vec<Manifest>, Changes) {
    let mut changes = Changes::default();
    let source_kinds: std::collections::BTreeSet<String> = source
        .iter()
        .filter_map(|m| m.kind().map(str::to_string))
        .collect();
    let mut out = Vec::new();
    for m in existing {
        match source.iter().find(|s| identity(s) == identity(m)) {
            Some(s) if s == m => {
                changes.unchanged.push(describe_manifest(m));
                out.push(m.clone());
            }
            Some(s) => {
                changes.replaced.push(describe_manifest(m));
                out.push(s.clone());
            }
            None if strategy == Strategy::Replace
                && m.kind().is_some_and(|k| source_kinds.contains(k)) =>
            {
                changes.removed.push(describe_manifest(m));
            }
            None => {
                changes.kept.push(describe_manifest(m));
                out.push(m.clone());
            }
        }
    }
    for s in source {
        if !existing.iter().any(|m| identity(m) == identity(s)) {
            changes.added.push(describe_manifest(s));
            out.push(s.clone());
        }
    }
    (out, changes)
}

/// Reads the source file into manifests.
pub fn load_source(
    path: &std::path::Path,
    consumer: &ConsumerName,
) -> Result<Vec<Manifest>, CliError> {
    let (origin, text) = input::read_text(path)?;
    let docs = input::documents(&origin, &text)?;
    if docs.len() == 1 && nodepool::is_nodepool_config(&docs[0]) {
        let config = nodepool::parse(&origin, &text)?;
        nodepool::check(&origin, &config, consumer.as_str())?;
        return Ok(nodepool::to_manifests(&config));
    }
    let manifests = input::parse(&origin, &text)?.into_manifests();
    if manifests.is_empty() {
        return Err(CliError::InputFile(format!("{origin}: holds no manifests")));
    }
    Ok(manifests)
}

struct Built {
    work: ManifestWork,
    changes: Changes,
    remote: Option<Remote>,
}

async fn build_once(
    client: &WorkClient,
    args: &BuildArgs,
    source: &[Manifest],
    deadline: &Deadline,
) -> Result<Built, CliError> {
    let remote = find_retrying(client, deadline, &args.work.consumer, &args.work.name).await?;
    let mut work = match &remote {
        Some(r) => {
            let mut w = r.work.clone();
            clean_server_fields(&mut w);
            w
        }
        None => {
            ManifestWork::for_consumer(args.work.consumer.as_str(), args.work.name.as_str(), vec![])
        }
    };
    let (manifests, changes) = combine(&work.spec.workload.manifests, source, args.strategy);
    if !changes.removed.is_empty() && !args.force {
        return Err(CliError::Usage(format!(
            "--strategy replace would remove {} manifests the source does not list ({}); pass --force to remove them",
            changes.removed.len(),
            changes.removed.join(", ")
        )));
    }
    work.spec.workload.manifests = manifests;
    validate_work(&work).map_err(|errors| CliError::Invalid {
        origin: format!("built manifestwork {}", args.work.name),
        errors,
    })?;
    Ok(Built {
        work,
        changes,
        remote,
    })
}

pub async fn run(
    conn: &Connection,
    args: BuildArgs,
    subject: &mut Subject,
) -> Result<Report, CliError> {
    subject.name = args.work.name.to_string();
    subject.consumer = args.work.consumer.to_string();
    let deadline = args.timeout.deadline();
    let source = load_source(&args.source_file, &args.work.consumer)?;
    let client = conn.client()?;

    let mut attempt = 0;
    loop {
        attempt += 1;
        let built = build_once(client, &args, &source, &deadline).await?;
        let summary = built.changes.summary();
        eprintln!("build manifestwork/{}: {summary}", args.work.name);
        let rendered = match args.format {
            FileFormat::Yaml => output::to_yaml(&built.work)?,
            FileFormat::Json => output::to_json_pretty(&built.work)?,
        };
        if args.dry_run {
            eprintln!("dry run: nothing written");
            return Ok(Report::with_result(StatusResult::new(
                subject,
                "Valid",
                format!("dry run: {summary}"),
            )));
        }
        if attempt == 1 {
            match &args.output {
                Some(path) => std::fs::write(path, &rendered).map_err(|e| {
                    CliError::Failed(format!("cannot write {}: {e}", path.display()))
                })?,
                None if !args.apply => output::emit(&rendered)?,
                None => {}
            }
        }
        if !args.apply {
            return Ok(Report::with_result(StatusResult::new(
                subject, "Built", summary,
            )));
        }

        let written = write(client, &args, &built, &deadline).await;
        let verb = match written {
            Ok(verb) => verb,
            Err(CliError::Maestro {
                source: Error::StaleVersion { .. } | Error::Conflict(_),
                ..
            }) if attempt < 3 => {
                tracing::info!(attempt, "the work changed meanwhile; building again");
                continue;
            }
            Err(e) => return Err(explain_unknown_consumer(e)),
        };
        output::emit(&format!("manifestwork/{} {verb}\n", args.work.name))?;
        let message = format!("ManifestWork {verb}: {summary}");
        return finish(client, &args, subject, &deadline, message).await;
    }
}

/// Sends the built work: an update of the version it was built from, or a
/// create; returns what happened, as `apply` words it.
async fn write(
    client: &WorkClient,
    args: &BuildArgs,
    built: &Built,
    deadline: &Deadline,
) -> Result<String, CliError> {
    let Some(remote) = &built.remote else {
        return retry(
            deadline,
            &format!("create manifestwork {}", args.work.name),
            async || client.create(&built.work).await,
        )
        .await
        .map(|()| "created (version 1)".to_string());
    };
    refuse_foreign(client, &args.work.consumer, remote)?;
    refuse_managed(&args.work.consumer, remote, Touch::Change, args.force)?;
    if remote.held.is_deleting() {
        return Err(CliError::Failed(format!(
            "manifestwork {} on consumer {} is being deleted; build again once it is gone",
            args.work.name, args.work.consumer
        )));
    }
    if built.changes.is_noop() {
        return Ok(format!("unchanged (version {})", remote.version()));
    }
    let version = remote.version();
    retry(
        deadline,
        &format!("update manifestwork {}", args.work.name),
        async || client.update(&built.work, version).await,
    )
    .await
    .map(|()| format!("configured (version {})", version + 1))
}

/// After the write: with `--watch`, wait for the condition; else report
/// the work in progress.
async fn finish(
    client: &WorkClient,
    args: &BuildArgs,
    subject: &Subject,
    deadline: &Deadline,
    message: String,
) -> Result<Report, CliError> {
    if !args.watch {
        return Ok(Report::with_result(StatusResult::new(
            subject,
            "InProgress",
            message,
        )));
    }
    let mut progress = Progress::new();
    let remote = wait::wait_for(
        client,
        &args.work.consumer,
        &args.work.name,
        args.condition,
        None,
        deadline,
        &mut progress,
    )
    .await?;
    output::emit(&format!(
        "manifestwork/{} condition met: {}\n",
        args.work.name, args.condition
    ))?;
    let mut result = StatusResult::new(subject, args.condition.as_str(), message);
    if let Some(r) = &remote {
        result = result.with_snapshot(&r.snapshot());
    }
    Ok(Report::with_result(result))
}

#[cfg(test)]
mod tests;
