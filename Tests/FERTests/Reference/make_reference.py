#!/usr/bin/env python3
"""Writes the PyTorch reference dumps that ReferenceTests.swift compares the engine against
(llm.c style): for each preset, seeded weights named as swift-fer names them, an input batch and
labels, and what PyTorch computes in float64 from them in training mode: logits, the cross-entropy
loss, the gradient of every parameter and of the input, and the updated batch-norm running
statistics; then the inference-mode logits with those statistics.

    python3 Tests/FERTests/Reference/make_reference.py     # needs torch and safetensors
"""
import json, os
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))


class CBR(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class CNN(nn.Module):  # preset "cnn"
    def __init__(self, w, classes=7):
        super().__init__()
        self.s1 = nn.ModuleList([CBR(1, w), CBR(w, w)])
        self.s2 = nn.ModuleList([CBR(w, 2 * w), CBR(2 * w, 2 * w)])
        self.s3 = nn.ModuleList([CBR(2 * w, 4 * w), CBR(4 * w, 4 * w)])
        self.fc = nn.Linear(4 * w, classes)

    def forward(self, x):
        for s in (self.s1, self.s2, self.s3):
            x = F.max_pool2d(s[1](s[0](x)), 2)
        return self.fc(x.mean((2, 3)))


class VGG(nn.Module):  # preset "vgg"
    def __init__(self, w, fc, size, classes=7):
        super().__init__()
        chans = [w, 2 * w, 4 * w, 8 * w]
        cin = 1
        for i, c in enumerate(chans):
            setattr(self, f"s{i + 1}", nn.ModuleList([CBR(cin, c), CBR(c, c)]))
            cin, size = c, size // 2
        self.fc1 = nn.Linear(cin * size * size, fc)
        self.fc2 = nn.Linear(fc, fc)
        self.fc3 = nn.Linear(fc, classes)

    def forward(self, x):
        for i in range(4):
            s = getattr(self, f"s{i + 1}")
            x = F.max_pool2d(s[1](s[0](x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc3(F.relu(self.fc2(x)))


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.project = cin != cout or stride != 1
        if self.project:
            self.down = nn.Conv2d(cin, cout, 1, stride, 0)
            self.down_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.down_bn(self.down(x)) if self.project else x))


class ResNet(nn.Module):  # preset "resnet"
    def __init__(self, w, classes=7):
        super().__init__()
        self.stem = CBR(1, w)
        cin = w
        for i, c in enumerate([w, 2 * w, 4 * w, 8 * w]):
            setattr(self, f"s{i + 1}", nn.ModuleList([Basic(cin, c, 1 if i == 0 else 2), Basic(c, c, 1)]))
            cin = c
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.stem(x)
        for i in range(4):
            for b in getattr(self, f"s{i + 1}"):
                x = b(x)
        return self.fc(x.mean((2, 3)))


class MLP(nn.Module):  # preset "mlp"
    def __init__(self, w, size, classes=7):
        super().__init__()
        self.fc1 = nn.Linear(size * size, w)
        self.fc2 = nn.Linear(w, w // 2)
        self.fc3 = nn.Linear(w // 2, classes)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x.flatten(1))))))


def dump(name, net, spec, batch=4):
    torch.manual_seed(0)
    net = net.double()
    # Non-trivial batch-norm affine parameters, so their gradients are checked too.
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    params = {k: v.detach().float().clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    # Round weights to float32 so both sides start from identical values.
    net.load_state_dict({k: v.double() for k, v in params.items()}, strict=False)
    x = torch.rand(batch, 1, spec["inputSize"], spec["inputSize"]).float().double().requires_grad_(True)
    y = torch.arange(batch) % spec["classes"]
    net.train()
    logits = net(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    out = {f"param/{k}": v for k, v in params.items()}
    out["input"] = x.detach().float()
    out["labels"] = y.float()
    out["logits"] = logits.detach().float()
    out["loss"] = loss.detach().float().reshape(1)
    out["grad/input"] = x.grad.float()
    for k, p in net.named_parameters():
        out[f"grad/{k}"] = p.grad.float()
    for k, v in net.state_dict().items():
        if "running_" in k:
            out[f"running/{k}"] = v.float()
    net.eval()
    with torch.no_grad():
        out["eval_logits"] = net(x).float()
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(HERE, f"{name}.safetensors"),
              metadata={"spec": json.dumps(spec), "torch": torch.__version__})
    print(name, f"loss {loss.item():.6f}", sum(v.numel() for v in params.values()), "values")


if __name__ == "__main__":
    torch.manual_seed(0)
    dump("cnn", CNN(8), {"preset": "cnn", "width": 8, "inputSize": 24, "classes": 7})
    torch.manual_seed(1)
    dump("resnet", ResNet(4), {"preset": "resnet", "width": 4, "inputSize": 24, "classes": 7})
    torch.manual_seed(2)
    dump("vgg", VGG(8, 32, 32), {"preset": "vgg", "width": 8, "fcWidth": 32, "inputSize": 32, "classes": 7})
    torch.manual_seed(3)
    dump("mlp", MLP(64, 24), {"preset": "mlp", "width": 64, "inputSize": 24, "classes": 7})


def dump_optimizers():
    """Five steps of each optimizer on fixed parameters and gradients: the parameters after each."""
    torch.manual_seed(4)
    w0 = torch.randn(2, 50).float()
    grads = [torch.randn(2, 50).float() for _ in range(5)]
    out = {"w0": w0}
    for i, g in enumerate(grads):
        out[f"grad{i}"] = g
    configs = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
        "sgd_nesterov": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
        "adam": lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01),
        "adamw": lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    }
    for name, make in configs.items():
        w = w0.double().clone().requires_grad_(True)
        opt = make([w])
        for i, g in enumerate(grads):
            w.grad = g.double().clone()
            opt.step()
            out[f"{name}/step{i}"] = w.detach().float().clone()
    save_file(out, os.path.join(HERE, "optimizers.safetensors"), metadata={"torch": torch.__version__})
    print("optimizers", list(configs))


if __name__ == "__main__":
    dump_optimizers()
