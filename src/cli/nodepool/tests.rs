use super::*;

const GUIDE_EXAMPLE: &str = r#"{
  "nodepools": [
    {"name": "workers", "instanceType": "m5.large", "replicas": 3,
     "zones": ["us-west-2a", "us-west-2b"],
     "labels": {"node-role.kubernetes.io/worker": "", "hyperfleet.io/nodepool": "workers"}},
    {"name": "gpu-workers", "instanceType": "p3.2xlarge", "replicas": 1, "zones": ["us-west-2a"],
     "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]}
  ],
  "metadata": {"cluster": "cluster-west-1", "region": "us-west-2", "version": "1.29"}
}"#;

#[test]
fn the_guides_example_becomes_two_nodepool_resources() {
    let config = parse("np.json", GUIDE_EXAMPLE).unwrap();
    check("np.json", &config, "cluster-west-1").unwrap();
    let manifests = to_manifests(&config);
    assert_eq!(manifests.len(), 2);
    let gpu = serde_json::to_value(&manifests[1]).unwrap();
    assert_eq!(
        gpu,
        json!({
            "apiVersion": "hyperfleet.io/v1alpha1", "kind": "NodePool",
            "metadata": {"name": "gpu-workers", "labels": {
                "hyperfleet.io/nodepool": "gpu-workers", "hyperfleet.io/cluster": "cluster-west-1"}},
            "spec": {"instanceType": "p3.2xlarge", "replicas": 1, "zones": ["us-west-2a"],
                     "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}],
                     "region": "us-west-2", "kubernetesVersion": "1.29"}
        })
    );
    assert_eq!(
        manifests[0].as_map()["spec"]["nodeLabels"]["hyperfleet.io/nodepool"],
        "workers"
    );
    assert!(is_nodepool_config(
        &serde_json::from_str(GUIDE_EXAMPLE).unwrap()
    ));
}

#[test]
fn yaml_configurations_are_read_too() {
    let yaml = "nodepools:\n- name: w\n  instanceType: m5.large\n  replicas: 2\n";
    let config = parse("np.yaml", yaml).unwrap();
    assert_eq!(config.nodepools[0].replicas, 2);
    assert_eq!(config.metadata, ClusterMetadata::default());
}

#[test]
fn a_misspelt_key_is_refused_with_its_line() {
    let text = "{\n  \"nodepools\": [\n    {\"name\": \"w\", \"instancetype\": \"m5\", \"replicas\": 1}\n  ]\n}";
    let m = parse("np.json", text).unwrap_err().to_string();
    assert!(m.starts_with("np.json: line 3, column"), "{m}");
    assert!(m.contains("instancetype"), "{m}");
}

#[test]
fn every_semantic_problem_is_named_by_field() {
    let text = r#"{"nodepools": [
            {"name": "Bad_Name", "instanceType": " ", "replicas": 1,
             "taints": [{"key": "k", "effect": "Sometimes"}]},
            {"name": "Bad_Name", "instanceType": "m5", "replicas": 1}],
            "metadata": {"cluster": "cluster-east-2"}}"#;
    let config = parse("np.json", text).unwrap();
    let m = check("np.json", &config, "cluster-west-1")
        .unwrap_err()
        .to_string();
    for needle in [
        "np.json: metadata.cluster: is \"cluster-east-2\"",
        "np.json: nodepools[0].name:",
        "np.json: nodepools[0].instanceType: must not be empty",
        "np.json: nodepools[0].taints[0].effect: \"Sometimes\" is not one of",
        "np.json: nodepools[1].name: \"Bad_Name\" is used twice",
    ] {
        assert!(m.contains(needle), "{needle} missing from:\n{m}");
    }
    assert_eq!(m.lines().count(), 6, "{m}");
}

#[test]
fn negative_replicas_are_a_type_error() {
    let text = r#"{"nodepools": [{"name": "w", "instanceType": "m5", "replicas": -1}]}"#;
    let m = parse("np.json", text).unwrap_err().to_string();
    assert!(m.contains("line 1") && m.contains("-1"), "{m}");
}

#[test]
fn the_shipped_example_converts_to_resources_the_shipped_crd_accepts() {
    let text = include_str!("../../../tests/fixtures/cli/nodepool-config.json");
    let config = parse("nodepool-config.json", text).unwrap();
    check("nodepool-config.json", &config, "cluster-west-1").unwrap();
    let crd: Value = serde_norway::from_str(include_str!(
        "../../../tests/fixtures/cli/nodepools.hyperfleet.io.crd.yaml"
    ))
    .unwrap();
    let version = &crd["spec"]["versions"][0];
    let api_version = format!(
        "{}/{}",
        crd["spec"]["group"].as_str().unwrap(),
        version["name"].as_str().unwrap()
    );
    assert_eq!(api_version, NODEPOOL_API_VERSION);
    assert_eq!(crd["spec"]["names"]["kind"], NODEPOOL_KIND);
    assert_eq!(crd["spec"]["scope"], "Cluster");
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&version["schema"]["openAPIV3Schema"])
        .unwrap();
    for manifest in to_manifests(&config) {
        let value = serde_json::to_value(&manifest).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{errors:?} in {value}");
        assert!(
            manifest.namespace().is_none(),
            "NodePools are cluster-scoped"
        );
    }
}
