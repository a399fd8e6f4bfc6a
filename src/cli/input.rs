//! Reading what the user gives: a ManifestWork, or Kubernetes manifests to
//! put in one, from YAML or JSON.
//!
//! Accepted shapes:
//! - one ManifestWork (`kind: ManifestWork`), YAML or JSON;
//! - one or more manifests: a multi-document YAML stream, a JSON object or
//!   array, or a `kind: List` whose `items` are the manifests.
//!
//! Errors name the file and, for syntax and type errors, the line and
//! column; empty documents (such as a trailing `---`) are skipped.

use std::fmt;
use std::io::Read;
use std::path::Path;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::maestro::work_client::SPEC_HASH_ANNOTATION;
use crate::manifestwork::{MANIFESTWORK_API_VERSION, MANIFESTWORK_KIND, Manifest, ManifestWork};
use crate::names::{ConsumerName, WorkName};

use super::errors::CliError;

/// Larger files are refused before parsing: the manifests of one work may
/// take 500 KiB of JSON, and YAML is not ten times larger.
const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// How far one YAML document may expand once its aliases are resolved: a
/// few hundred bytes of `&a [*b, *b, ...]` layers can stand for gigabytes
/// ("billion laughs"). Maestro takes at most 500 KiB of manifests per work,
/// which is at most some 250,000 values; these bounds are far above that
/// and far below what would exhaust memory.
pub const MAX_YAML_VALUES: usize = 1_000_000;
/// ... and at most this much text in its keys and strings together.
pub const MAX_YAML_TEXT_BYTES: usize = 64 * 1024 * 1024;

/// A parsed input file.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// The file as messages name it (`<stdin>` for `-`).
    pub origin: String,
    pub content: Content,
}

#[derive(Debug, Clone)]
pub enum Content {
    Work(Box<ManifestWork>),
    Manifests(Vec<Manifest>),
}

impl InputFile {
    /// The manifests, whichever shape the file had.
    pub fn manifests(&self) -> &[Manifest] {
        match &self.content {
            Content::Work(w) => &w.spec.workload.manifests,
            Content::Manifests(m) => m,
        }
    }

    pub fn into_manifests(self) -> Vec<Manifest> {
        match self.content {
            Content::Work(w) => w.spec.workload.manifests,
            Content::Manifests(m) => m,
        }
    }
}

/// Reads a file (`-` for standard input), refusing missing, unreadable and
/// oversized ones with a message naming it.
pub fn read_text(path: &Path) -> Result<(String, String), CliError> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| CliError::InputFile(format!("<stdin>: cannot read: {e}")))?;
        if text.len() as u64 > MAX_INPUT_BYTES {
            return Err(too_large("<stdin>"));
        }
        return Ok(("<stdin>".into(), text));
    }
    let origin = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            CliError::InputFile(format!("{origin}: file does not exist"))
        }
        _ => CliError::InputFile(format!("{origin}: cannot read: {e}")),
    })?;
    if meta.is_dir() {
        return Err(CliError::InputFile(format!(
            "{origin}: is a directory, not a file"
        )));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(too_large(&origin));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::InputFile(format!("{origin}: cannot read: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| CliError::InputFile(format!("{origin}: is not UTF-8 text: {e}")))?;
    Ok((origin, text))
}

fn too_large(origin: &str) -> CliError {
    CliError::InputFile(format!(
        "{origin}: larger than {} MiB; the manifests of one work may take at most 500 KiB",
        MAX_INPUT_BYTES / 1024 / 1024
    ))
}

/// Reads and parses a file.
pub fn load(path: &Path) -> Result<InputFile, CliError> {
    let (origin, text) = read_text(path)?;
    parse(&origin, &text)
}

fn is_json(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('{' | '['))
}

/// The non-empty documents of a YAML or JSON text, as JSON values.
pub fn documents(origin: &str, text: &str) -> Result<Vec<Value>, CliError> {
    if text.trim().is_empty() {
        return Err(CliError::InputFile(format!(
            "{origin}: is empty; expected a ManifestWork or Kubernetes manifests"
        )));
    }
    if is_json(text) {
        let value: Value = serde_json::from_str(text).map_err(|e| json_error(origin, &e))?;
        return Ok(vec![value]);
    }
    let mut docs = Vec::new();
    for (d, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        let mut budget = Budget::new();
        let value = Bounded {
            budget: &mut budget,
        }
        .deserialize(document)
        .map_err(|e| {
            if budget.exceeded || e.to_string().contains("repetition limit exceeded") {
                too_expanded(origin, d + 1)
            } else {
                yaml_error(origin, &e)
            }
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    if docs.is_empty() {
        return Err(CliError::InputFile(format!(
            "{origin}: holds no document; expected a ManifestWork or Kubernetes manifests"
        )));
    }
    Ok(docs)
}

/// Parses a text: a ManifestWork or manifests.
pub fn parse(origin: &str, text: &str) -> Result<InputFile, CliError> {
    let docs = documents(origin, text)?;
    let is_work = |v: &Value| v.get("kind").and_then(Value::as_str) == Some(MANIFESTWORK_KIND);
    if docs.len() == 1 && is_work(&docs[0]) {
        check_work_api_version(origin, &docs[0])?;
        // Decode again from the text, not the value: only the text decoder
        // knows where a wrongly typed field is.
        let work: ManifestWork = if is_json(text) {
            serde_json::from_str(text).map_err(|e| json_error(origin, &e))?
        } else {
            serde_norway::from_str(text).map_err(|e| yaml_error(origin, &e))?
        };
        return Ok(InputFile {
            origin: origin.to_string(),
            content: Content::Work(Box::new(work)),
        });
    }
    if let Some(i) = docs.iter().position(is_work) {
        return Err(CliError::InputFile(format!(
            "{origin}: document {} is a ManifestWork; a ManifestWork file must hold that one document only",
            i + 1
        )));
    }
    let mut manifests = Vec::new();
    let many = docs.len() > 1;
    for (d, doc) in docs.into_iter().enumerate() {
        let place = |what: String| {
            if many {
                format!("{origin}: document {}: {what}", d + 1)
            } else {
                format!("{origin}: {what}")
            }
        };
        match doc {
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    manifests.push(
                        to_manifest(item)
                            .map_err(|m| CliError::InputFile(place(format!("item {i}: {m}"))))?,
                    );
                }
            }
            Value::Object(ref map)
                if map.get("kind").and_then(Value::as_str) == Some("List")
                    && map.get("apiVersion").and_then(Value::as_str) == Some("v1") =>
            {
                let items = match map.get("items") {
                    Some(Value::Array(items)) => items.clone(),
                    Some(Value::Null) | None => Vec::new(),
                    Some(_) => {
                        return Err(CliError::InputFile(place("items: must be a list".into())));
                    }
                };
                for (i, item) in items.into_iter().enumerate() {
                    manifests.push(
                        to_manifest(item)
                            .map_err(|m| CliError::InputFile(place(format!("items[{i}]: {m}"))))?,
                    );
                }
            }
            other => {
                manifests.push(to_manifest(other).map_err(|m| CliError::InputFile(place(m)))?);
            }
        }
    }
    Ok(InputFile {
        origin: origin.to_string(),
        content: Content::Manifests(manifests),
    })
}

/// The ManifestWork type drops `apiVersion` when decoding (it writes its
/// own), so a work of another group or version would otherwise pass as v1.
fn check_work_api_version(origin: &str, document: &Value) -> Result<(), CliError> {
    let found = match document.get("apiVersion") {
        Some(Value::String(v)) if v == MANIFESTWORK_API_VERSION => return Ok(()),
        Some(Value::String(v)) => format!("{v:?}"),
        Some(other) => other.to_string(),
        None => "missing".to_string(),
    };
    Err(CliError::InputFile(format!(
        "{origin}: apiVersion is {found}; a {MANIFESTWORK_KIND} must have apiVersion \
         {MANIFESTWORK_API_VERSION:?}"
    )))
}

fn too_expanded(origin: &str, document: usize) -> CliError {
    CliError::InputFile(format!(
        "{origin}: document {document}: expands to more than {MAX_YAML_VALUES} values or \
         {} MiB of text once its YAML aliases (*name) are resolved; a ManifestWork is far \
         smaller (Maestro takes at most 500 KiB of manifests), so this is refused",
        MAX_YAML_TEXT_BYTES / 1024 / 1024
    ))
}

/// What is left of the expansion bounds while one document is decoded.
struct Budget {
    values: usize,
    text_bytes: usize,
    exceeded: bool,
}

impl Budget {
    fn new() -> Budget {
        Budget {
            values: MAX_YAML_VALUES,
            text_bytes: MAX_YAML_TEXT_BYTES,
            exceeded: false,
        }
    }

    /// Counts one value of `text_bytes` bytes; fails once over a bound, so
    /// decoding stops there instead of expanding the rest.
    fn take<E: de::Error>(&mut self, text_bytes: usize) -> Result<(), E> {
        match (
            self.values.checked_sub(1),
            self.text_bytes.checked_sub(text_bytes),
        ) {
            (Some(values), Some(bytes)) => {
                self.values = values;
                self.text_bytes = bytes;
                Ok(())
            }
            _ => {
                self.exceeded = true;
                Err(E::custom("the document expands beyond the input bounds"))
            }
        }
    }
}

/// Decodes a [`Value`] as `serde_json` does, counting every value against
/// a [`Budget`]: aliases are resolved by the YAML decoder as it goes, so
/// this is where an expansion can be stopped.
struct Bounded<'b> {
    budget: &'b mut Budget,
}

impl<'de> DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.take(v.len())?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.take(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.budget.take(0)?;
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.budget.take(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Bounded {
            budget: &mut *self.budget,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.budget.take(0)?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            self.budget.take(key.len())?;
            let value = map.next_value_seed(Bounded {
                budget: &mut *self.budget,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

fn to_manifest(value: Value) -> Result<Manifest, String> {
    let manifest = Manifest::from_value(value).map_err(|e| e.to_string())?;
    if manifest.kind().is_none() || manifest.api_version().is_none() {
        return Err(format!(
            "is not a Kubernetes object: apiVersion and kind are required (keys found: {})",
            manifest
                .as_map()
                .keys()
                .take(6)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(manifest)
}

/// A JSON parse error as `origin: line L, column C: message`.
pub(crate) fn json_error(origin: &str, e: &serde_json::Error) -> CliError {
    at_location(origin, e.line(), e.column(), e)
}

/// A YAML parse error as `origin: line L, column C: message` (without a
/// location when the parser has none).
pub(crate) fn yaml_error(origin: &str, e: &serde_norway::Error) -> CliError {
    match e.location() {
        Some(loc) => at_location(origin, loc.line(), loc.column(), e),
        None => CliError::InputFile(format!("{origin}: {e}")),
    }
}

fn at_location(origin: &str, line: usize, column: usize, e: &dyn std::fmt::Display) -> CliError {
    // Both parsers append " at line L column C" themselves; say it first,
    // the way compilers do, and keep the message before it.
    let text = e.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    CliError::InputFile(format!("{origin}: line {line}, column {column}: {message}"))
}

/// The work to send for an input: a ManifestWork file as it is (its name
/// and namespace must agree with the flags), or manifests wrapped in a new
/// work named by `--name`. Fields the server sets are dropped, so the
/// output of `get -o yaml` can be applied again.
pub fn work_for(
    input: InputFile,
    consumer: &ConsumerName,
    name: Option<&WorkName>,
) -> Result<ManifestWork, CliError> {
    let origin = input.origin;
    let mut work = match input.content {
        Content::Manifests(manifests) => {
            let name = name.ok_or_else(|| {
                CliError::Usage(format!(
                    "{origin} holds manifests, not a ManifestWork: give the work a name with --name"
                ))
            })?;
            ManifestWork::for_consumer(consumer.as_str(), name.as_str(), manifests)
        }
        Content::Work(work) => {
            let mut work = *work;
            match (work.metadata.name.as_deref(), name) {
                (Some(file), Some(flag)) if !file.is_empty() && file != flag.as_str() => {
                    return Err(CliError::Usage(format!(
                        "{origin}: metadata.name is {file:?} but --name is {:?}; they must agree",
                        flag.as_str()
                    )));
                }
                (_, Some(flag)) => work.metadata.name = Some(flag.to_string()),
                (Some(file), None) if !file.is_empty() => {}
                _ => {
                    return Err(CliError::Usage(format!(
                        "{origin}: metadata.name is missing: set it or give --name"
                    )));
                }
            }
            match work.metadata.namespace.as_deref() {
                Some(ns) if !ns.is_empty() && ns != consumer.as_str() => {
                    return Err(CliError::Usage(format!(
                        "{origin}: metadata.namespace is {ns:?} but --consumer is {:?}; \
                         a work's namespace is its consumer, so they must agree (or drop the namespace)",
                        consumer.as_str()
                    )));
                }
                _ => work.metadata.namespace = Some(consumer.to_string()),
            }
            work
        }
    };
    clean_server_fields(&mut work);
    Ok(work)
}

/// Drops what the server and this client fill in, keeping the user's
/// name, namespace, labels and annotations.
pub fn clean_server_fields(work: &mut ManifestWork) {
    let m = &mut work.metadata;
    m.uid = None;
    m.resource_version = None;
    m.generation = None;
    m.creation_timestamp = None;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
    m.managed_fields = None;
    m.self_link = None;
    if let Some(annotations) = &mut m.annotations {
        annotations.remove(SPEC_HASH_ANNOTATION);
        if annotations.is_empty() {
            m.annotations = None;
        }
    }
    work.status = None;
}

#[cfg(test)]
mod tests;
