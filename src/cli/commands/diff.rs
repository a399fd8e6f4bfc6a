//! `diff`: what `apply` of a file would change, as unified diffs.
//!
//! Manifests are paired by apiVersion, kind, namespace and name and shown
//! as YAML with sorted keys, one diff per manifest that differs: `live/`
//! is what Maestro holds, `desired/` what the file asks for. Because apply
//! replaces the whole work, the work's own settings (labels, annotations,
//! delete option, manifest configs) are compared too, as
//! `ManifestWork/<name>`. Exit codes follow `kubectl diff`: 0 no
//! differences, 1 differences, 2 or more an error.

use std::path::PathBuf;

use clap::Args;
use serde_json::{Value, json};
use similar::TextDiff;

use crate::manifestwork::{Manifest, ManifestKey, ManifestWork};
use crate::names::{ConsumerName, WorkName};

use crate::cli::args::ReadTimeout;
use crate::cli::connection::Connection;
use crate::cli::errors::{CliError, ExitStatus};
use crate::cli::input::{self, clean_server_fields};
use crate::cli::output;
use crate::cli::remote::{ManifestSelector, find_retrying};
use crate::cli::results::Report;

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The work to compare with; required when the file holds manifests
    #[arg(long, value_name = "NAME")]
    pub name: Option<WorkName>,
    #[arg(long, value_name = "NAME")]
    pub consumer: ConsumerName,
    /// The desired state: a ManifestWork, or manifests; - reads standard input
    #[arg(long, short = 'f', value_name = "FILE")]
    pub manifest_file: PathBuf,
    /// Compare only this manifest (NAME, KIND/NAME or KIND/NAMESPACE/NAME)
    #[arg(long, value_name = "MANIFEST")]
    pub manifest_name: Option<String>,
    #[command(flatten)]
    pub timeout: ReadTimeout,
}

pub async fn run(conn: &Connection, args: DiffArgs) -> Result<Report, CliError> {
    let input = input::load(&args.manifest_file)?;
    let origin = input.origin.clone();
    let selector = args
        .manifest_name
        .as_deref()
        .map(ManifestSelector::parse)
        .transpose()?;
    let desired = input::work_for(input, &args.consumer, args.name.as_ref())?;
    let name = WorkName::new(desired.metadata.name.clone().unwrap_or_default())
        .map_err(|e| CliError::Usage(format!("{origin}: {e}")))?;

    let deadline = args.timeout.deadline();
    let client = conn.client()?;
    let live = find_retrying(client, &deadline, &args.consumer, &name)
        .await?
        .map(|r| {
            let mut w = r.work;
            clean_server_fields(&mut w);
            w
        });

    let text = match &selector {
        Some(selector) => {
            let pick = |w: &ManifestWork| -> Result<Option<Manifest>, CliError> {
                Ok(selector
                    .find_in(&w.spec.workload.manifests)?
                    .map(|i| w.spec.workload.manifests[i].clone()))
            };
            let want = pick(&desired)?.ok_or_else(|| {
                CliError::Usage(format!(
                    "{origin}: no manifest matches --manifest-name {selector}"
                ))
            })?;
            let have = match &live {
                Some(w) => pick(w)?,
                None => None,
            };
            manifest_diff(&want.key(), have.as_ref(), Some(&want))
        }
        None => work_diff(&name, live.as_ref(), &desired),
    };
    if text.is_empty() {
        return Ok(Report::success());
    }
    output::emit(&text)?;
    Ok(Report {
        status: ExitStatus::Differences,
        result: None,
    })
}

/// A manifest as YAML (keys sorted, since JSON maps here are ordered).
fn yaml_of(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(v) => output::to_yaml(v).unwrap_or_else(|e| format!("# cannot render: {e}\n")),
    }
}

fn path_of(key: &ManifestKey) -> String {
    let kind = if key.kind.is_empty() { "_" } else { &key.kind };
    if key.namespace.is_empty() {
        format!("{}/{kind}/{}", key.api_version, key.name)
    } else {
        format!("{}/{kind}/{}/{}", key.api_version, key.namespace, key.name)
    }
}

fn unified(path: &str, live: &str, desired: &str) -> String {
    if live == desired {
        return String::new();
    }
    TextDiff::from_lines(live, desired)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{path}"), &format!("desired/{path}"))
        .to_string()
}

/// The diff of one manifest; empty when equal.
pub fn manifest_diff(
    key: &ManifestKey,
    live: Option<&Manifest>,
    desired: Option<&Manifest>,
) -> String {
    let live = yaml_of(live.map(|m| Value::Object(m.0.clone())).as_ref());
    let desired = yaml_of(desired.map(|m| Value::Object(m.0.clone())).as_ref());
    unified(&path_of(key), &live, &desired)
}

/// The settings of a work besides its manifests.
fn settings(work: &ManifestWork) -> Value {
    json!({
        "metadata": {
            "labels": work.metadata.labels,
            "annotations": work.metadata.annotations,
        },
        "spec": {
            "deleteOption": work.spec.delete_option,
            "manifestConfigs": work.spec.manifest_configs,
            "executor": work.spec.executor,
        }
    })
}

/// The diffs of a whole work: settings first, then manifests in the live
/// order, then manifests only the file has.
pub fn work_diff(name: &WorkName, live: Option<&ManifestWork>, desired: &ManifestWork) -> String {
    let mut out = String::new();
    let live_settings = live.map(settings);
    out.push_str(&unified(
        &format!("ManifestWork/{name}"),
        &yaml_of(live_settings.as_ref()),
        &yaml_of(Some(&settings(desired))),
    ));
    let live_manifests: &[Manifest] = live.map_or(&[], |w| &w.spec.workload.manifests);
    let wanted = &desired.spec.workload.manifests;
    let find =
        |list: &[Manifest], key: &ManifestKey| list.iter().find(|m| &m.key() == key).cloned();
    for m in live_manifests {
        let key = m.key();
        out.push_str(&manifest_diff(&key, Some(m), find(wanted, &key).as_ref()));
    }
    for m in wanted {
        let key = m.key();
        if find(live_manifests, &key).is_none() {
            out.push_str(&manifest_diff(&key, None, Some(m)));
        }
    }
    out
}

#[cfg(test)]
mod tests;
