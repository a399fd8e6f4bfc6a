use super::*;
use serde_json::json;

fn object_with_manifest(manifest: serde_json::Value) -> String {
    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "web", "namespace": "team-a", "uid": "u1", "generation": 3},
        "spec": {
            "consumer": "cluster-west-1",
            "manifestWork": {"workload": {"manifests": [manifest]}},
        },
        "status": {"phase": "Available"},
    })
    .to_string()
}

fn nested(depth: usize) -> String {
    let mut value = "\"deep\"".to_string();
    for _ in 0..depth {
        value = format!("{{\"a\":{value}}}");
    }
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"c","namespace":"d"}},"data":{value}}}"#
    )
}

#[test]
fn a_good_object_decodes_to_the_typed_one() {
    let text = object_with_manifest(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
    );
    let raw: RawMaestroApply = serde_json::from_str(&text).unwrap();
    let typed = raw.decode().unwrap();
    let direct: MaestroApply = serde_json::from_str(&text).unwrap();
    assert_eq!(typed, direct);
    assert_eq!(raw.typed_ref(), ObjectRef::from_obj(&typed));
    assert_eq!(raw_ref(&raw.typed_ref()), ObjectRef::from_obj(&raw));
}

#[test]
fn a_list_holding_a_manifest_nested_140_deep_still_decodes_the_others() {
    // Spliced as text: serde_json itself cannot hold it as a Value.
    let bad = object_with_manifest(serde_json::Value::Null).replacen(
        r#""manifests":[null]"#,
        &format!(r#""manifests":[{}]"#, nested(140)),
        1,
    );
    let good = object_with_manifest(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
    );
    let list = format!(r#"{{"items":[{bad},{good}]}}"#);

    #[derive(Deserialize)]
    struct List<T> {
        items: Vec<T>,
    }
    assert!(
        serde_json::from_str::<List<MaestroApply>>(&list).is_err(),
        "the typed list fails whole: the defect this module exists for"
    );
    let raw = serde_json::from_str::<List<RawMaestroApply>>(&list).unwrap();
    assert_eq!(raw.items.len(), 2);
    let e = raw.items[0].decode().unwrap_err();
    assert!(e.contains("recursion limit"), "{e}");
    assert!(raw.items[1].decode().is_ok());
}

#[test]
fn a_packed_object_decodes_as_before_and_keeps_a_fraction_of_its_spec() {
    let data: serde_json::Map<_, _> = (0..50)
        .map(|i| (format!("key-{i}"), json!(format!("value {i} ").repeat(20))))
        .collect();
    let text = object_with_manifest(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data,
    }));
    let mut raw: RawMaestroApply = serde_json::from_str(&text).unwrap();
    let before = raw.decode().unwrap();
    let spec_len = raw.fields_text().len();
    raw.pack();
    assert!(raw.spec.is_none() && raw.status.is_none());
    let packed = raw.packed.as_ref().map_or(0, |p| p.len());
    assert!(packed * 4 < spec_len, "{packed} bytes packed of {spec_len}");
    assert_eq!(raw.decode().unwrap(), before);
}

#[test]
fn a_packed_object_too_deep_to_decode_still_says_why() {
    let bad = object_with_manifest(serde_json::Value::Null).replacen(
        r#""manifests":[null]"#,
        &format!(r#""manifests":[{}]"#, nested(140)),
        1,
    );
    let mut raw: RawMaestroApply = serde_json::from_str(&bad).unwrap();
    raw.pack();
    let e = raw.decode().unwrap_err();
    assert!(e.contains("recursion limit"), "{e}");
}

#[test]
fn corrupt_packed_bytes_are_an_error_not_a_panic() {
    let text = object_with_manifest(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
    );
    let mut raw: RawMaestroApply = serde_json::from_str(&text).unwrap();
    raw.pack();
    raw.packed = Some(vec![0xff; 16].into_boxed_slice());
    let e = raw.decode().unwrap_err();
    assert!(e.contains("cannot be inflated"), "{e}");
}
