#!/usr/bin/env python3
"""ONNX Runtime as a peer of `fer bench engine` for inference: the same network, exported by
`fer export`, on the same batch and threads. Prints one JSON line in the format `fer bench-one`
prints. Used for comparison only; never on the product's path.
"""
import argparse, json, resource, time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--preset", default="?")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    x = np.random.default_rng(1).random((a.batch, 1, shape[2], shape[3]), dtype=np.float32)
    for _ in range(3):
        session.run(["probabilities"], {"face": x})
    t0 = time.perf_counter()
    for _ in range(a.steps):
        session.run(["probabilities"], {"face": x})
    dt = time.perf_counter() - t0
    print(json.dumps({
        "engine": f"ONNX Runtime {ort.__version__}",
        "model": a.preset, "mode": "infer", "batch": a.batch,
        "imagesPerSecond": a.steps * a.batch / dt,
        "millisecondsPerBatch": 1000 * dt / a.steps,
        "peakMemoryMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }, sort_keys=True))


if __name__ == "__main__":
    main()
