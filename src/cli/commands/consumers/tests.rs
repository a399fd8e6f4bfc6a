use super::*;

#[test]
fn labels_need_a_key_and_an_equals_sign() {
    assert_eq!(
        parse_label("env=prod").unwrap(),
        ("env".into(), "prod".into())
    );
    assert_eq!(
        parse_label("empty=").unwrap(),
        ("empty".into(), String::new())
    );
    assert!(parse_label("novalue").is_err());
    assert!(parse_label("=x").is_err());
}
