use super::*;
use crate::cli::tests::parse;

#[test]
fn the_question_before_deleting_all_names_at_most_ten_works() {
    let consumer = ConsumerName::new("c1").unwrap();
    let names: Vec<String> = (0..12).map(|i| format!("w{i:02}")).collect();
    let question = delete_all_question(&consumer, &names);
    assert!(
        question.starts_with("Delete 12 manifestworks on consumer c1 (w00, w01,")
            && question.ends_with("w09 and 2 more)?"),
        "{question}"
    );
}

#[test]
fn all_and_name_exclude_each_other_and_one_is_needed() {
    assert!(parse("delete --consumer c").is_err());
    assert!(parse("delete --consumer c --all --name w").is_err());
    assert!(parse("delete --consumer c --all").is_ok());
    assert!(parse("delete --consumer c --all --manifest-name m").is_err());
}
