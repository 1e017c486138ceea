#!/usr/bin/python3
"""Train a small CNN on scikit-learn's bundled digits data and export it to ONNX.

    /usr/bin/python3 examples/train_digits.py

Needs Debian's python3-sklearn, python3-torch, python3-onnx and python3-numpy (all installed by
scripts/install-deps.sh). The digits data ships inside scikit-learn: nothing is downloaded.

Writes, relative to this script's folder:
    models/digits/1/model.onnx        the classifier (opset 17), input "image" float32
                                      [batch, 1, 8, 8] with pixels in [0, 1], output
                                      "probabilities" float32 [batch, 10] (softmax)
    data/test/image.npy               the held-out 20% test split, float32 [N, 1, 8, 8]: a
                                      dataset folder for `inferd eval --data data/test`
    data/test_labels.npy              its labels, int64 [N] (`--labels`; outside data/test,
                                      where every .npy is a batch of input "image")
    data/calibration/sample_NNN.npy   32 single-sample inputs [1, 1, 8, 8] from the training
                                      split, for int8 calibration (inferd quantize --calibration)
    requests/infer_one.json           KServe v2 infer request with the first test image
    requests/infer_batch.json         ... with the first 4 test images
    requests/predict.json             TF Serving :predict request ("instances") with the first 2

Prints the PyTorch test accuracy; the run is deterministic (fixed seeds, one thread).
"""
import json
import os
import random
import sys

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.path.join(HERE, "models", "digits", "1", "model.onnx")
DATA_DIR = os.path.join(HERE, "data")
CALIB_DIR = os.path.join(DATA_DIR, "calibration")
TEST_DIR = os.path.join(DATA_DIR, "test")
REQ_DIR = os.path.join(HERE, "requests")
N_CALIB = 32
EPOCHS = 40
BATCH = 32


class DigitsCNN(nn.Module):
    """Two 3x3 conv layers (16 and 32 channels), a 2x2 max pool and a linear head: ~10k params."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),  # 8x8 -> 4x4
        )
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))  # logits


class WithSoftmax(nn.Module):
    """What is exported: the classifier followed by a softmax over the 10 classes."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        return torch.softmax(self.net(image), dim=1)


def write_requests(x_test, y_test):
    """Sample requests for curl, from the first test images (pixels are multiples of 1/16, so
    they print exactly)."""
    def flat(a):
        return [float(v) for v in a.reshape(-1)]

    def kserve(n, rid):
        return {"id": rid,
                "inputs": [{"name": "image", "shape": [n, 1, 8, 8], "datatype": "FP32",
                            "data": flat(x_test[:n])}],
                "outputs": [{"name": "probabilities"}]}

    os.makedirs(REQ_DIR, exist_ok=True)
    files = {
        "infer_one.json": kserve(1, "digits-one"),
        "infer_batch.json": kserve(4, "digits-batch"),
        "predict.json": {"instances": [x_test[i].tolist() for i in range(2)]},
    }
    for name, body in files.items():
        with open(os.path.join(REQ_DIR, name), "w") as f:
            json.dump(body, f, separators=(",", ":"))
            f.write("\n")
    print("first test labels:", [int(v) for v in y_test[:4]])


def main():
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)  # pixels are 0..16
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=SEED)

    net = DigitsCNN()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(EPOCHS):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if (epoch + 1) % 10 == 0:
            print(f"epoch {epoch + 1}: train loss {total / len(xt):.4f}")

    model = WithSoftmax(net).eval()
    with torch.no_grad():
        probs = model(torch.from_numpy(x_test)).numpy()
    acc = float((probs.argmax(1) == y_test).mean())
    print(f"pytorch test accuracy: {acc:.4f} ({int(round(acc * len(y_test)))}/{len(y_test)})")
    if acc < 0.95:
        print("error: test accuracy below 0.95", file=sys.stderr)
        return 1

    os.makedirs(os.path.dirname(MODEL_PATH), exist_ok=True)
    torch.onnx.export(
        model, torch.from_numpy(x_test[:1]), MODEL_PATH,
        input_names=["image"], output_names=["probabilities"],
        dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=17, do_constant_folding=True)

    # the exported file must load and agree with PyTorch
    import onnx
    onnx.checker.check_model(onnx.load(MODEL_PATH))

    os.makedirs(CALIB_DIR, exist_ok=True)
    os.makedirs(TEST_DIR, exist_ok=True)
    np.save(os.path.join(TEST_DIR, "image.npy"), np.ascontiguousarray(x_test))
    np.save(os.path.join(DATA_DIR, "test_labels.npy"), y_test)
    for f in os.listdir(CALIB_DIR):
        if f.endswith(".npy"):
            os.remove(os.path.join(CALIB_DIR, f))
    calib = np.random.RandomState(SEED).choice(len(x_train), N_CALIB, replace=False)
    for k, i in enumerate(calib):
        np.save(os.path.join(CALIB_DIR, f"sample_{k:03d}.npy"), x_train[i:i + 1])

    write_requests(x_test, y_test)
    print(f"wrote {os.path.relpath(MODEL_PATH)} ({os.path.getsize(MODEL_PATH)} bytes), "
          f"{len(y_test)} test samples, {N_CALIB} calibration samples")
    return 0


if __name__ == "__main__":
    sys.exit(main())
