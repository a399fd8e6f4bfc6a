use super::*;
use serde_json::Value;

fn subject() -> Subject {
    Subject {
        name: "web".into(),
        consumer: "cluster-west-1".into(),
        ..Subject::default()
    }
}

#[test]
fn result_has_the_guides_fields_in_camel_case() {
    let r = StatusResult::new(&subject(), "Applied", "ok");
    let v: Value = serde_json::to_value(&r).unwrap();
    for key in [
        "manifestWorkName",
        "consumer",
        "status",
        "message",
        "timestamp",
        "resources",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    assert_eq!(v["manifestWorkName"], "web");
    assert!(v.get("reason").is_none());
    let ts = v["timestamp"].as_str().unwrap();
    assert!(DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
}

#[test]
fn timeout_and_failure_records_carry_reason_and_exit_code() {
    let e = CliError::Timeout {
        message: "timed out after 5s waiting for Available".into(),
        last: None,
    };
    let r = StatusResult::failure(&subject(), &e, 3);
    assert_eq!(
        (r.status.as_str(), r.reason.as_deref(), r.exit_code),
        ("Timeout", Some("Timeout"), 3)
    );
    let e = CliError::NotFound("manifestwork \"web\" not found".into());
    let r = StatusResult::failure(&subject(), &e, 4);
    assert_eq!(
        (r.status.as_str(), r.reason.as_deref()),
        ("Failed", Some("NotFound"))
    );
    assert!(r.message.contains("not found"));
}

#[test]
fn write_replaces_the_file_whole_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("results.json");
    std::fs::write(&path, "old").unwrap();
    write_atomic(&path, &StatusResult::new(&subject(), "Applied", "first")).unwrap();
    write_atomic(&path, &StatusResult::new(&subject(), "Available", "second")).unwrap();
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["status"], "Available");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["results.json"]);
}

#[test]
fn write_into_a_missing_directory_names_the_path() {
    let e = write_atomic(
        Path::new("/nonexistent-dir/results.json"),
        &StatusResult::new(&subject(), "Applied", "x"),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("/nonexistent-dir/results.json"),
        "{e}"
    );
}

#[test]
fn raw_args_flag_wins_over_the_environment() {
    let env = Some("/env.json".to_string());
    assert_eq!(
        path_from_raw_args(["x", "--results-path", "/a.json"], env.clone()),
        Some(PathBuf::from("/a.json"))
    );
    assert_eq!(
        path_from_raw_args(["x", "--results-path=/b.json"], env.clone()),
        Some(PathBuf::from("/b.json"))
    );
    assert_eq!(
        path_from_raw_args(["x"], env),
        Some(PathBuf::from("/env.json"))
    );
    assert_eq!(path_from_raw_args(["x"], Some(String::new())), None);
}
