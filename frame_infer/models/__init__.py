"""Model tooling: the ``.mar`` packager, the deterministic test-model generator, the
checksum-verified fetcher of the real FER+ model and the importer of fer's trained
emotion model (Keras HDF5 to ONNX, no TensorFlow)."""
