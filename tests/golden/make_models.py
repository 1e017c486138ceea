#!/usr/bin/python3
"""Generate the golden-test models and their inputs with PyTorch (Debian's python3-torch).

    /usr/bin/python3 tests/golden/make_models.py OUTDIR

Writes OUTDIR/<name>/model.onnx and OUTDIR/<name>/input_<k>_<graph input name>.npy for:
an MLP, a small CNN, torchvision's ResNet-18 and MobileNetV2 (random weights, fixed seeds,
nothing downloaded), a BERT-style encoder written out as attention + LayerNorm + GELU, and an
LSTM. Reference outputs come from ONNX Runtime (reference.js), not from PyTorch.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

OPSET = 17


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                 nn.Linear(256, 10))

    def forward(self, x):
        return torch.softmax(self.net(x), dim=-1)


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, groups=32), nn.ReLU6(),
            nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.features(x), 1))


class EncoderLayer(nn.Module):
    """Self-attention written out op by op (as exported transformers look), then FFN."""

    def __init__(self, d, heads, ff):
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, x, mask):
        b, s, d = x.shape
        def split(t):
            return t.view(b, s, self.h, self.dk).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (self.dk ** 0.5) + mask
        ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, s, d)
        x = self.ln1(x + self.o(ctx))
        return self.ln2(x + self.ff2(nn.functional.gelu(self.ff1(x))))


class Encoder(nn.Module):
    def __init__(self, vocab=1000, d=256, heads=4, ff=1024, layers=2, max_len=128):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(max_len, d)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ff) for _ in range(layers))
        self.ln = nn.LayerNorm(d)

    def forward(self, ids, attention_mask):
        s = ids.shape[1]
        pos = torch.arange(s, dtype=torch.long).unsqueeze(0)
        x = self.ln(self.tok(ids) + self.pos(pos))
        mask = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * -10000.0
        for layer in self.layers:
            x = layer(x, mask)
        return x


class LSTMModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(32, 64, num_layers=2, batch_first=True)
        self.fc = nn.Linear(64, 8)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


def perturb_batchnorm(model):
    """Non-trivial BatchNorm parameters and statistics, so that folding them is tested and
    activations neither vanish nor explode in randomly initialized networks."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)
    return model


def export(outdir, name, model, inputs, input_names, dynamic=None):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    model.eval()
    with torch.no_grad():
        torch.onnx.export(model, tuple(torch.from_numpy(a) for a in inputs), os.path.join(d, "model.onnx"),
                          input_names=input_names, output_names=["output"], opset_version=OPSET,
                          dynamic_axes=dynamic, do_constant_folding=True)
    for k, (n, a) in enumerate(zip(input_names, inputs)):
        np.save(os.path.join(d, "input_%d_%s.npy" % (k, n)), a)
    print("wrote", d)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "build/golden"
    only = set(sys.argv[2:])
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    import torchvision

    def want(n):
        return not only or n in only

    if want("mlp"):
        torch.manual_seed(1)
        export(outdir, "mlp", MLP(), [rng.standard_normal((8, 784), dtype=np.float32)], ["x"],
               {"x": {0: "batch"}})
    if want("cnn"):
        torch.manual_seed(2)
        m = SmallCNN()
        for mod in m.modules():  # non-trivial BatchNorm statistics
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
        export(outdir, "cnn", m, [rng.standard_normal((4, 1, 28, 28), dtype=np.float32)], ["x"],
               {"x": {0: "batch"}})
    if want("resnet18"):
        torch.manual_seed(3)
        export(outdir, "resnet18", perturb_batchnorm(torchvision.models.resnet18()),
               [rng.standard_normal((1, 3, 224, 224), dtype=np.float32)], ["x"], {"x": {0: "batch"}})
    if want("mobilenetv2"):
        torch.manual_seed(4)
        m = perturb_batchnorm(torchvision.models.mobilenet_v2())
        with torch.no_grad():
            m.classifier[1].weight.normal_(0, 0.05)
        export(outdir, "mobilenetv2", m,
               [rng.standard_normal((1, 3, 224, 224), dtype=np.float32)], ["x"], {"x": {0: "batch"}})
    if want("bert"):
        torch.manual_seed(5)
        ids = rng.integers(0, 1000, (1, 128), dtype=np.int64)
        mask = np.ones((1, 128), dtype=np.int64)
        mask[0, 100:] = 0
        export(outdir, "bert", Encoder(), [ids, mask], ["input_ids", "attention_mask"],
               {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"}})
    if want("lstm"):
        torch.manual_seed(6)
        export(outdir, "lstm", LSTMModel(), [rng.standard_normal((2, 20, 32), dtype=np.float32)], ["x"],
               {"x": {0: "batch", 1: "seq"}})


if __name__ == "__main__":
    main()
