use super::*;

#[test]
fn ids_are_added_as_the_last_members_of_a_json_line() {
    let line = "{\"level\":\"INFO\",\"fields\":{\"message\":\"hi\"}}\n";
    let out = with_ids(line, "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let value: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(value["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(value["span_id"], "b7ad6b7169203331");
    assert_eq!(value["fields"]["message"], "hi");
    assert!(out.ends_with("}\n"));
}

#[test]
fn ids_go_into_an_empty_object_without_a_leading_comma() {
    let out = with_ids("{}\n", "a", "b");
    assert_eq!(out, "{\"trace_id\":\"a\",\"span_id\":\"b\"}\n");
}

#[test]
fn text_that_is_not_a_json_object_is_left_alone() {
    assert_eq!(with_ids("plain\n", "a", "b"), "plain\n");
}
