use super::*;
use crate::maestro::held::from_json;

fn remote(id: &str, name: &str, version: i64) -> Remote {
    let bundle = from_json(json!({
        "id": format!("00000000-0000-0000-0000-{id:0>12}"), "version": version, "metadata": {"name": name}
    }))
    .unwrap();
    Remote::from_held(bundle).unwrap()
}

fn kinds(events: &[(EventType, Remote)]) -> Vec<(EventType, String)> {
    events
        .iter()
        .map(|(e, r)| (*e, r.name().to_string()))
        .collect()
}

#[test]
fn tracker_reports_each_change_once() {
    let mut t = Tracker::default();
    let first = t.update(vec![remote("2", "b", 1), remote("1", "a", 1)]);
    assert_eq!(
        kinds(&first),
        [
            (EventType::Added, "a".into()),
            (EventType::Added, "b".into())
        ]
    );
    assert!(
        t.update(vec![remote("1", "a", 1), remote("2", "b", 1)])
            .is_empty()
    );
    let next = t.update(vec![remote("1", "a", 2)]);
    assert_eq!(
        kinds(&next),
        [
            (EventType::Modified, "a".into()),
            (EventType::Deleted, "b".into())
        ]
    );
}
