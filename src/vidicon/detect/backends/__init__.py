"""Object detectors behind one protocol (base.Detector): OpenCV ones and user ONNX models."""
