//! Prints the MaestroApply CRD as YAML: `cargo run --bin crdgen > crds/maestroapply.yaml`;
//! with `limits`, the admission policy that bounds its manifests' nesting:
//! `cargo run --bin crdgen -- limits > config/admission/limits.yaml`.

use maestro_operator::controller::crd;

fn main() -> anyhow::Result<()> {
    match std::env::args().nth(1).as_deref() {
        None => print!("{}", crd::crd_yaml()?),
        Some("limits") => print!("{}", crd::limits_policy_yaml()?),
        Some(other) => anyhow::bail!("unknown argument {other:?}: expected none or `limits`"),
    }
    Ok(())
}
