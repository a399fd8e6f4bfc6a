use kube::CustomResourceExt;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

fn schema() -> Value {
    let crd = serde_json::to_value(MaestroApplySet::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn rules(node: &Value) -> Vec<String> {
    node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["rule"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn crds_directory_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/maestroapplyset.yaml");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == crd_yaml().unwrap(),
        "crds/maestroapplyset.yaml is out of date; run `cargo run --bin crdgen maestroapplyset > crds/maestroapplyset.yaml`"
    );
}

#[test]
fn names_columns_and_subresources_are_as_documented() {
    let crd = serde_json::to_value(MaestroApplySet::crd()).unwrap();
    assert_eq!(
        crd["metadata"]["name"],
        "maestroapplysets.maestro.hyperfleet.io"
    );
    assert_eq!(crd["spec"]["names"]["shortNames"], json!(["mapplyset"]));
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["subresources"]["status"], json!({}));
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("priority").is_none())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Selector", "Ready", "Updated", "Phase", "Age"]);
}

#[test]
fn the_schema_refuses_what_can_never_work() {
    let s = schema();
    let spec = &s["properties"]["spec"];
    assert!(
        rules(spec).iter().any(|r| r.contains("allConsumers")),
        "{:?}",
        rules(spec)
    );
    let strategy = &spec["properties"]["rolloutStrategy"]["properties"];
    assert_eq!(strategy["maxFailures"]["x-kubernetes-int-or-string"], true);
    assert!(rules(&strategy["maxFailures"])[0].contains("(100|[1-9]?[0-9])%"));
    assert!(rules(&strategy["maxConcurrency"])[0].contains("self >= 1"));
    let template_spec = &spec["properties"]["template"]["properties"]["spec"];
    assert!(rules(template_spec).contains(&"!has(self.consumer)".to_string()));
    let required: Vec<&str> = template_spec["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!required.contains(&"consumer"), "{required:?}");
    assert!(required.contains(&"manifestWork"), "{required:?}");
}

#[test]
fn the_percent_rules_accept_and_refuse_as_their_messages_say() {
    let failures = regex::Regex::new("^(100|[1-9]?[0-9])%$").unwrap();
    for ok in ["0%", "5%", "99%", "100%"] {
        assert!(failures.is_match(ok), "{ok}");
    }
    for bad in ["101%", "150%", "05%", "%", "10", "-1%"] {
        assert!(!failures.is_match(bad), "{bad}");
    }
    let concurrency = regex::Regex::new("^(100|[1-9][0-9]?)%$").unwrap();
    assert!(concurrency.is_match("1%") && concurrency.is_match("100%"));
    assert!(!concurrency.is_match("0%") && !concurrency.is_match("101%"));
}

#[test]
fn defaults_are_all_at_once_no_failures_and_automatic_rollback() {
    let spec: MaestroApplySetSpec = serde_json::from_value(json!({
        "consumers": ["a"],
        "template": {"spec": {}},
    }))
    .unwrap();
    assert_eq!(spec.rollout_strategy.type_, RolloutType::All);
    assert_eq!(spec.rollout_strategy.max_failures, None);
    assert!(spec.rollback.automatic);
    assert_eq!(spec.rollback.revision_history_limit, 10);
    assert_eq!(
        spec.rollout_strategy.times().unwrap(),
        StrategyTimes {
            min_success: Duration::ZERO,
            progress_deadline: None
        }
    );
}

#[test]
fn strategy_durations_parse_and_bad_ones_name_the_field() {
    let mut s = RolloutStrategy {
        min_success_time: "1m30s".into(),
        progress_deadline: Some("5m".into()),
        ..RolloutStrategy::default()
    };
    assert_eq!(
        s.times().unwrap(),
        StrategyTimes {
            min_success: Duration::from_secs(90),
            progress_deadline: Some(Duration::from_secs(300))
        }
    );
    s.progress_deadline = Some("soon".into());
    let err = s.times().unwrap_err();
    assert!(
        err.contains("spec.rolloutStrategy.progressDeadline"),
        "{err}"
    );
}
