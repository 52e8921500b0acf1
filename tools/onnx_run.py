#!/usr/bin/env python3
"""Test oracle: runs an ONNX model exported by `fer export` in ONNX Runtime.

    onnx_run.py MODEL.onnx FACES.u8 N SIDE  -> JSON on stdout: {"probabilities": [[...], ...], "metadata": {...}}

FACES.u8 holds N gray faces of SIDE x SIDE bytes each; they are scaled to [0, 1] as the model's
metadata says and run in one batch on one thread.
"""
import json
import sys

import numpy as np
import onnxruntime as ort


def main():
    model, faces, n, side = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    x = np.fromfile(faces, dtype=np.uint8).reshape(n, 1, side, side).astype(np.float32) / 255.0
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    logits, probabilities = session.run(["logits", "probabilities"], {"face": x})
    meta = session.get_modelmeta().custom_metadata_map
    json.dump({"probabilities": probabilities.tolist(), "logits": logits.tolist(), "metadata": meta}, sys.stdout)


if __name__ == "__main__":
    main()
