use super::*;
use pretty_assertions::assert_eq;

const P: &str = "payload->'metadata'->'labels'";

fn source() -> SourceId {
    SourceId::new("mw-client").unwrap()
}

fn consumer(name: &str) -> ConsumerName {
    ConsumerName::new(name).unwrap()
}

fn label_search(selector: &str) -> String {
    LabelSelector::parse(selector)
        .unwrap()
        .to_search()
        .unwrap()
        .unwrap()
}

fn config_message(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn source_alone_matches_the_go_client() {
    assert_eq!(Search::source(&source()).build(), "source='mw-client'");
}

#[test]
fn source_and_consumer_match_the_go_client() {
    let s = Search::source(&source())
        .consumer(&consumer("cluster1"))
        .build();
    assert_eq!(s, "source='mw-client' and consumer_name='cluster1'");
}

#[test]
fn several_consumers_are_or_ed_in_parentheses() {
    let s = Search::source(&source())
        .consumers(&[consumer("ns1"), consumer("ns2")])
        .unwrap()
        .build();
    assert_eq!(
        s,
        "source='mw-client' and (consumer_name='ns1' or consumer_name='ns2')"
    );
}

#[test]
fn no_consumers_is_refused() {
    let e = Search::source(&source()).consumers(&[]).unwrap_err();
    assert!(config_message(e).contains("at least one consumer"));
}

#[test]
fn equalities_become_one_containment_in_key_order() {
    assert_eq!(
        label_search("k2==v2,app=test"),
        format!("{P}@>'{{\"app\":\"test\",\"k2\":\"v2\"}}'")
    );
}

#[test]
fn not_equals_becomes_an_inequality() {
    assert_eq!(label_search("k!=v"), format!("{P}->>'k'<>'v'"));
}

#[test]
fn exists_compares_with_bare_null() {
    assert_eq!(label_search("k"), format!("{P}->>'k'<>null"));
}

#[test]
fn in_lists_sorted_quoted_values_without_spaces() {
    assert_eq!(
        label_search("env in (production, integration)"),
        format!("{P}->>'env'in('integration','production')")
    );
}

#[test]
fn notin_becomes_one_inequality_per_value() {
    assert_eq!(
        label_search("env notin (b,a)"),
        format!("{P}->>'env'<>'a' and {P}->>'env'<>'b'")
    );
}

#[test]
fn full_query_matches_the_reference_example() {
    let s = Search::source(&source())
        .consumer(&consumer("cluster1"))
        .labels("app=test,env!=integration")
        .unwrap()
        .build();
    assert_eq!(
        s,
        "source='mw-client' and consumer_name='cluster1' and \
             payload->'metadata'->'labels'@>'{\"app\":\"test\"}' and \
             payload->'metadata'->'labels'->>'env'<>'integration'"
    );
}

#[test]
fn mixed_selector_groups_terms_like_the_go_client() {
    let s = label_search("z, y notin (n), x!=m, w in (a), v=1, u==2");
    assert_eq!(
        s,
        format!(
            "{P}@>'{{\"u\":\"2\",\"v\":\"1\"}}' and {P}->>'w'in('a') and \
                 {P}->>'x'<>'m' and {P}->>'y'<>'n' and {P}->>'z'<>null"
        )
    );
}

#[test]
fn prefixed_keys_and_empty_values_are_accepted() {
    assert_eq!(
        label_search("app.kubernetes.io/name=web,empty="),
        format!("{P}@>'{{\"app.kubernetes.io/name\":\"web\",\"empty\":\"\"}}'")
    );
}

#[test]
fn empty_selector_adds_no_term() {
    let s = Search::source(&source()).labels("  ").unwrap().to_string();
    assert_eq!(s, "source='mw-client'");
}

#[test]
fn does_not_exist_is_refused_naming_the_term() {
    let e = Search::source(&source()).labels("a=b,!gone").unwrap_err();
    let m = config_message(e);
    assert!(
        m.contains("\"!gone\"") && m.contains("does not exist"),
        "{m}"
    );
}

#[test]
fn numeric_comparisons_parse_but_cannot_be_searched() {
    let selector = LabelSelector::parse("n>3").unwrap();
    assert_eq!(selector.requirements()[0].operator, Operator::GreaterThan);
    let m = config_message(selector.to_search().unwrap_err());
    assert!(m.contains("\"n>3\""), "{m}");
}

#[test]
fn quotes_in_values_are_refused_not_escaped() {
    for selector in ["a=it's", "a in (x,'y)", "a!=b\\"] {
        let m = config_message(LabelSelector::parse(selector).unwrap_err());
        assert!(m.contains("refused rather than escaped"), "{selector}: {m}");
    }
    let m = config_message(Search::new().labels("it's=x").unwrap_err());
    assert!(m.contains("quote"), "{m}");
}

#[test]
fn malformed_terms_are_named() {
    let cases = [
        ("a=b,c in x", "\"c in x\"", "expected '('"),
        ("a=b,,c", "\"\"", "empty term"),
        ("a in ()", "\"a in ()\"", "must not be empty"),
        ("a in (x", "\"a in (x\"", "unbalanced"),
        ("a=>b", "\"a=>b\"", "unknown operator"),
        ("a=b=c", "\"a=b=c\"", "expected one value"),
        ("-bad=x", "\"-bad=x\"", "starting and ending"),
        ("a=b c", "\"a=b c\"", "expected one value"),
        ("x/=v", "\"x/=v\"", "empty name"),
        ("n<z", "\"n<z\"", "integer"),
    ];
    for (selector, term, why) in cases {
        let m = config_message(LabelSelector::parse(selector).unwrap_err());
        assert!(m.contains(term) && m.contains(why), "{selector}: {m}");
    }
}

#[test]
fn matching_follows_kubernetes_semantics() {
    let labels: BTreeMap<String, String> = [("app", "web"), ("env", "prod"), ("n", "5")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let cases = [
        ("app=web", true),
        ("app==db", false),
        ("app!=db", true),
        ("missing!=x", true),
        ("env in (prod,stage)", true),
        ("env notin (prod)", false),
        ("missing notin (prod)", true),
        ("app", true),
        ("missing", false),
        ("!missing", true),
        ("!app", false),
        ("n>4,n<6", true),
        ("n>5", false),
        ("app>1", false),
        ("", true),
        ("app=web,env=stage", false),
    ];
    for (selector, expected) in cases {
        let s = LabelSelector::parse(selector).unwrap();
        assert_eq!(s.matches(&labels), expected, "{selector}");
    }
}
