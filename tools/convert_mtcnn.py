#!/usr/bin/env python3
"""Converts MTCNN's three networks (P-Net, R-Net, O-Net) from the facenet-pytorch PyPI package
(MIT licence; weights in facenet_pytorch/data/{pnet,rnet,onet}.pt) to one safetensors file named
as swift-fer's layers name them, and dumps reference outputs for the engine's tests.

    pip download --no-deps facenet-pytorch && unzip facenet_pytorch-*.whl 'facenet_pytorch/data/*'
    python3 tools/convert_mtcnn.py facenet_pytorch/data

The dense layers of R-Net and O-Net read their input flattened in (W, H, C) order (facenet-pytorch
permutes before flattening); swift-fer flattens NCHW, so those weight columns are permuted here.
"""
import os, sys
import torch
import torch.nn as nn
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), 1)


class RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = self.prelu4(self.dense4(x.permute(0, 3, 2, 1).contiguous().flatten(1)))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), 1)


class ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).contiguous().flatten(1)))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), 1)


def whc_to_chw(w, c, h, wd):
    """Columns of a dense weight from (W, H, C) flattening order to (C, H, W)."""
    out = w.reshape(w.shape[0], wd, h, c).permute(0, 3, 2, 1)
    return out.reshape(w.shape[0], -1).contiguous()


def main(src):
    nets = {"pnet": PNet(), "rnet": RNet(), "onet": ONet()}
    weights, ref = {}, {}
    torch.manual_seed(0)
    sizes = {"pnet": (2, 3, 31, 37), "rnet": (3, 3, 24, 24), "onet": (3, 3, 48, 48)}
    for name, net in nets.items():
        sd = torch.load(os.path.join(src, name + ".pt"), map_location="cpu")
        net.load_state_dict(sd)
        net.eval()
        for k, v in sd.items():
            v = v.float()
            if name == "rnet" and k == "dense4.weight":
                v = whc_to_chw(v, 64, 3, 3)
            if name == "onet" and k == "dense5.weight":
                v = whc_to_chw(v, 128, 3, 3)
            weights[f"{name}.{k}"] = v.contiguous()
        x = torch.rand(*sizes[name]) * 2 - 1
        with torch.no_grad():
            outs = net(x)
        ref[f"{name}/input"] = x
        for i, o in enumerate(outs):
            ref[f"{name}/output{i}"] = o.contiguous()
    os.makedirs(os.path.join(ROOT, "models/mtcnn"), exist_ok=True)
    save_file(weights, os.path.join(ROOT, "models/mtcnn/mtcnn.safetensors"),
              metadata={"source": "facenet-pytorch 2.6.0 (PyPI), facenet_pytorch/data/{pnet,rnet,onet}.pt, MIT licence"})
    save_file(ref, os.path.join(ROOT, "Tests/FERTests/Reference/mtcnn_nets.safetensors"))
    print(sum(v.numel() for v in weights.values()), "parameters")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "facenet_pytorch/data")
