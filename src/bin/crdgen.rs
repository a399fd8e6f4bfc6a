//! Prints a CRD, or the admission policy bounding MaestroApply manifests, as YAML:
//!   `cargo run --bin crdgen > crds/maestroapply.yaml`
//!   `cargo run --bin crdgen maestroapplyset > crds/maestroapplyset.yaml`
//!   `cargo run --bin crdgen limits > config/admission/limits.yaml`

use anyhow::bail;
use maestro_operator::controller::{applyset, crd};

fn main() -> anyhow::Result<()> {
    let kind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "maestroapply".into());
    let yaml = match kind.as_str() {
        "maestroapply" => crd::crd_yaml()?,
        "maestroapplyset" => applyset::crd::crd_yaml()?,
        "limits" => crd::limits_policy_yaml()?,
        other => {
            bail!("unknown argument {other:?}: expected maestroapply, maestroapplyset or limits")
        }
    };
    print!("{yaml}");
    Ok(())
}
