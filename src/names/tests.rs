use super::*;

#[test]
fn resource_id_matches_the_go_client_test_vector() {
    let source = SourceId::new("mw-client-example").unwrap();
    let id = ResourceId::for_work(
        &source,
        "7ff1a8f4-8811-49b4-8c19-9271bc51975e",
        "e44ec579-9646-549a-b679-db8d19d6da37",
    );
    assert_eq!(id.to_string(), "55c61e54-a3f6-563d-9fec-b1fe297bdfdb");
}

#[test]
fn labels_accept_kubernetes_names() {
    for ok in ["a", "cluster-west-1", "0abc", &"a".repeat(63)] {
        assert!(ConsumerName::new(ok).is_ok(), "{ok}");
    }
}

#[test]
fn labels_reject_with_a_reason() {
    let cases = [
        ("", "empty"),
        ("Cluster", "lower case"),
        ("-a", "start and end"),
        ("a-", "start and end"),
        ("a.b", "lower case"),
        (&"a".repeat(64), "63"),
    ];
    for (bad, reason) in cases {
        let err = WorkName::new(bad).unwrap_err();
        assert!(err.to_string().contains(reason), "{bad}: {err}");
        assert!(err.to_string().contains("work name"), "{err}");
    }
}

#[test]
fn subdomains_allow_dots_but_not_empty_labels() {
    assert!(check_dns1123_subdomain("apps.example.com").is_ok());
    assert!(check_dns1123_subdomain("apps..com").is_err());
}

#[test]
fn source_id_refuses_spaces() {
    assert!(SourceId::new("maestro-operator").is_ok());
    assert!(SourceId::new("my source").is_err());
    assert!(SourceId::new("").is_err());
}

#[test]
fn names_deserialize_only_when_valid() {
    let ok: ConsumerName = serde_json::from_str("\"cluster-east-2\"").unwrap();
    assert_eq!(ok.as_str(), "cluster-east-2");
    assert!(serde_json::from_str::<ConsumerName>("\"Bad_Name\"").is_err());
}
