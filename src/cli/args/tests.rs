use super::*;

fn selector(text: &str) -> ConsumerSelector {
    ConsumerSelector::parse(text).unwrap()
}

#[test]
fn quorum_takes_counts_and_percentages() {
    assert_eq!(Quorum::parse("8").unwrap(), Quorum::Count(8));
    assert_eq!(Quorum::parse("95%").unwrap(), Quorum::Percent(95));
    assert_eq!(Quorum::parse("100%").unwrap(), Quorum::Percent(100));
}

#[test]
fn quorum_refuses_zero_out_of_range_and_junk_naming_the_value() {
    for (bad, needle) in [
        ("0", "at least 1"),
        ("0%", "from 1% to 100%"),
        ("101%", "from 1% to 100%"),
        ("-1", "a number of consumers"),
        ("half", "a number of consumers"),
        ("9.5%", "whole number"),
        ("%", "whole number"),
    ] {
        let e = Quorum::parse(bad).unwrap_err();
        assert!(e.contains(needle) && e.contains(bad), "{bad}: {e}");
    }
}

#[test]
fn percentages_round_up_and_counts_beyond_the_selection_are_refused() {
    let s = selector("env=prod");
    assert_eq!(Quorum::Percent(95).required(4, &s).unwrap(), 4);
    assert_eq!(Quorum::Percent(50).required(4, &s).unwrap(), 2);
    assert_eq!(Quorum::Percent(51).required(4, &s).unwrap(), 3);
    assert_eq!(Quorum::Percent(1).required(1, &s).unwrap(), 1);
    assert_eq!(Quorum::Count(4).required(4, &s).unwrap(), 4);
    let e = Quorum::Count(5).required(4, &s).unwrap_err();
    assert_eq!(e.exit_status().code(), 2);
    assert!(
        e.to_string().contains("env=prod") && e.to_string().contains("only 4"),
        "{e}"
    );
}

#[test]
fn selectors_use_kubectl_syntax_and_name_the_bad_term() {
    let s = selector("env=prod,region in (west,east),!retired");
    let labels = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>()
    };
    assert!(s.matches(&labels(&[("env", "prod"), ("region", "west")])));
    assert!(!s.matches(&labels(&[("env", "prod"), ("region", "north")])));
    assert!(!s.matches(&labels(&[
        ("env", "prod"),
        ("region", "west"),
        ("retired", "yes")
    ])));
    let e = ConsumerSelector::parse("env=prod,region in west").unwrap_err();
    assert!(e.contains("region in west"), "{e}");
}

#[test]
fn an_empty_selector_is_refused_rather_than_selecting_everyone() {
    for text in ["", "  "] {
        let e = ConsumerSelector::parse(text).unwrap_err();
        assert!(e.contains("every consumer"), "{e}");
    }
}
