"""A run's record and everything done to it, above the training engine: the store rows, metrics and worker
lock (record), TensorBoard files (tblog), the tracker, evaluation, launch and the worker session, the
freezing-depth experiment, the artifacts a run leaves (artifacts) and its export to ONNX with the plain
predict scripts."""
