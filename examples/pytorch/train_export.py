"""The PyTorch side of the journey (see journey.sh): trains the mnist-cnn architecture of
models/mnist-cnn.toml in PyTorch on data/mnist with the same recipe (Adam, lr 0.003, cosine
schedule per step, batch 64, 10 epochs, pixels / 255), exports it to ONNX with a dynamic batch,
and writes what mote's side is checked against:

  OUT/mnist-cnn.onnx          the exported model
  OUT/test_images.npy         the 2,000 test digits, [2000, 1, 28, 28] float32
  OUT/torch_logits.npy        PyTorch's logits for them, [2000, 10]
  OUT/torch.json              PyTorch's test accuracy and timings

With --reference DIR it also writes DIR/mnist-cnn.onnx with the first 32 test digits and their
logits (reference_inputs.npy, reference_logits.npy): the files CI checks the import with.
"""
import argparse, gzip, json, os, struct, time
import numpy as np
import torch
from torch import nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path, opener = path + ".gz", gzip.open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 10),
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="data/mnist")
    p.add_argument("--out", default="target/pytorch")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--reference", default=None)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(1)
    torch.set_num_threads(2)
    load = lambda split: (
        torch.tensor(read_idx(f"{a.data}/{split}-images-idx3-ubyte").astype(np.float32) / 255.0).unsqueeze(1),
        torch.tensor(read_idx(f"{a.data}/{split}-labels-idx1-ubyte").astype(np.int64)),
    )
    (xtr, ytr), (xte, yte) = load("train"), load("t10k")
    model = mnist_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    steps_per_epoch = len(xtr) // 64
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps_per_epoch * a.epochs)
    start = time.time()
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(len(xtr))
        for s in range(steps_per_epoch):
            idx = order[s * 64 : (s + 1) * 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}, test accuracy {100 * acc:.2f}%")
    seconds = time.time() - start
    model.eval()
    with torch.no_grad():
        logits = model(xte).numpy()
    accuracy = float((logits.argmax(1) == yte.numpy()).mean())
    onnx_path = os.path.join(a.out, "mnist-cnn.onnx")
    torch.onnx.export(
        model, (xte[:1],), onnx_path, dynamo=False, opset_version=13,
        input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
    )
    np.save(os.path.join(a.out, "test_images.npy"), xte.numpy())
    np.save(os.path.join(a.out, "torch_logits.npy"), logits)
    report = {"accuracy": accuracy, "train_seconds": seconds, "epochs": a.epochs, "torch": torch.__version__}
    with open(os.path.join(a.out, "torch.json"), "w") as f:
        json.dump(report, f)
    print(json.dumps(report))
    if a.reference:
        os.makedirs(a.reference, exist_ok=True)
        with open(onnx_path, "rb") as src, open(os.path.join(a.reference, "mnist-cnn.onnx"), "wb") as dst:
            dst.write(src.read())
        np.save(os.path.join(a.reference, "reference_inputs.npy"), xte[:32].numpy())
        np.save(os.path.join(a.reference, "reference_logits.npy"), logits[:32])


if __name__ == "__main__":
    main()
