fn main() -> anyhow::Result<()> {
    anyhow::bail!("crdgen is not yet implemented")
}
