use super::*;

#[test]
fn long_event_notes_are_cut_at_a_char_boundary() {
    let note = truncate_note("é".repeat(800));
    assert!(note.len() <= 1000 && note.ends_with("..."));
}
