fn main() -> anyhow::Result<()> {
    anyhow::bail!("maestro-cli is not yet implemented")
}
