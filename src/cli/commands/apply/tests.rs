use crate::cli::Cli;
use clap::Parser;

#[test]
fn apply_delete_and_build_take_force() {
    for args in [
        &[
            "maestro-cli",
            "apply",
            "-f",
            "w.yaml",
            "--consumer",
            "c",
            "--force",
        ][..],
        &[
            "maestro-cli",
            "delete",
            "--name",
            "w",
            "--consumer",
            "c",
            "--force",
        ],
        &[
            "maestro-cli",
            "delete",
            "--all",
            "--consumer",
            "c",
            "--force",
        ],
        &[
            "maestro-cli",
            "build",
            "--name",
            "w",
            "--consumer",
            "c",
            "--source-file",
            "s",
            "--apply",
            "--force",
        ],
    ] {
        assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
    }
}
