use std::collections::BTreeMap;

use super::StringMap;

fn map(entries: &[(&str, &str)]) -> StringMap {
    entries.iter().copied().collect()
}

#[test]
fn finds_every_key_and_no_other() {
    let m = map(&[("b", "2"), ("a", "1"), ("c", ""), ("", "empty key")]);
    assert_eq!(m.len(), 4);
    assert_eq!(m.get("a"), Some("1"));
    assert_eq!(m.get("b"), Some("2"));
    assert_eq!(m.get("c"), Some(""));
    assert_eq!(m.get(""), Some("empty key"));
    assert_eq!(m.get("ab"), None);
    assert_eq!(m.get("d"), None);
}

#[test]
fn iterates_in_key_order_as_a_btree_map_would() {
    let entries = [
        ("z", "last"),
        ("app.kubernetes.io/managed-by", "x"),
        ("k", "v"),
    ];
    let m = map(&entries);
    let btree: BTreeMap<String, String> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(
        m.iter()
            .eq(btree.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    );
    assert_eq!(btree.iter().collect::<StringMap>(), m);
    assert_eq!(format!("{m:?}"), format!("{btree:?}"));
}

#[test]
fn a_repeated_key_keeps_its_last_value() {
    let m = map(&[("k", "first"), ("k", "second")]);
    assert_eq!(m.len(), 1);
    assert_eq!(m.get("k"), Some("second"));
}

#[test]
fn an_empty_map_has_nothing_and_allocates_nothing() {
    let m = StringMap::default();
    assert!(m.is_empty());
    assert_eq!(m.get(""), None);
    assert_eq!(m.iter().count(), 0);
    assert_eq!(map(&[]), m);
}

#[test]
fn keys_and_values_keep_any_text_whole() {
    let m = map(&[("ключ\u{0}", "значение=1,2"), ("k", "a\u{0}b")]);
    assert_eq!(m.get("ключ\u{0}"), Some("значение=1,2"));
    assert_eq!(m.get("k"), Some("a\u{0}b"));
}
