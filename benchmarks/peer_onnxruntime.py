#!/usr/bin/env python3
"""ONNX Runtime as a peer of `fer bench engine` for inference: the same network, exported by
`fer export`, on the same batch and threads. Prints one JSON line in the format `fer bench-one`
prints. Used for comparison only; never on the product's path.
--int8: ONNX Runtime's own static quantization first (QDQ, u8 activations, s8 per-channel weights,
calibrated on random images like the benchmark's), if onnxruntime.quantization and onnx import.
"""
import argparse, json, os, resource, time

import numpy as np
import onnxruntime as ort


def quantize(path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Faces(CalibrationDataReader):
        def __init__(self, shape):
            rng = np.random.default_rng(2)
            self.batches = iter([{"face": rng.random((8, 1, shape[2], shape[3]), dtype=np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.batches, None)

    out = path.replace(".onnx", ".int8.onnx")
    if os.path.exists(out):  # quantized already for another batch size of this run
        return out
    shape = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs()[0].shape
    quantize_static(path, out, Faces(shape), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--preset", default="?")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--int8", action="store_true")
    a = ap.parse_args()
    model = a.model
    if a.int8:
        model = quantize(a.model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    x = np.random.default_rng(1).random((a.batch, 1, shape[2], shape[3]), dtype=np.float32)
    for _ in range(3):
        session.run(["probabilities"], {"face": x})
    t0 = time.perf_counter()
    for _ in range(a.steps):
        session.run(["probabilities"], {"face": x})
    dt = time.perf_counter() - t0
    print(json.dumps({
        "engine": f"ONNX Runtime {ort.__version__}" + (" int8 (static QDQ)" if a.int8 else ""),
        "model": a.preset, "mode": "infer", "batch": a.batch,
        "imagesPerSecond": a.steps * a.batch / dt,
        "millisecondsPerBatch": 1000 * dt / a.steps,
        "peakMemoryMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }, sort_keys=True))


if __name__ == "__main__":
    main()
