"""PyTorch's side of `cargo xtask bench host`: trains a mote spec (models/*.toml) with the
recipe `mote train` uses, on the same IDX files, and prints one JSON object.

Same recipe as mote: the spec's layers (conv2d, relu, maxpool2d, flatten, linear), weights
Kaiming-uniform (fan_in, ReLU gain: bound sqrt(6 / fan_in)) and biases zero, pixels / 255,
Adam (betas 0.9/0.999, eps 1e-8) at the spec's lr with a cosine decay per step to 0 over the
run, the spec's batch (last partial batch dropped), a fresh shuffle each epoch, cross-entropy.
Only the training steps are timed (the test pass after each epoch is not), as in mote.

Needs PyTorch (CPU build): pip install torch --index-url https://download.pytorch.org/whl/cpu
"""
import argparse, gzip, json, os, struct, time, tomllib
import numpy as np
import torch
from torch import nn


def read_idx(path):
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def pair(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def build(spec):
    """nn.Sequential of the spec's layers; refuses ops this script does not know."""
    shape = list(spec["input"])
    layers = []
    for layer in spec["layer"]:
        op = layer["op"]
        if op == "conv2d":
            conv = nn.Conv2d(shape[0], layer["out_channels"], pair(layer["kernel"]), stride=pair(layer.get("stride", 1)),
                             padding=pair(layer.get("padding", 0)), bias=layer.get("bias", True))
            layers.append(conv)
            shape = list(conv(torch.zeros([1] + shape)).shape[1:])
        elif op == "maxpool2d":
            k = pair(layer["kernel"])
            pool = nn.MaxPool2d(k, stride=pair(layer.get("stride", k)))
            layers.append(pool)
            shape = list(pool(torch.zeros([1] + shape)).shape[1:])
        elif op == "relu":
            layers.append(nn.ReLU())
        elif op == "flatten":
            layers.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        elif op == "linear":
            layers.append(nn.Linear(shape[-1], layer["out"], bias=layer.get("bias", True)))
            shape = shape[:-1] + [layer["out"]]
        else:
            raise SystemExit(f"pytorch_train.py: op `{op}` is not mapped")
    model = nn.Sequential(*layers)
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("spec")
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--onnx", default=None, help="also export the trained model to this ONNX file (batch dimension dynamic)")
    a = p.parse_args()
    with open(a.spec, "rb") as f:
        spec = tomllib.load(f)
    train = spec.get("train", {})
    if train.get("optimizer", "adam") != "adam" or train.get("schedule", "constant") != "cosine":
        raise SystemExit("pytorch_train.py: only Adam with a cosine schedule is mapped")
    lr, batch = train.get("lr", 1e-3), train.get("batch", 64)
    epochs = a.epochs or train.get("epochs", 10)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    load = lambda split: (
        torch.tensor(read_idx(f"{a.data}/{split}-images-idx3-ubyte").astype(np.float32) / 255.0).reshape([-1] + spec["input"]),
        torch.tensor(read_idx(f"{a.data}/{split}-labels-idx1-ubyte").astype(np.int64)),
    )
    (xtr, ytr), (xte, yte) = load("train"), load("t10k")
    model = build(spec)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8)
    steps = len(xtr) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * epochs)
    seconds, accuracy = [], 0.0
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(xtr))
        for s in range(steps):
            idx = order[s * batch : (s + 1) * batch]
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(xtr[idx]), ytr[idx]).backward()
            opt.step()
            sched.step()
        seconds.append(time.perf_counter() - start)
        model.eval()
        with torch.no_grad():
            accuracy = (model(xte).argmax(1) == yte).float().mean().item()
    total = sum(seconds)
    if a.onnx:
        model.eval()
        torch.onnx.export(model, (xte[:1],), a.onnx, dynamo=False, opset_version=13,
                          input_names=["image"], output_names=["logits"], dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}})
    print(json.dumps({
        "torch": torch.__version__, "threads": a.threads, "epochs": epochs,
        "train_seconds": total, "seconds_per_epoch": total / epochs,
        "samples_per_second": steps * batch * epochs / total, "test_accuracy": accuracy,
    }))


if __name__ == "__main__":
    main()
