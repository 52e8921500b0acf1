#!/usr/bin/env python3
"""facenet-pytorch's MTCNN as the peer of `fer bench pipeline --peer`: the same detector (the
weights swift-fer's were converted from), with the same minimum face, thresholds and pyramid step,
on the same photos and threads. Decoding is timed apart; the figure compared is detection.
Prints one JSON line. Used for comparison only; never on the product's path.
Needs: python3 -m pip install torch torchvision && python3 -m pip install facenet-pytorch --no-deps
"""
import argparse, json, time

import torch
from PIL import Image
from facenet_pytorch import MTCNN


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", required=True, help="a file with one photo path per line")
    ap.add_argument("--repeats", type=int, default=1, help="runs over the list; the best run of each photo counts")
    ap.add_argument("--min-face", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    paths = [p for p in open(a.list).read().splitlines() if p]
    mtcnn = MTCNN(min_face_size=a.min_face, thresholds=[0.6, 0.7, 0.7], factor=0.709, keep_all=True, device="cpu")
    photos = [Image.open(p).convert("RGB") for p in paths]
    with torch.inference_mode():
        mtcnn.detect(photos[0])  # warm-up
        best = [float("inf")] * len(photos)
        faces = 0
        for r in range(a.repeats):
            for i, img in enumerate(photos):
                t = time.perf_counter()
                boxes, _ = mtcnn.detect(img)
                best[i] = min(best[i], (time.perf_counter() - t) * 1000)
                if r == 0:
                    faces += 0 if boxes is None else len(boxes)
    print(json.dumps({"engine": f"facenet-pytorch MTCNN, PyTorch {torch.__version__}", "photos": len(photos), "faces": faces,
                      "meanDetectMilliseconds": sum(best) / len(best), "threads": a.threads}))


if __name__ == "__main__":
    main()
