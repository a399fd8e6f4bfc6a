//! The deployment tests under `cargo test`: runs `tests/deploy/run.sh`
//! (Helm chart lint and snapshots, the kustomize tree, server-side dry
//! runs and real installs on the local stack's API server, RBAC checks,
//! the operator under the chart's ServiceAccount token, the Argo CD health
//! check) and fails when any of its steps fails.
//!
//! Needs the local stack and its environment, as the other end-to-end
//! tests: `eval "$(bash tests/stack/stack.sh env)"` (`make test` does it).
//! The script's own output, one PASS or FAIL line per step, is printed
//! (visible with `--nocapture`, or on failure).

use std::process::{Command, Stdio};

mod support;

#[test]
fn deployment_tests_pass_on_the_local_stack() {
    let root = env!("CARGO_MANIFEST_DIR");
    let kubeconfig = support::stack_var("KUBECONFIG");
    let output = Command::new("bash")
        .arg(format!("{root}/tests/deploy/run.sh"))
        .current_dir(root)
        // The binary cargo built for this test run; run.sh must not call
        // cargo itself while `cargo test` holds the build directory.
        .env("OPERATOR_BIN", env!("CARGO_BIN_EXE_maestro-operator"))
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run bash tests/deploy/run.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains(" passed, "))
        .unwrap_or("no summary line");
    // The failed steps with their log tails, again at the end: CI shows
    // the end of the output, and the full run above may be cut off.
    let failed_steps: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("FAIL "))
        .filter(|l| l.starts_with("FAIL ") || l.starts_with("     | "))
        .collect();
    assert!(
        output.status.success(),
        "tests/deploy/run.sh failed ({}): {summary}\n{}",
        output.status,
        failed_steps.join("\n")
    );
    assert!(
        summary.contains(", 0 failed"),
        "unexpected summary: {summary}"
    );
}
