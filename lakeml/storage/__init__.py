"""Storage layer: catalog access, table contracts, the committer and artifacts."""
