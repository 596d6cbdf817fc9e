"""The same block or backbone in the runtimes people ship: ONNX export with parity, ONNX Runtime int8, and
every runtime (eager, torch.compile, ONNX Runtime fp32/int8) as a prepare step and a call, timed by
measure's one timer."""


class DeployError(RuntimeError):
    """An export, a quantization or a runtime that cannot be had here; the message says why in one line."""
