use super::*;

fn consumer() -> ConsumerName {
    ConsumerName::new("cluster-west-1").unwrap()
}

const WORK_YAML: &str = "\
apiVersion: work.open-cluster-management.io/v1
kind: ManifestWork
metadata:
  name: web
spec:
  workload:
    manifests:
    - apiVersion: v1
      kind: ConfigMap
      metadata: {name: a, namespace: default}
";

#[test]
fn a_manifestwork_yaml_file_is_read_as_a_work() {
    let input = parse("w.yaml", WORK_YAML).unwrap();
    assert!(matches!(input.content, Content::Work(_)));
    let work = work_for(input, &consumer(), None).unwrap();
    assert_eq!(work.metadata.namespace.as_deref(), Some("cluster-west-1"));
    assert_eq!(work.spec.workload.manifests.len(), 1);
}

#[test]
fn a_manifestwork_of_another_api_version_is_refused_naming_found_and_expected() {
    for (api_version, found) in [
        (
            "apiVersion: work.open-cluster-management.io/v2\n",
            "\"work.open-cluster-management.io/v2\"",
        ),
        ("apiVersion: v1\n", "\"v1\""),
        ("apiVersion: 1\n", "1"),
        ("", "missing"),
    ] {
        let yaml = WORK_YAML.replace(
            "apiVersion: work.open-cluster-management.io/v1\n",
            api_version,
        );
        let m = parse("w.yaml", &yaml).unwrap_err().to_string();
        assert_eq!(
            m,
            format!(
                "w.yaml: apiVersion is {found}; a ManifestWork must have apiVersion \
                     \"work.open-cluster-management.io/v1\""
            ),
        );
        let json = serde_json::to_string(&serde_norway::from_str::<Value>(&yaml).unwrap()).unwrap();
        assert!(
            parse("w.json", &json)
                .unwrap_err()
                .to_string()
                .contains("apiVersion is")
        );
    }
}

#[test]
fn multi_document_yaml_lists_and_arrays_are_manifests() {
    let yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: b}\n";
    assert_eq!(parse("m.yaml", yaml).unwrap().manifests().len(), 2);
    let list = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}},
            {"apiVersion":"v1","kind":"Secret","metadata":{"name":"b"}}]}"#;
    assert_eq!(parse("l.json", list).unwrap().manifests().len(), 2);
    let array = r#"[{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}}]"#;
    assert_eq!(parse("a.json", array).unwrap().manifests().len(), 1);
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let e = parse(
        "bad.yaml",
        "apiVersion: v1\nkind: [ConfigMap\nmetadata: {}\n",
    )
    .unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("bad.yaml: line "), "{m}");
    assert!(m.contains("column"), "{m}");
    assert_eq!(e.exit_status().code(), 2);
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let e = parse(
        "bad.json",
        "{\n  \"kind\": \"ManifestWork\",\n  \"x\": ]\n}",
    )
    .unwrap_err();
    let m = e.to_string();
    assert!(m.starts_with("bad.json: line 3, column 8: "), "{m}");
    assert!(!m.ends_with("column 8"), "{m}");
}

#[test]
fn a_wrongly_typed_work_field_is_located() {
    let yaml = WORK_YAML.replace("    manifests:\n", "    manifests: 3\n    x:\n");
    let m = parse("w.yaml", &yaml).unwrap_err().to_string();
    assert!(m.starts_with("w.yaml: line "), "{m}");
    assert!(m.contains("manifests"), "{m}");
}

#[test]
fn non_objects_and_objects_without_kind_are_refused_with_their_document() {
    let m = parse("m.yaml", "apiVersion: v1\nkind: A\n---\njust text\n")
        .unwrap_err()
        .to_string();
    assert!(m.contains("m.yaml: document 2: "), "{m}");
    let m = parse("m.yaml", "name: x\nreplicas: 3\n")
        .unwrap_err()
        .to_string();
    assert!(m.contains("apiVersion and kind are required"), "{m}");
}

/// Ten levels of ten aliases each: 10^10 strings once expanded.
fn billion_laughs() -> String {
    let mut yaml = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        yaml.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    yaml
}

/// Three layers a thousand wide: 10^9 strings from 12 KB, with too few
/// alias jumps for the YAML decoder's own repetition limit to stop the
/// expansion before it took gigabytes.
fn wide_laughs() -> String {
    let row = |item: &str| vec![item; 1000].join(", ");
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: x}}\n\
             a: &a [{}]\nb: &b [{}]\nc: [{}]\n",
        row("lol"),
        row("*a"),
        row("*b")
    )
}

#[test]
fn yaml_aliases_expanding_beyond_the_bound_are_refused_quickly() {
    for (name, yaml) in [("billion", billion_laughs()), ("wide", wide_laughs())] {
        let started = std::time::Instant::now();
        let text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ok}}\n---\n{yaml}");
        let m = parse("laughs.yaml", &text).unwrap_err().to_string();
        assert!(
            m.starts_with("laughs.yaml: document 2: expands to more than 1000000 values"),
            "{name}: {m}"
        );
        assert!(m.contains("aliases"), "{name}: {m}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name}: took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn yaml_aliases_within_the_bound_still_expand() {
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n\
                    data: &d {k: v}\nextra: *d\n";
    let input = parse("a.yaml", yaml).unwrap();
    let manifest = input.manifests()[0].as_map();
    assert_eq!(manifest.get("extra"), manifest.get("data"));
    let mut budget = Budget::new();
    let value = Bounded {
        budget: &mut budget,
    }
    .deserialize(serde_norway::Deserializer::from_str(yaml))
    .unwrap();
    assert_eq!(value, serde_norway::from_str::<Value>(yaml).unwrap());
    // 17: the maps, keys and scalars, the aliased map counted again.
    assert_eq!(MAX_YAML_VALUES - budget.values, 17);
}

#[test]
fn empty_and_missing_files_are_named() {
    assert!(
        parse("e.yaml", " \n")
            .unwrap_err()
            .to_string()
            .contains("e.yaml: is empty")
    );
    assert!(
        parse("e.yaml", "---\n---\n")
            .unwrap_err()
            .to_string()
            .contains("no document")
    );
    let m = load(Path::new("/nonexistent/w.yaml"))
        .unwrap_err()
        .to_string();
    assert_eq!(m, "/nonexistent/w.yaml: file does not exist");
}

#[test]
fn manifests_need_a_name_flag_and_works_must_agree_with_flags() {
    let input = parse("m.yaml", "apiVersion: v1\nkind: A\nmetadata: {name: a}\n").unwrap();
    let e = work_for(input, &consumer(), None).unwrap_err();
    assert!(e.to_string().contains("--name"), "{e}");

    let input = parse("w.yaml", WORK_YAML).unwrap();
    let other = WorkName::new("other").unwrap();
    let e = work_for(input, &consumer(), Some(&other)).unwrap_err();
    assert!(e.to_string().contains("\"web\""), "{e}");

    let yaml = WORK_YAML.replace("  name: web\n", "  name: web\n  namespace: elsewhere\n");
    let e = work_for(parse("w.yaml", &yaml).unwrap(), &consumer(), None).unwrap_err();
    assert!(e.to_string().contains("elsewhere"), "{e}");
}

#[test]
fn server_fields_are_dropped_so_get_output_can_be_applied() {
    let yaml = WORK_YAML.replace(
            "  name: web\n",
            "  name: web\n  uid: u\n  resourceVersion: \"3\"\n  annotations:\n    maestro.hyperfleet.io/spec-hash: abc\n",
        ) + "status:\n  conditions: []\n";
    let work = work_for(parse("w.yaml", &yaml).unwrap(), &consumer(), None).unwrap();
    assert!(work.metadata.uid.is_none() && work.metadata.resource_version.is_none());
    assert!(work.metadata.annotations.is_none() && work.status.is_none());
}
