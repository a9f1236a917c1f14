"""Model tooling: the ``.mar`` packager, the deterministic test-model generator and the
checksum-verified fetcher of the real FER+ model."""
