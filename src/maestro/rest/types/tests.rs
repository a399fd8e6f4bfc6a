use super::*;
use pretty_assertions::assert_eq;

fn fixture() -> ResourceBundle {
    let text = include_str!("../../../../tests/fixtures/rest/bundle.json");
    serde_json::from_str(text).unwrap()
}

#[test]
fn reference_bundle_decodes_with_every_part() {
    let b = fixture();
    assert_eq!(b.id, "55c61e54-a3f6-563d-9fec-b1fe297bdfdb");
    assert_eq!(b.kind, "ResourceBundle");
    assert_eq!(b.consumer_name, "7ff1a8f4-8811-49b4-8c19-9271bc51975e");
    assert_eq!(b.version, 1);
    assert_eq!(
        b.created_at.unwrap().to_rfc3339(),
        "2025-12-13T13:32:30.308693+00:00"
    );
    assert!(b.deleted_at.is_none() && !b.is_deleting());
    assert_eq!(b.work_name(), Some("e44ec579-9646-549a-b679-db8d19d6da37"));
    assert_eq!(b.resource_id().unwrap().to_string(), b.id);
    assert!(b.delete_option.is_empty());
    assert_eq!(b.manifests.len(), 1);
    assert_eq!(b.manifests[0]["kind"], "Deployment");
    assert_eq!(
        b.manifest_configs[0]["updateStrategy"]["type"],
        "ServerSideApply"
    );

    let status = b.status.unwrap();
    assert_eq!(status.observed_version, 1);
    assert_eq!(status.sequence_id, "1999832099518943232");
    let types: Vec<_> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Applied", "Available"]);
    assert_eq!(status.conditions[0].observed_generation, Some(1));
    assert_eq!(status.resource_status.len(), 1);
    assert_eq!(
        status.resource_status[0]["resourceMeta"]["kind"],
        "Deployment"
    );
    assert!(status.manifest_bundle.is_none());
}

#[test]
fn bundle_without_status_and_with_nulls_decodes_empty() {
    let b: ResourceBundle = serde_json::from_str(
        r#"{"id":"x","version":3,"metadata":null,"manifests":null,
                "deleted_at":"2025-12-13T14:32:30.1+01:00","unknown":{"a":1}}"#,
    )
    .unwrap();
    assert!(b.status.is_none() && b.metadata.is_empty() && b.manifests.is_empty());
    assert!(b.manifest_configs.is_empty() && b.delete_option.is_empty());
    assert!(b.is_deleting());
    assert_eq!(
        b.deleted_at.unwrap().to_rfc3339(),
        "2025-12-13T13:32:30.100+00:00"
    );
    assert!(b.resource_id().is_none());
}

#[test]
fn bundle_without_version_is_refused() {
    let e = serde_json::from_str::<ResourceBundle>(r#"{"id":"x"}"#).unwrap_err();
    assert!(e.to_string().contains("version"), "{e}");
}

#[test]
fn null_conditions_decode_as_empty() {
    let s: BundleStatus = serde_json::from_str(
        r#"{"ObservedVersion":2,"SequenceID":"7","conditions":null,"resourceStatus":null}"#,
    )
    .unwrap();
    assert_eq!(s.observed_version, 2);
    assert!(s.conditions.is_empty() && s.resource_status.is_empty());
}

#[test]
fn consumer_decodes_with_and_without_labels() {
    let c: Consumer = serde_json::from_str(
            r#"{"created_at":"2023-12-08T11:35:08.557450505Z","href":"/api/maestro/v1/consumers/3f","id":"3f","kind":"Consumer","labels":{"env":"prod"},"name":"cluster1","updated_at":"2023-12-08T11:35:08.557450505Z"}"#,
        )
        .unwrap();
    assert_eq!(c.name, "cluster1");
    assert_eq!(c.labels.get("env").map(String::as_str), Some("prod"));
    let bare: Consumer = serde_json::from_str(r#"{"id":"3f","name":"3f"}"#).unwrap();
    assert!(bare.labels.is_empty() && bare.created_at.is_none());
}

#[test]
fn page_with_null_items_is_empty() {
    let p: Page<Consumer> =
        serde_json::from_str(r#"{"items":null,"kind":"ConsumerList","page":3,"size":0,"total":7}"#)
            .unwrap();
    assert_eq!((p.page, p.size, p.total, p.items.len()), (3, 0, 7, 0));
}

#[test]
fn list_options_query_has_a_fixed_order_and_skips_unset() {
    let o = ListOptions {
        search: Some("a='b'".into()),
        page: Some(2),
        size: Some(400),
        order_by: Some("id".into()),
    };
    let q: Vec<_> = o
        .query()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    assert_eq!(q, ["search=a='b'", "page=2", "size=400", "orderBy=id"]);
    assert!(ListOptions::default().query().is_empty());
}
