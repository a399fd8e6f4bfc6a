use kube::CustomResourceExt;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

fn schema() -> Value {
    let crd = serde_json::to_value(MaestroApply::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn crds_directory_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/maestroapply.yaml");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    let generated = crd_yaml().unwrap();
    assert!(
        on_disk == generated,
        "crds/maestroapply.yaml is out of date; run `cargo run --bin crdgen > crds/maestroapply.yaml`"
    );
}

/// Kubernetes refuses non-structural schemas: no `$ref`, no `anyOf`/`oneOf`
/// with their own types, and a type on every node (except where unknown
/// fields are preserved).
fn check_structural(node: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(obj) = node.as_object() else {
        return;
    };
    for bad in ["$ref", "anyOf", "oneOf", "allOf", "definitions", "$defs"] {
        if obj.contains_key(bad) {
            errors.push(format!("{path}: has {bad}"));
        }
    }
    let preserves = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    let int_or_string = obj.get("x-kubernetes-int-or-string") == Some(&json!(true));
    if !obj.contains_key("type") && !preserves && !int_or_string {
        errors.push(format!("{path}: has no type"));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            check_structural(v, &format!("{path}.{k}"), errors);
        }
    }
    if let Some(items) = obj.get("items") {
        check_structural(items, &format!("{path}[]"), errors);
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        check_structural(extra, &format!("{path}{{}}"), errors);
    }
}

#[test]
fn the_schema_is_structural() {
    let mut errors = Vec::new();
    check_structural(&schema(), "", &mut errors);
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn names_columns_and_subresources_are_as_documented() {
    let crd = serde_json::to_value(MaestroApply::crd()).unwrap();
    assert_eq!(
        crd["metadata"]["name"],
        "maestroapplies.maestro.hyperfleet.io"
    );
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["mapply"]));
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<_> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("priority").is_none())
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(columns, ["Consumer", "Work", "Ready", "Phase", "Age"]);
}

#[test]
fn spec_defaults_are_in_the_schema_and_in_serde() {
    let spec = &schema()["properties"]["spec"];
    assert_eq!(spec["required"], json!(["consumer", "manifestWork"]));
    let props = &spec["properties"];
    assert_eq!(props["waitFor"]["default"], "Available");
    assert_eq!(props["pollInterval"]["default"], "10s");
    assert_eq!(props["interval"]["default"], "30m");
    assert_eq!(props["timeout"]["default"], "10m");
    assert_eq!(props["suspend"]["default"], false);
    assert_eq!(props["deletionPolicy"]["default"], "Delete");
    assert_eq!(props["deletionPolicy"]["enum"], json!(["Delete", "Orphan"]));
    assert_eq!(props["driftPolicy"]["default"], "Correct");
    assert_eq!(props["driftPolicy"]["enum"], json!(["Correct", "Report"]));

    let parsed: MaestroApplySpec = serde_json::from_value(json!({
        "consumer": "c",
        "manifestWork": {"workload": {"manifests": []}},
    }))
    .unwrap();
    assert_eq!(parsed.wait_for, WaitFor::Available);
    assert_eq!(parsed.deletion_policy, DeletionPolicy::Delete);
    assert_eq!(parsed.drift_policy, DriftPolicy::Correct);
    assert_eq!(
        parsed.intervals().unwrap(),
        Intervals {
            poll: Duration::from_secs(10),
            resync: Duration::from_secs(1800),
            timeout: Duration::from_secs(600),
        }
    );
}

#[test]
fn the_schema_carries_the_rules_the_api_server_enforces() {
    let root = schema();
    let spec = &root["properties"]["spec"];
    let rules = |node: &Value| -> Vec<String> {
        node["x-kubernetes-validations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["rule"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(rules(&root)[0].contains("self.metadata.name"));
    assert_eq!(rules(&spec["properties"]["consumer"]), ["self == oldSelf"]);
    assert_eq!(rules(&spec["properties"]["workName"]), ["self == oldSelf"]);
    assert!(rules(spec)[0].contains("has(oldSelf.workName)"));
    assert!(rules(&spec["properties"]["pollInterval"])[0].contains("duration(self)"));
    let work = &spec["properties"]["manifestWork"];
    assert_eq!(work["required"], json!(["workload"]));
    let manifests = &work["properties"]["workload"]["properties"]["manifests"];
    assert_eq!(manifests["minItems"], 1);
    assert!(rules(&manifests["items"])[0].contains("self.metadata.name"));
    assert_eq!(manifests["items"]["x-kubernetes-embedded-resource"], true);
}

#[test]
fn durations_parse_like_go_and_refuse_what_the_schema_refuses() {
    assert_eq!(
        parse_duration("x", "1m30s").unwrap(),
        Duration::from_secs(90)
    );
    assert_eq!(
        parse_duration("x", "1.5h").unwrap(),
        Duration::from_secs(5400)
    );
    for bad in ["", "10", "ten seconds", "500ms", "-5s"] {
        let e = parse_duration("pollInterval", bad).unwrap_err();
        assert!(e.contains("spec.pollInterval"), "{bad}: {e}");
    }
    let pattern = regex::Regex::new(DURATION_PATTERN).unwrap();
    for ok in ["10s", "1m30s", "1.5h", "500ms"] {
        assert!(pattern.is_match(ok), "{ok}");
    }
    for bad in ["", "10", "1d", "-5s", "1 m"] {
        assert!(!pattern.is_match(bad), "{bad}");
    }
}

#[test]
fn status_round_trips_with_its_wire_names() {
    let status: MaestroApplyStatus = serde_json::from_value(json!({
        "observedGeneration": 3,
        "phase": "Available",
        "resourceBundleID": "55c61e54-a3f6-563d-9fec-b1fe297bdfdb",
        "bundleVersion": 2,
        "appliedVersion": 2,
        "manifests": [{"ordinal": 0, "kind": "ConfigMap", "name": "c", "namespace": "default",
                       "statusFeedback": {"values": [{"name": "n", "fieldValue": {"type": "Integer", "integer": 1}}]}}],
        "lastHandledReconcileAt": "now",
    }))
    .unwrap();
    assert_eq!(status.phase, Some(Phase::Available));
    assert_eq!(status.manifests[0].resource.kind, "ConfigMap");
    let back = serde_json::to_value(&status).unwrap();
    assert_eq!(
        back["resourceBundleID"],
        "55c61e54-a3f6-563d-9fec-b1fe297bdfdb"
    );
    assert_eq!(
        back["manifests"][0]["statusFeedback"]["values"][0]["fieldValue"]["integer"],
        1
    );
}

#[test]
fn intervals_below_the_operator_floors_are_raised_and_named() {
    use super::{Floors, Intervals};
    use std::time::Duration;
    let mut intervals = Intervals {
        poll: Duration::from_secs(1),
        resync: Duration::from_secs(10),
        timeout: Duration::from_secs(1),
    };
    let raised = intervals.raise_to(Floors::default());
    assert_eq!(intervals.poll, Duration::from_secs(5));
    assert_eq!(intervals.resync, Duration::from_secs(60));
    assert_eq!(
        intervals.timeout,
        Duration::from_secs(1),
        "not a rate: left alone"
    );
    assert_eq!(raised.len(), 2, "{raised:?}");
    assert!(
        raised[0].contains("spec.pollInterval 1s")
            && raised[0].contains("--min-poll-interval")
            && raised[0].contains("using 5s"),
        "{}",
        raised[0]
    );
    assert!(
        raised[1].contains("spec.interval 10s") && raised[1].contains("using 1m"),
        "{}",
        raised[1]
    );
    assert!(
        intervals.raise_to(Floors::default()).is_empty(),
        "at the floor: nothing to say"
    );
}

#[test]
fn limits_policy_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/admission/limits.yaml");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == limits_policy_yaml().unwrap(),
        "config/admission/limits.yaml is out of date; run `cargo run --bin crdgen -- limits > config/admission/limits.yaml`"
    );
}

#[test]
fn limits_policy_walks_one_level_past_the_bound() {
    let text = limits_policy_yaml().unwrap();
    let last = format!("level{}", MAX_MANIFEST_DEPTH + 1);
    assert!(text.contains(&format!("name: {last}")), "{text}");
    assert!(
        text.contains(&format!("size(variables.{last}.filter(")),
        "{text}"
    );
    assert!(text.contains("failurePolicy: Ignore"), "{text}");
}
