use super::*;
use crate::manifestwork::FieldError;
use std::time::Duration;

#[test]
fn exit_codes_follow_the_documented_table() {
    let cases: Vec<(CliError, u8)> = vec![
        (CliError::Usage("x".into()), 2),
        (CliError::InputFile("x".into()), 2),
        (CliError::NotFound("x".into()), 4),
        (
            CliError::Timeout {
                message: "x".into(),
                last: None,
            },
            3,
        ),
        (CliError::Failed("x".into()), 1),
        (CliError::maestro("c", Error::Unavailable("down".into())), 1),
        (CliError::maestro("c", Error::NotFound("gone".into())), 4),
        (
            CliError::maestro(
                "c",
                Error::UnknownConsumer {
                    consumer: "c".into(),
                },
            ),
            4,
        ),
        (
            CliError::maestro("c", Error::InvalidWork(ValidationErrors::default())),
            2,
        ),
        (
            CliError::maestro(
                "c",
                Error::Timeout {
                    what: "x".into(),
                    after: Duration::from_secs(1),
                },
            ),
            3,
        ),
        (
            CliError::Interrupted {
                signal: "SIGTERM",
                last_phase: None,
            },
            130,
        ),
    ];
    for (e, code) in cases {
        assert_eq!(e.exit_status().code(), code, "{e:?}");
    }
    assert_eq!(ExitStatus::Differences.code(), 1);
}

#[test]
fn diff_never_uses_1_for_an_error() {
    let e = CliError::maestro("c", Error::Unavailable("down".into()));
    assert_eq!(e.diff_exit_status().code(), 2);
    assert_eq!(CliError::NotFound("x".into()).diff_exit_status().code(), 4);
}

#[test]
fn invalid_work_prints_one_line_per_problem_naming_the_file() {
    let e = CliError::Invalid {
        origin: "work.yaml".into(),
        errors: ValidationErrors(vec![
            FieldError {
                field: "metadata.name".into(),
                message: "is required".into(),
            },
            FieldError {
                field: "spec.workload.manifests[1].kind".into(),
                message: "is required".into(),
            },
        ]),
    };
    let text = e.to_string();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "work.yaml: metadata.name: is required",
            "work.yaml: spec.workload.manifests[1].kind: is required"
        ]
    );
    assert_eq!(e.reason(), "InvalidWork");
}
