fn main() -> anyhow::Result<()> {
    anyhow::bail!("maestro-operator is not yet implemented")
}
