use super::*;
use clap::CommandFactory;

/// A maestro-cli command line, split at white space, as clap parses it;
/// the commands' tests use it too.
pub(crate) fn parse(line: &str) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("maestro-cli").chain(line.split_whitespace()))
}

#[test]
fn command_line_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn help_documents_the_exit_codes() {
    let help = Cli::command().render_help().to_string();
    for needle in [
        "Exit codes:",
        "3    timeout",
        "4    not found",
        "2    usage error",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

#[test]
fn completion_is_offered_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        assert!(parse(&format!("completion {shell}")).is_ok());
    }
    let e = parse("completion powershell").unwrap_err();
    assert!(e.to_string().contains("bash, zsh and fish"), "{e}");
}

#[test]
fn the_kubectl_plugin_is_recognised_by_its_program_name() {
    use std::ffi::OsStr;
    for (argv0, expected) in [
        ("/usr/local/bin/kubectl-maestro", Invocation::KubectlPlugin),
        ("kubectl-maestro", Invocation::KubectlPlugin),
        ("C:\\bin\\kubectl-maestro.exe", Invocation::KubectlPlugin),
        ("/usr/bin/maestro-cli", Invocation::MaestroCli),
        ("kubectl-maestro-old", Invocation::MaestroCli),
    ] {
        // Backslashes are path separators only on Windows.
        if argv0.contains('\\') && !cfg!(windows) {
            continue;
        }
        assert_eq!(
            Invocation::from_argv0(Some(OsStr::new(argv0))),
            expected,
            "{argv0}"
        );
    }
    assert_eq!(Invocation::from_argv0(None), Invocation::MaestroCli);
}

#[test]
fn as_a_kubectl_plugin_help_and_errors_say_kubectl_maestro() {
    let plugin = Invocation::KubectlPlugin;
    let help = plugin.command().render_help().to_string();
    assert!(
        help.contains("Usage: kubectl maestro [OPTIONS] <COMMAND>"),
        "{help}"
    );
    let e = plugin
        .parse(["kubectl-maestro", "list", "--bogus"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("Usage: kubectl maestro list"), "{e}");
    let v = plugin
        .parse(["kubectl-maestro", "--version"])
        .unwrap_err()
        .to_string();
    assert!(v.starts_with("kubectl maestro "), "{v}");
    let cli = plugin
        .parse(["kubectl-maestro", "completion", "fish"])
        .unwrap();
    assert_eq!(cli.invoked_as, Invocation::KubectlPlugin);
    let cli = Invocation::MaestroCli
        .parse(["maestro-cli", "completion", "bash"])
        .unwrap();
    assert_eq!(cli.invoked_as, Invocation::MaestroCli);
    let help = Invocation::MaestroCli.command().render_help().to_string();
    assert!(
        help.contains("Usage: maestro-cli [OPTIONS] <COMMAND>"),
        "{help}"
    );
}

#[test]
fn missing_required_flags_are_usage_errors() {
    let e = parse("get --name web").unwrap_err();
    assert!(e.to_string().contains("--consumer"), "{e}");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn consumer_and_selector_are_alternatives_and_quorum_needs_a_selector() {
    let wait = |extra: &[&str]| {
        let mut line = vec![
            "maestro-cli",
            "wait",
            "--name",
            "w",
            "--condition",
            "Applied",
        ];
        line.extend_from_slice(extra);
        Cli::try_parse_from(line)
    };
    assert!(wait(&["-l", "env=prod", "--quorum", "95%"]).is_ok());
    assert!(wait(&["--consumer-selector", "env=prod"]).is_ok());
    let both = wait(&["--consumer", "c", "-l", "env=prod"]).unwrap_err();
    assert!(both.to_string().contains("cannot be used with"), "{both}");
    let neither = wait(&[]).unwrap_err().to_string();
    assert!(
        neither.contains("--consumer") && neither.contains("--selector"),
        "{neither}"
    );
    let lone = wait(&["--consumer", "c", "--quorum", "2"]).unwrap_err();
    assert_eq!(lone.exit_code(), 2);
    let bad = wait(&["-l", "env=prod", "--quorum", "150%"]).unwrap_err();
    assert!(bad.to_string().contains("150%"), "{bad}");
    let bad = wait(&["-l", "env in prod"]).unwrap_err();
    assert!(bad.to_string().contains("env in prod"), "{bad}");
    assert!(parse("get --name w -l env=prod").is_ok());
    assert!(parse("list --consumer-selector env=prod -l app=web").is_ok());
    let e = parse("list -l app=web").unwrap_err();
    assert!(e.to_string().contains("--consumer-selector"), "{e}");
}

#[test]
fn unknown_conditions_are_refused_listing_the_known_ones() {
    let e = parse("wait --name w --consumer c --condition Ready").unwrap_err();
    let m = e.to_string();
    assert!(m.contains("Ready") && m.contains("Available"), "{m}");
    assert!(parse("wait --name w --consumer c --condition available").is_ok());
}

#[test]
fn invalid_names_and_small_timeouts_are_refused_by_the_parser() {
    let e = parse("get --name Web_1 --consumer c").unwrap_err();
    assert!(e.to_string().contains("work name"), "{e}");
    let e = parse("wait --name w --consumer c --condition Applied --timeout 100ms").unwrap_err();
    assert!(e.to_string().contains("too small"), "{e}");
}

#[test]
fn flags_win_over_the_environment_for_connection_settings() {
    // clap reads the environment only for flags not given, so a flag on
    // the line is used even when the variable is set.
    let cli = parse("--http-endpoint http://flag:1 list --consumer c").unwrap();
    assert_eq!(cli.connection.http_endpoint, "http://flag:1");
}
