#!/usr/bin/env python3
"""PyTorch peer for `fer bench`: the same presets, work and measurement as Benchmark.swift.

Random 48x48 images, batch-norm in training mode, Adam updates, eager mode, torch.set_num_threads.
--bf16: torch.autocast("cpu", dtype=torch.bfloat16) with channels_last, PyTorch's fast path on CPUs
with AVX-512 BF16 or AMX.
Prints one JSON line in the format `fer bench-one` prints. Used for comparison only; never on the
product's path.
"""
import argparse, json, resource, time

import torch
import torch.nn as nn


def conv_bn_relu(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


def cnn(width=32, classes=7, dropout=0.2):
    layers, cin = [], 1
    for c in (width, width * 2, width * 4):
        layers += conv_bn_relu(cin, c) + conv_bn_relu(c, c) + [nn.MaxPool2d(2)]
        cin = c
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, classes)]
    return nn.Sequential(*layers)


def vgg(width=64, size=48, classes=7, dropout=0.5, fc=0):
    layers, cin, side = [], 1, size
    for c in (width, width * 2, width * 4, width * 8):
        layers += conv_bn_relu(cin, c) + conv_bn_relu(c, c) + [nn.MaxPool2d(2)]
        cin, side = c, side // 2
    fc = fc or width * 64
    layers += [nn.Flatten(), nn.Linear(cin * side * side, fc), nn.ReLU(), nn.Dropout(dropout),
               nn.Linear(fc, fc), nn.ReLU(), nn.Dropout(dropout), nn.Linear(fc, classes)]
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="cnn")
    ap.add_argument("--mode", default="train")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--input-size", type=int, default=48)
    ap.add_argument("--width", type=int, default=0)
    ap.add_argument("--fc-width", type=int, default=0)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (implies --channels-last)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    net = {"cnn": lambda: cnn(width=a.width or 32),
           "vgg": lambda: vgg(width=a.width or 64, size=a.input_size, fc=a.fc_width)}[a.preset]()
    x = torch.rand(a.batch, 1, a.input_size, a.input_size)
    y = torch.arange(a.batch) % 7
    if a.bf16:
        a.channels_last = True
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    if a.mode == "train":
        net.train()
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                loss = loss_fn(net(x), y)
            loss.backward()
            opt.step()
    else:
        net.eval()

        def step():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                torch.softmax(net(x).float(), dim=1)
    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    dt = time.perf_counter() - t0
    print(json.dumps({
        "engine": f"PyTorch {torch.__version__} eager" + (" bf16 autocast channels_last" if a.bf16 else " channels_last" if a.channels_last else ""),
        "model": a.preset, "mode": a.mode, "batch": a.batch,
        "imagesPerSecond": a.steps * a.batch / dt,
        "millisecondsPerBatch": 1000 * dt / a.steps,
        "peakMemoryMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }, sort_keys=True))


if __name__ == "__main__":
    main()
