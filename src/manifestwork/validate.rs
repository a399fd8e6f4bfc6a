//! Client-side validation of ManifestWorks.
//!
//! It combines what would otherwise refuse a work later, each with a less
//! helpful message: the Go source client (`ValidateWork`), the Maestro
//! server (`ValidateManifestBundle`, `maestro-8`), the hub webhook and the
//! agent (non-empty manifests, 500 KiB), and the CRD schema (enums, list-map
//! keys, patterns). Checks that need the server (the executor's
//! SubjectAccessReview, CEL compilation) are left to it. Every problem is
//! collected, so a user can fix them all in one pass.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Map, Value};

use super::types::{
    ConditionRule, ConditionRuleType, DEFAULT_FIELD_MANAGER, DeleteOption, DeletePropagationPolicy,
    ExecutorSubjectType, FeedbackRule, FeedbackType, Manifest, ManifestConfigOption, ManifestKey,
    ManifestWork, ManifestWorkExecutor, ResourceIdentifier, StringEnum, UpdateStrategy,
};
use crate::names::{check_dns1123_label, check_dns1123_subdomain};

/// The most JSON all manifests of one work may take together: the default
/// of the hub webhook and the agent.
pub const MAX_MANIFESTS_BYTES: usize = 500 * 1024;

/// Kubernetes' limit on the keys and values of all annotations of an object.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// The longest condition type the CRD accepts.
const MAX_CONDITION_TYPE_LEN: usize = 316;

const MANIFESTS: &str = "spec.workload.manifests";

/// One problem, at a path such as `spec.workload.manifests[2].metadata.name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// Every problem found in a work, in the order of its fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("{}", join(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(FieldError::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl ValidationErrors {
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl IntoIterator for ValidationErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Checks a whole work before it is sent.
pub fn validate_work(work: &ManifestWork) -> Result<(), ValidationErrors> {
    let mut errs = ValidationErrors::default();
    check_work_metadata(&work.metadata, &mut errs);
    check_manifests(&work.spec.workload.manifests, &mut errs);
    if let Some(option) = &work.spec.delete_option {
        check_delete_option(option, &mut errs);
    }
    for (i, config) in work.spec.manifest_configs.iter().enumerate() {
        check_manifest_config(&format!("spec.manifestConfigs[{i}]"), config, &mut errs);
    }
    if let Some(executor) = &work.spec.executor {
        check_executor(executor, &mut errs);
    }
    errs.into_result()
}

/// Checks the manifests of a work on their own. Errors name the fields as
/// `spec.workload.manifests[i]...`.
pub fn validate_manifests(manifests: &[Manifest]) -> Result<(), ValidationErrors> {
    let mut errs = ValidationErrors::default();
    check_manifests(manifests, &mut errs);
    errs.into_result()
}

fn check_work_metadata(meta: &ObjectMeta, errs: &mut ValidationErrors) {
    match meta.namespace.as_deref() {
        None | Some("") => errs.add(
            "metadata.namespace",
            "is required: set it to the consumer (target cluster) name",
        ),
        Some(ns) => {
            if let Err(reason) = check_dns1123_label(ns) {
                errs.add(
                    "metadata.namespace",
                    format!("consumer name {ns:?} is invalid: {reason}"),
                );
            }
        }
    }
    match meta.name.as_deref() {
        None | Some("") => errs.add(
            "metadata.name",
            "is required (generateName is not supported: the Maestro resource ID is derived from the name)",
        ),
        Some(name) => {
            if let Err(reason) = check_dns1123_label(name) {
                errs.add(
                    "metadata.name",
                    format!("work name {name:?} is invalid: {reason}"),
                );
            }
        }
    }
    if let Some(labels) = &meta.labels {
        check_labels("metadata.labels", labels.iter(), errs);
    }
    if let Some(annotations) = &meta.annotations {
        check_annotations("metadata.annotations", annotations.iter(), errs);
    }
    if let Some(finalizers) = &meta.finalizers {
        check_finalizers("metadata.finalizers", finalizers.iter(), errs);
    }
}

fn check_manifests(manifests: &[Manifest], errs: &mut ValidationErrors) {
    if manifests.is_empty() {
        errs.add(MANIFESTS, "must contain at least one manifest");
        return;
    }
    let total: usize = manifests.iter().map(Manifest::encoded_len).sum();
    if total > MAX_MANIFESTS_BYTES {
        errs.add(
            MANIFESTS,
            format!(
                "the manifests take {total} bytes of JSON, more than the limit of \
                 {MAX_MANIFESTS_BYTES} bytes (500 KiB); split them across several works"
            ),
        );
    }
    let mut seen: HashMap<ManifestKey, usize> = HashMap::new();
    for (i, manifest) in manifests.iter().enumerate() {
        let path = format!("{MANIFESTS}[{i}]");
        check_manifest(&path, manifest, errs);
        let key = manifest.key();
        // A manifest without kind or name is already reported; comparing
        // such keys would only add noise.
        if key.kind.is_empty() || key.name.is_empty() {
            continue;
        }
        match seen.get(&key) {
            Some(first) => errs.add(
                path,
                format!(
                    "duplicates {MANIFESTS}[{first}] ({key}); a work may hold each resource only once"
                ),
            ),
            None => {
                seen.insert(key, i);
            }
        }
    }
}

fn check_manifest(path: &str, manifest: &Manifest, errs: &mut ValidationErrors) {
    let obj = manifest.as_map();
    match required_str(obj, "apiVersion") {
        Ok(api_version) => {
            for problem in api_version_problems(api_version) {
                errs.add(
                    format!("{path}.apiVersion"),
                    format!("{api_version:?} is invalid: {problem}"),
                );
            }
        }
        Err(problem) => errs.add(
            format!("{path}.apiVersion"),
            format!("{problem}, e.g. \"v1\" or \"apps/v1\""),
        ),
    }
    if let Err(problem) = required_str(obj, "kind") {
        errs.add(
            format!("{path}.kind"),
            format!("{problem}, e.g. \"ConfigMap\""),
        );
    }
    match obj.get("metadata") {
        None | Some(Value::Null) => errs.add(format!("{path}.metadata.name"), "is required"),
        Some(Value::Object(meta)) => {
            check_manifest_metadata(&format!("{path}.metadata"), meta, errs)
        }
        Some(_) => errs.add(format!("{path}.metadata"), "must be an object"),
    }
}

fn check_manifest_metadata(path: &str, meta: &Map<String, Value>, errs: &mut ValidationErrors) {
    if let Err(problem) = required_str(meta, "name") {
        errs.add(format!("{path}.name"), problem);
    }
    match meta.get("namespace") {
        None | Some(Value::Null) => {}
        Some(Value::String(ns)) if ns.is_empty() => {}
        Some(Value::String(ns)) => {
            if let Err(reason) = check_dns1123_label(ns) {
                errs.add(
                    format!("{path}.namespace"),
                    format!("{ns:?} is invalid: {reason}"),
                );
            }
        }
        Some(_) => errs.add(format!("{path}.namespace"), "must be a string"),
    }
    let forbidden = [
        (
            "generateName",
            "must not be set: the agent applies each manifest by its fixed metadata.name",
        ),
        (
            "resourceVersion",
            "must not be set: resource versions belong to the managed cluster",
        ),
        (
            "deletionGracePeriodSeconds",
            "must not be set: it is managed by the API server of the managed cluster",
        ),
    ];
    for (key, message) in forbidden {
        let set = match meta.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if set {
            errs.add(format!("{path}.{key}"), message);
        }
    }
    if let Some(labels) = string_map(path, meta, "labels", errs) {
        check_labels(&format!("{path}.labels"), labels.into_iter(), errs);
    }
    if let Some(annotations) = string_map(path, meta, "annotations", errs) {
        check_annotations(
            &format!("{path}.annotations"),
            annotations.into_iter(),
            errs,
        );
    }
    match meta.get("finalizers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            let field = format!("{path}.finalizers");
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(name) => names.push(name),
                    None => errs.add(field.clone(), format!("{item} must be a string")),
                }
            }
            check_finalizers(&field, names.into_iter(), errs);
        }
        Some(_) => errs.add(format!("{path}.finalizers"), "must be a list of strings"),
    }
}

/// The string at `key`; the error says why there is none.
fn required_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a str, &'static str> {
    match obj.get(key) {
        None | Some(Value::Null) => Err("is required"),
        Some(Value::String(s)) if s.is_empty() => Err("is required"),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err("must be a string"),
    }
}

/// Reads `metadata.<key>` as a map of strings, reporting entries that are not.
fn string_map<'a>(
    path: &str,
    meta: &'a Map<String, Value>,
    key: &str,
    errs: &mut ValidationErrors,
) -> Option<BTreeMap<&'a String, &'a str>> {
    match meta.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => {
            let mut out = BTreeMap::new();
            for (k, v) in map {
                match v.as_str() {
                    Some(s) => {
                        out.insert(k, s);
                    }
                    None => errs.add(
                        format!("{path}.{key}"),
                        format!("the value of {k:?} must be a string, not {v}"),
                    ),
                }
            }
            Some(out)
        }
        Some(_) => {
            errs.add(format!("{path}.{key}"), "must be a map of strings");
            None
        }
    }
}

/// Problems with an `apiVersion`: `version` or `group/version`, the group a
/// DNS-1123 subdomain and the version a DNS-1035 label, as Maestro checks.
fn api_version_problems(api_version: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let parts: Vec<&str> = api_version.split('/').collect();
    let version = match parts.as_slice() {
        [version] => *version,
        [group, version] => {
            if group.is_empty() {
                problems.push("the group before '/' must not be empty".to_string());
            } else if let Err(reason) = check_dns1123_subdomain(group) {
                problems.push(format!("group {group:?} {reason}"));
            }
            *version
        }
        _ => {
            problems.push("must be \"version\" or \"group/version\"".to_string());
            return problems;
        }
    };
    if version.is_empty() {
        problems.push("the version must not be empty".to_string());
    } else if let Err(reason) = check_dns1035_label(version) {
        problems.push(format!("version {version:?} {reason}"));
    }
    problems
}

/// RFC 1035 label: like an RFC 1123 label, but starting with a letter.
fn check_dns1035_label(value: &str) -> Result<(), String> {
    check_dns1123_label(value)?;
    if !value.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lower case letter (e.g. 'v1')".into());
    }
    Ok(())
}

/// A Kubernetes qualified name, the form of label keys, annotation keys and
/// finalizers: an optional DNS subdomain prefix and '/', then a name of at
/// most 63 alphanumerics, '-', '_' or '.'.
fn check_qualified_name(value: &str) -> Result<(), String> {
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if name.contains('/') {
        return Err("may contain at most one '/', between prefix and name \
                    (e.g. 'example.com/my-name')"
            .into());
    }
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err("the prefix before '/' must not be empty".into());
        }
        check_dns1123_subdomain(prefix).map_err(|r| format!("prefix {prefix:?} {r}"))?;
    }
    if name.is_empty() {
        return Err("the name part must not be empty".into());
    }
    if name.len() > 63 {
        return Err(format!(
            "the name part must be at most 63 characters, has {}",
            name.len()
        ));
    }
    check_name_chars(name).map_err(|r| format!("the name part {r}"))
}

/// Alphanumerics, '-', '_' and '.', starting and ending alphanumeric.
fn check_name_chars(value: &str) -> Result<(), String> {
    let inner = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
    let ends_ok = value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if value.chars().all(inner) && ends_ok {
        Ok(())
    } else {
        Err("must consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character"
            .into())
    }
}

fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 {
        return Err(format!(
            "must be at most 63 characters, has {}",
            value.len()
        ));
    }
    check_name_chars(value)
}

fn check_labels<K, V>(
    field: &str,
    labels: impl Iterator<Item = (K, V)>,
    errs: &mut ValidationErrors,
) where
    K: AsRef<str>,
    V: AsRef<str>,
{
    for (key, value) in labels {
        let (key, value) = (key.as_ref(), value.as_ref());
        if let Err(reason) = check_qualified_name(key) {
            errs.add(field, format!("key {key:?} is invalid: {reason}"));
        }
        if let Err(reason) = check_label_value(value) {
            errs.add(
                field,
                format!("value {value:?} of key {key:?} is invalid: {reason}"),
            );
        }
    }
}

fn check_annotations<K, V>(
    field: &str,
    annotations: impl Iterator<Item = (K, V)>,
    errs: &mut ValidationErrors,
) where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut total = 0usize;
    for (key, value) in annotations {
        let (key, value) = (key.as_ref(), value.as_ref());
        total += key.len() + value.len();
        // Kubernetes ignores case in annotation keys.
        if let Err(reason) = check_qualified_name(&key.to_ascii_lowercase()) {
            errs.add(field, format!("key {key:?} is invalid: {reason}"));
        }
    }
    if total > MAX_ANNOTATIONS_BYTES {
        errs.add(
            field,
            format!(
                "keys and values take {total} bytes, more than the limit of \
                 {MAX_ANNOTATIONS_BYTES} bytes (256 KiB)"
            ),
        );
    }
}

fn check_finalizers<S: AsRef<str>>(
    field: &str,
    finalizers: impl Iterator<Item = S>,
    errs: &mut ValidationErrors,
) {
    let (mut orphan, mut foreground) = (false, false);
    for finalizer in finalizers {
        let finalizer = finalizer.as_ref();
        orphan |= finalizer == "orphan";
        foreground |= finalizer == "foregroundDeletion";
        if let Err(reason) = check_qualified_name(finalizer) {
            errs.add(field, format!("{finalizer:?} is invalid: {reason}"));
        }
    }
    if orphan && foreground {
        errs.add(
            field,
            "\"orphan\" and \"foregroundDeletion\" cannot both be set",
        );
    }
}

fn check_enum<E: StringEnum>(field: impl Into<String>, value: &E, errs: &mut ValidationErrors) {
    if !value.is_known() {
        errs.add(
            field,
            format!(
                "unsupported value {:?}; supported values: {}",
                value.as_str(),
                E::VALUES.join(", ")
            ),
        );
    }
}

/// Reports every later item whose key repeats an earlier one, as the API
/// server does for `x-kubernetes-list-type: map` lists.
fn check_unique_keys<K: Eq + std::hash::Hash + Display>(
    list_path: &str,
    key_name: &str,
    keys: impl Iterator<Item = K>,
    errs: &mut ValidationErrors,
) {
    let mut seen: HashMap<K, usize> = HashMap::new();
    for (i, key) in keys.enumerate() {
        if let Some(first) = seen.get(&key) {
            errs.add(
                format!("{list_path}[{i}].{key_name}"),
                format!(
                    "\"{key}\" is already used by {list_path}[{first}]; {key_name} must be unique in the list"
                ),
            );
        } else {
            seen.insert(key, i);
        }
    }
}

fn check_delete_option(option: &DeleteOption, errs: &mut ValidationErrors) {
    let path = "spec.deleteOption";
    check_enum(
        format!("{path}.propagationPolicy"),
        &option.propagation_policy,
        errs,
    );
    let Some(selective) = &option.selectively_orphan else {
        return;
    };
    if option.propagation_policy != DeletePropagationPolicy::SelectivelyOrphan {
        errs.add(
            format!("{path}.selectivelyOrphans"),
            format!(
                "is used only with propagationPolicy SelectivelyOrphan, not {}",
                option.propagation_policy
            ),
        );
    }
    for (i, rule) in selective.orphaning_rules.iter().enumerate() {
        check_resource_identifier(
            &format!("{path}.selectivelyOrphans.orphaningRules[{i}]"),
            rule,
            false,
            errs,
        );
    }
}

/// `wildcards`: manifest configs match name and namespace as globs, while
/// orphaning rules compare all four parts exactly.
fn check_resource_identifier(
    path: &str,
    id: &ResourceIdentifier,
    wildcards: bool,
    errs: &mut ValidationErrors,
) {
    if !id.group.is_empty()
        && let Err(reason) = check_dns1123_subdomain(&id.group)
    {
        errs.add(
            format!("{path}.group"),
            format!(
                "{:?} is invalid: {reason}; use the API group only, e.g. \"apps\", or \"\" for the core group",
                id.group
            ),
        );
    }
    if id.resource.is_empty() {
        errs.add(
            format!("{path}.resource"),
            "is required: the plural resource name, e.g. \"deployments\"",
        );
    } else if let Err(reason) = check_dns1123_label(&id.resource) {
        // Kubernetes resource names are lower case, so a kind such as
        // "Deployment" can never match anything.
        errs.add(
            format!("{path}.resource"),
            format!(
                "{:?} is invalid: {reason}; use the plural resource name such as \"deployments\", not the kind",
                id.resource
            ),
        );
    }
    if id.name.is_empty() {
        let hint = if wildcards {
            "is required; use \"*\" to match every name"
        } else {
            "is required"
        };
        errs.add(format!("{path}.name"), hint);
    }
    if !wildcards {
        for (field, value) in [("name", &id.name), ("namespace", &id.namespace)] {
            if value.contains('*') {
                errs.add(
                    format!("{path}.{field}"),
                    format!(
                        "{value:?} contains '*', but orphaning rules match exactly and support no wildcards"
                    ),
                );
            }
        }
    }
}

fn check_manifest_config(path: &str, config: &ManifestConfigOption, errs: &mut ValidationErrors) {
    check_resource_identifier(
        &format!("{path}.resourceIdentifier"),
        &config.resource_identifier,
        true,
        errs,
    );

    check_feedback_rules(path, &config.feedback_rules, errs);
    if let Some(strategy) = &config.update_strategy {
        check_update_strategy(path, strategy, errs);
    }
    check_condition_rules(path, &config.condition_rules, errs);

    if let Some(scrape) = &config.feedback_scrape_type {
        check_enum(format!("{path}.feedbackScrapeType"), scrape, errs);
    }
}

/// Each feedback rule names its values and paths; JSONPaths rules list at
/// least one path.
fn check_feedback_rules(path: &str, rules: &[FeedbackRule], errs: &mut ValidationErrors) {
    for (j, rule) in rules.iter().enumerate() {
        let rule_path = format!("{path}.feedbackRules[{j}]");
        check_enum(format!("{rule_path}.type"), &rule.type_, errs);
        if rule.type_ == FeedbackType::JsonPaths && rule.json_paths.is_empty() {
            errs.add(
                format!("{rule_path}.jsonPaths"),
                "must list at least one path for type JSONPaths",
            );
        }
        let paths_path = format!("{rule_path}.jsonPaths");
        for (k, json_path) in rule.json_paths.iter().enumerate() {
            if json_path.name.is_empty() {
                errs.add(
                    format!("{paths_path}[{k}].name"),
                    "is required: the name the value is reported under",
                );
            }
            if json_path.path.is_empty() {
                errs.add(
                    format!("{paths_path}[{k}].path"),
                    "is required: a JSONPath from the object root, e.g. \".status.readyReplicas\"",
                );
            }
        }
        check_unique_keys(
            &paths_path,
            "name",
            rule.json_paths.iter().map(|p| p.name.as_str()),
            errs,
        );
    }
}

/// The update strategy's type, field manager and ignored fields.
fn check_update_strategy(path: &str, strategy: &UpdateStrategy, errs: &mut ValidationErrors) {
    let strategy_path = format!("{path}.updateStrategy");
    check_enum(format!("{strategy_path}.type"), &strategy.type_, errs);
    if let Some(ssa) = &strategy.server_side_apply {
        let ssa_path = format!("{strategy_path}.serverSideApply");
        if let Some(manager) = &ssa.field_manager
            && !manager.starts_with(DEFAULT_FIELD_MANAGER)
        {
            errs.add(
                format!("{ssa_path}.fieldManager"),
                format!(
                    "{manager:?} must start with \"{DEFAULT_FIELD_MANAGER}\", e.g. \"{DEFAULT_FIELD_MANAGER}-myapp\""
                ),
            );
        }
        let ignore_path = format!("{ssa_path}.ignoreFields");
        for (k, field) in ssa.ignore_fields.iter().enumerate() {
            check_enum(
                format!("{ignore_path}[{k}].condition"),
                &field.condition,
                errs,
            );
        }
        check_unique_keys(
            &ignore_path,
            "condition",
            ssa.ignore_fields.iter().map(|f| f.condition.as_str()),
            errs,
        );
    }
}

/// Each condition rule sets a valid condition type, each type once.
fn check_condition_rules(path: &str, rules: &[ConditionRule], errs: &mut ValidationErrors) {
    let rules_path = format!("{path}.conditionRules");
    for (k, rule) in rules.iter().enumerate() {
        let rule_path = format!("{rules_path}[{k}]");
        check_enum(format!("{rule_path}.type"), &rule.type_, errs);
        if rule.condition.is_empty() {
            let example = if rule.type_ == ConditionRuleType::WellKnownConditions {
                "\"Complete\""
            } else {
                "\"Progressing\""
            };
            errs.add(
                format!("{rule_path}.condition"),
                format!("is required: the condition type to set, e.g. {example}"),
            );
        } else if let Err(reason) = check_condition_type(&rule.condition) {
            errs.add(
                format!("{rule_path}.condition"),
                format!(
                    "{:?} is not a valid condition type: {reason}",
                    rule.condition
                ),
            );
        }
    }
    check_unique_keys(
        &rules_path,
        "condition",
        rules.iter().map(|r| r.condition.as_str()),
        errs,
    );
}

/// The rule of `metav1.Condition.type`: an optional DNS subdomain prefix and
/// '/', then alphanumerics, '-', '_' or '.'; at most 316 characters.
fn check_condition_type(value: &str) -> Result<(), String> {
    if value.len() > MAX_CONDITION_TYPE_LEN {
        return Err(format!(
            "must be at most {MAX_CONDITION_TYPE_LEN} characters, has {}",
            value.len()
        ));
    }
    let name = match value.split_once('/') {
        Some((prefix, name)) => {
            check_dns1123_subdomain(prefix).map_err(|r| format!("prefix {prefix:?} {r}"))?;
            name
        }
        None => value,
    };
    if name.is_empty() || name.contains('/') {
        return Err(
            "must be a name with an optional DNS subdomain prefix and '/', \
                    e.g. \"Complete\" or \"example.com/Ready\""
                .into(),
        );
    }
    check_name_chars(name)
}

fn check_executor(executor: &ManifestWorkExecutor, errs: &mut ValidationErrors) {
    let path = "spec.executor.subject";
    let subject = &executor.subject;
    check_enum(format!("{path}.type"), &subject.type_, errs);
    if subject.type_ != ExecutorSubjectType::ServiceAccount {
        return;
    }
    let Some(account) = &subject.service_account else {
        errs.add(
            format!("{path}.serviceAccount"),
            "is required when type is ServiceAccount",
        );
        return;
    };
    for (field, value) in [("namespace", &account.namespace), ("name", &account.name)] {
        let field = format!("{path}.serviceAccount.{field}");
        if value.is_empty() {
            errs.add(field, "is required");
        } else if let Err(reason) = check_dns1123_subdomain(value) {
            errs.add(field, format!("{value:?} is invalid: {reason}"));
        }
    }
}

#[cfg(test)]
mod tests;
