//! maestro-cli as the kubectl plugin `kubectl maestro`, run through the
//! stack's real kubectl (`$KUBECTL`), and the completion scripts for bash,
//! zsh and fish: produced, and parsed by each shell (`-n`; zsh and fish when
//! installed).
//!
//! kubectl finds a plugin as an executable named `kubectl-<name>` on PATH;
//! `make install` puts a `kubectl-maestro` link to maestro-cli beside it.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::operator::{WEST, grpc_endpoint, http_endpoint, kubectl_path, unique};

const CLI: &str = env!("CARGO_BIN_EXE_maestro-cli");

/// A directory holding the `kubectl-maestro` link to maestro-cli, first on
/// a PATH without any other kubectl-maestro.
struct PluginPath {
    dir: tempfile::TempDir,
    path: std::ffi::OsString,
}

impl PluginPath {
    fn new() -> PluginPath {
        let dir = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::symlink(CLI, dir.path().join("kubectl-maestro")).expect("symlink");
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.path().to_path_buf()];
        dirs.extend(std::env::split_paths(&rest).filter(|d| !d.join("kubectl-maestro").exists()));
        let path = std::env::join_paths(dirs).expect("PATH");
        PluginPath { dir, path }
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(kubectl_path())
            .args(args)
            .env("PATH", &self.path)
            .env("MAESTRO_HTTP_ENDPOINT", http_endpoint())
            .env("MAESTRO_GRPC_ENDPOINT", grpc_endpoint())
            .env("MAESTRO_SOURCE_ID", unique("kubectl-plugin"))
            .env_remove("RESULTS_PATH")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .expect("kubectl runs")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn kubectl_finds_and_runs_the_maestro_plugin() {
    let p = PluginPath::new();

    let plugins = ok(&p.kubectl(&["plugin", "list"]), "kubectl plugin list");
    let link = p.dir.path().join("kubectl-maestro");
    assert!(plugins.contains(link.to_str().unwrap()), "{plugins}");

    let help = ok(&p.kubectl(&["maestro", "--help"]), "kubectl maestro --help");
    assert!(
        help.contains("Usage: kubectl maestro [OPTIONS] <COMMAND>"),
        "{help}"
    );
    assert!(!help.contains("maestro-cli [OPTIONS]"), "{help}");
    let list_help = ok(
        &p.kubectl(&["maestro", "list", "--help"]),
        "kubectl maestro list --help",
    );
    assert!(
        list_help.contains("Usage: kubectl maestro list"),
        "{list_help}"
    );
    let version = ok(&p.kubectl(&["maestro", "--version"]), "--version");
    assert!(version.starts_with("kubectl maestro "), "{version}");

    // A usage error: kubectl passes the plugin's exit code on.
    let bad = p.kubectl(&["maestro", "list"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stderr));
    assert!(
        text(&bad.stderr).contains("Usage: kubectl maestro list"),
        "{}",
        text(&bad.stderr)
    );

    // Against the stack's Maestro.
    let list = ok(
        &p.kubectl(&["maestro", "list", "--consumer", WEST, "-o", "json"]),
        "kubectl maestro list",
    );
    let v: serde_json::Value = serde_json::from_str(&list).expect("JSON list");
    assert!(v["items"].is_array(), "{list}");
    let consumers = ok(
        &p.kubectl(&["maestro", "consumers", "list"]),
        "kubectl maestro consumers list",
    );
    assert!(consumers.contains(WEST), "{consumers}");
}

/// Writes a completion script produced by `program completion SHELL`.
fn script(dir: &Path, program: &Path, shell: &str) -> PathBuf {
    let out = Command::new(program)
        .args(["completion", shell])
        .output()
        .expect("completion runs");
    let body = ok(&out, &format!("completion {shell}"));
    assert!(!body.is_empty());
    let file = dir.join(format!(
        "{}.{shell}",
        program.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&file, body).unwrap();
    file
}

fn have(shell: &str) -> bool {
    Command::new(shell)
        .args(["-c", "exit 0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn parses(shell: &str, file: &Path) {
    let out = Command::new(shell)
        .arg("-n")
        .arg(file)
        .output()
        .expect("shell runs");
    assert!(
        out.status.success(),
        "{shell} -n {}: {}",
        file.display(),
        text(&out.stderr)
    );
}

#[test]
fn completion_scripts_parse_in_bash_zsh_and_fish() {
    let p = PluginPath::new();
    let dir = p.dir.path();
    let plugin = dir.join("kubectl-maestro");
    for program in [Path::new(CLI), plugin.as_path()] {
        let name = program.file_name().unwrap().to_string_lossy().into_owned();
        let bash = script(dir, program, "bash");
        parses("bash", &bash);
        // bash completes the commands of the name it was generated for.
        let body = std::fs::read_to_string(&bash).unwrap();
        assert!(
            body.contains(&format!(" {name}\n")) || body.contains(&format!(" {name} ")),
            "{name}: {body}"
        );
        let replies = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {bash:?}; COMP_WORDS=({name} li); COMP_CWORD=1; COMP_LINE='{name} li'; \
                 COMP_POINT=${{#COMP_LINE}}; \
                 f=$(complete -p {name} | sed -n 's/.*-F \\([^ ]*\\).*/\\1/p'); \
                 \"$f\" {name} li {name}; printf '%s\\n' \"${{COMPREPLY[@]}}\""
            ))
            .output()
            .expect("bash runs");
        let replies = ok(&replies, "bash completion");
        assert!(
            replies.lines().any(|l| l.trim() == "list"),
            "{name}: {replies}"
        );

        let zsh = script(dir, program, "zsh");
        assert!(
            std::fs::read_to_string(&zsh)
                .unwrap()
                .starts_with(&format!("#compdef {name}")),
            "{name}"
        );
        if have("zsh") {
            parses("zsh", &zsh);
        } else {
            eprintln!("zsh not installed: its script's syntax not checked");
        }
        let fish = script(dir, program, "fish");
        assert!(
            std::fs::read_to_string(&fish)
                .unwrap()
                .contains(&format!("complete -c {name} ")),
            "{name}"
        );
        if have("fish") {
            parses("fish", &fish);
            // fish itself offers the subcommands.
            let out = Command::new("fish")
                .arg("--no-config")
                .arg("-c")
                .arg(format!("source {fish:?}; complete -C '{name} li'"))
                .output()
                .expect("fish runs");
            let offered = ok(&out, "fish complete -C");
            assert!(
                offered.lines().any(|l| l.starts_with("list")),
                "{name}: {offered}"
            );
        } else {
            eprintln!("fish not installed: its script's syntax not checked");
        }
    }
}
