//! Prints the MaestroApply CRD as YAML: `cargo run --bin crdgen > crds/maestroapply.yaml`.

fn main() -> anyhow::Result<()> {
    print!("{}", maestro_operator::controller::crd::crd_yaml()?);
    Ok(())
}
