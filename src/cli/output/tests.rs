use super::*;
use chrono::Duration;

#[test]
fn ages_follow_kubectl() {
    let now = Utc::now();
    let cases = [
        (5, "5s"),
        (119, "119s"),
        (180, "3m"),
        (192, "3m12s"),
        (25 * 60, "25m"),
        (5 * 3600 + 180, "5h3m"),
        (17 * 3600, "17h"),
        (3 * 86400, "3d"),
    ];
    for (secs, want) in cases {
        assert_eq!(age(now - Duration::seconds(secs), now), want, "{secs}");
    }
    assert_eq!(age(now + Duration::seconds(5), now), "0s");
}

#[test]
fn table_aligns_columns_by_the_widest_cell() {
    let mut t = Table::new(&["NAME", "STATUS"]);
    t.row(vec!["a-long-name".into(), "Applied".into()]);
    t.row(vec!["b".into(), "Available".into()]);
    assert_eq!(
        t.render(),
        "NAME          STATUS\na-long-name   Applied\nb             Available\n"
    );
}

#[test]
fn only_y_or_yes_confirms() {
    for (answer, yes) in [
        ("y\n", true),
        ("YES", true),
        ("n", false),
        ("", false),
        ("yep", false),
    ] {
        assert_eq!(is_yes(answer), yes, "{answer:?}");
    }
}

#[test]
fn progress_repeats_no_line() {
    let mut p = Progress::with_terminal(false);
    p.report("a".into());
    p.report("a".into());
    assert_eq!(p.last.as_deref(), Some("a"));
    assert_eq!(Progress::describe(None), "not found");
}

#[test]
fn structured_output_is_json_or_yaml() {
    let v = serde_json::json!({"a": [1, 2]});
    assert_eq!(
        structured(OutputFormat::Json, &v).unwrap(),
        "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n"
    );
    assert_eq!(
        structured(OutputFormat::Yaml, &v).unwrap(),
        "a:\n- 1\n- 2\n"
    );
}
