"""Export of the streaming student to ONNX, with its temporal memory as explicit I/O."""
