use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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

fn cached(text: &str) -> RawMaestroApply {
    let mut raw: RawMaestroApply = serde_json::from_str(text).unwrap();
    raw.pack();
    raw.note_changes(None);
    raw
}

fn wakes_after(before: Option<&RawMaestroApply>, edit: impl FnOnce(&mut RawMaestroApply)) -> bool {
    let mut now = cached(&object_with_manifest(json!({"kind": "ConfigMap"})));
    edit(&mut now);
    now.note_changes(before);
    now.wakes()
}

#[test]
fn an_object_not_cached_before_wakes_its_reconcile() {
    assert!(wakes_after(None, |_| {}));
}

#[test]
fn a_status_write_alone_does_not_wake_the_reconcile() {
    let before = cached(&object_with_manifest(json!({"kind": "ConfigMap"})));
    assert!(!wakes_after(Some(&before), |o| {
        o.metadata.resource_version = Some("99".into());
        o.status = Some(RawValue::from_string(r#"{"phase":"Ready"}"#.into()).unwrap());
        o.pack();
    }));
}

#[test]
fn what_a_reconcile_acts_on_wakes_it() {
    let before = cached(&object_with_manifest(json!({"kind": "ConfigMap"})));
    let edits: [fn(&mut RawMaestroApply); 6] = [
        |o| o.metadata.generation = Some(4),
        |o| o.metadata.uid = Some("u2".into()),
        |o| o.metadata.finalizers = Some(vec!["maestro.hyperfleet.io/cleanup".into()]),
        |o| o.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
        |o| {
            o.annotations_mut()
                .insert(RECONCILE_REQUESTED_AT_ANNOTATION.into(), "now".into());
        },
        |o| {
            o.annotations_mut()
                .insert(ADOPT_ANNOTATION.into(), "true".into());
        },
    ];
    for (i, edit) in edits.into_iter().enumerate() {
        assert!(wakes_after(Some(&before), edit), "edit {i} did not wake");
    }
}
