//! `validate`: every client-side rule of the library, and, when Maestro
//! answers, that the consumer exists. Nothing is sent.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::maestro::error::Error;
use crate::manifestwork::{
    MAX_MANIFESTS_BYTES, Manifest, ManifestWork, ValidationErrors, validate_work,
};
use crate::names::{ConsumerName, WorkName};

use crate::cli::args::{ReadTimeout, reword};
use crate::cli::connection::Connection;
use crate::cli::errors::CliError;
use crate::cli::input::{self, Content};
use crate::cli::output;
use crate::cli::results::Report;

/// Stands in for a name or consumer the user did not give, so the rest of
/// the work can be checked; errors about it are dropped.
const PLACEHOLDER: &str = "placeholder";

#[derive(Args, Debug)]
#[command(mut_args(reword("timeout", |a| a
    .default_value("10s")
    .help("How long to try reaching Maestro for the consumer check"))))]
pub struct ValidateArgs {
    /// A ManifestWork, or manifests, in YAML or JSON; - reads standard input
    #[arg(long, short = 'f', value_name = "FILE")]
    pub manifest_file: PathBuf,
    /// The consumer the work is for; checked against Maestro when it answers
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<ConsumerName>,
    /// The work's name, for files that hold manifests
    #[arg(long, value_name = "NAME")]
    pub name: Option<WorkName>,
    #[command(flatten)]
    pub timeout: ReadTimeout,
}

pub async fn run(conn: &Connection, args: ValidateArgs) -> Result<Report, CliError> {
    let input = input::load(&args.manifest_file)?;
    let origin = input.origin.clone();
    let file_name = match &input.content {
        Content::Work(w) => w.metadata.name.clone().filter(|n| !n.is_empty()),
        Content::Manifests(_) => None,
    };
    let file_namespace = match &input.content {
        Content::Work(w) => w.metadata.namespace.clone().filter(|n| !n.is_empty()),
        Content::Manifests(_) => None,
    };
    let placeholder_name = args.name.is_none() && file_name.is_none();
    let placeholder =
        ConsumerName::new(PLACEHOLDER).map_err(|e| CliError::Failed(e.to_string()))?;
    let consumer = match (&args.consumer, &file_namespace) {
        (Some(c), _) => c.clone(),
        (None, Some(ns)) => ConsumerName::new(ns.clone()).unwrap_or_else(|_| placeholder.clone()),
        (None, None) => placeholder.clone(),
    };
    let placeholder_consumer = args.consumer.is_none() && file_namespace.is_none();
    let name = args.name.clone().or_else(|| {
        placeholder_name
            .then(|| WorkName::new(PLACEHOLDER).ok())
            .flatten()
    });

    let mut problems = ValidationErrors::default();
    let work = match input::work_for(input, &consumer, name.as_ref()) {
        Ok(work) => Some(work),
        Err(e) => {
            problems.0.push(crate::manifestwork::FieldError {
                field: "metadata".into(),
                message: e
                    .to_string()
                    .trim_start_matches(&format!("{origin}: "))
                    .to_string(),
            });
            None
        }
    };
    if let Some(work) = &work
        && let Err(errors) = validate_work(work)
    {
        problems.0.extend(errors.into_iter().filter(|e| {
            !(placeholder_name && e.field == "metadata.name"
                || placeholder_consumer && e.field == "metadata.namespace")
        }));
    }
    if !problems.is_empty() {
        return Err(CliError::Invalid {
            origin,
            errors: problems,
        });
    }
    let work = work.ok_or_else(|| CliError::Failed("no work to check".into()))?;

    if let Some(consumer) = &args.consumer {
        check_consumer(conn, consumer, args.timeout.duration).await?;
    }

    let consumer = (!placeholder_consumer).then_some(&consumer);
    output::emit(&verdict(&origin, &work, placeholder_name, consumer))?;
    Ok(Report::success())
}

/// The line that says the file is valid, naming only what the user gave
/// (a placeholder name or consumer stays unsaid).
fn verdict(
    origin: &str,
    work: &ManifestWork,
    placeholder_name: bool,
    consumer: Option<&ConsumerName>,
) -> String {
    let manifests = &work.spec.workload.manifests;
    let bytes: usize = manifests.iter().map(Manifest::encoded_len).sum();
    let subject = if placeholder_name {
        "manifests".to_string()
    } else {
        format!(
            "ManifestWork {:?}",
            work.metadata.name.as_deref().unwrap_or_default()
        )
    };
    let for_consumer = consumer.map_or_else(String::new, |c| format!(" for consumer {c}"));
    format!(
        "{origin}: valid {subject}{for_consumer}: {} manifests, {bytes} of {MAX_MANIFESTS_BYTES} bytes\n",
        manifests.len()
    )
}

/// The consumer must exist when Maestro can be asked; when it cannot, the
/// check is skipped with a warning (validation works offline).
async fn check_consumer(
    conn: &Connection,
    consumer: &ConsumerName,
    timeout: Duration,
) -> Result<(), CliError> {
    let client = conn.client()?;
    let found = tokio::time::timeout(timeout, client.find_consumer(consumer)).await;
    match found {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(CliError::NotFound(format!(
            "consumer {:?} is not registered in Maestro at {}; register it with `maestro-cli consumers create {consumer}`",
            consumer.as_str(),
            client.rest_endpoint()
        ))),
        Ok(Err(e)) if e.is_transient() || matches!(e, Error::Protocol(_)) => {
            eprintln!("warning: could not check that consumer {consumer} exists: {e}");
            Ok(())
        }
        Ok(Err(e)) => Err(CliError::maestro("check the consumer", e)),
        Err(_) => {
            eprintln!(
                "warning: could not check that consumer {consumer} exists: Maestro did not answer within {timeout:?}"
            );
            Ok(())
        }
    }
}
