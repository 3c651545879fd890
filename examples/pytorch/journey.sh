#!/usr/bin/env bash
# The PyTorch journey, as a user would take it: train mnist-cnn in PyTorch, export ONNX, import
# it into mote, check mote gives PyTorch's predictions, run it on the emulated Cortex-M4, then
# fine-tune it on the device. Run from anywhere: examples/pytorch/journey.sh
#
# Needs: python3 (a venv with torch, onnx and numpy is made in target/pytorch-venv; torch from
# PyPI is several GB), the data (cargo xtask data) and the QEMU tools (cargo xtask setup).
# Writes target/pytorch/ and exports the imported model to firmware/model/model.mote.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=target/pytorch-venv
OUT=target/pytorch
if ! [ -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
if ! "$VENV/bin/python" -c "import torch, onnx, numpy" 2>/dev/null; then
    echo "== installing torch, onnx and numpy into $VENV (pip)"
    "$VENV/bin/pip" install --quiet torch onnx numpy
fi
cargo xtask data
cargo build --release --quiet -p mote-cli
MOTE=target/release/mote

echo "== 1/5 PyTorch: train mnist-cnn on data/mnist and export ONNX"
"$VENV/bin/python" examples/pytorch/train_export.py --data data/mnist --out "$OUT" "$@"

echo "== 2/5 mote import"
$MOTE import "$OUT/mnist-cnn.onnx" --out "$OUT/mnist-cnn.mote"

echo "== 3/5 mote eval and mote run against PyTorch's predictions"
$MOTE eval "$OUT/mnist-cnn.mote" --data data/mnist --json > "$OUT/mote-eval.json"
$MOTE run "$OUT/mnist-cnn.mote" --input "$OUT/test_images.npy" --output "$OUT/mote_logits.npy"
"$VENV/bin/python" - "$OUT" <<'PY'
import json, sys
import numpy as np
out = sys.argv[1]
mote, torch = np.load(f"{out}/mote_logits.npy"), np.load(f"{out}/torch_logits.npy")
differ = np.nonzero(mote.argmax(1) != torch.argmax(1))[0]
# A float tie: PyTorch's two best logits within float32 rounding of each other.
top2 = np.sort(torch, axis=1)[:, -2:]
ties = [int(i) for i in differ if top2[i, 1] - top2[i, 0] <= 1e-5 * max(1.0, abs(top2[i, 1]))]
report = {
    "pytorch_accuracy": json.load(open(f"{out}/torch.json"))["accuracy"],
    "mote_accuracy": json.load(open(f"{out}/mote-eval.json"))["accuracy"],
    "predictions_differing": len(differ), "of_which_float_ties": len(ties),
    "largest_logit_difference": float(np.abs(mote - torch).max()),
}
print(json.dumps(report))
json.dump(report, open(f"{out}/journey.json", "w"))
sys.exit(0 if len(differ) == len(ties) else 1)
PY

echo "== 4/5 export to the firmware, inference on the emulated Cortex-M4 (compared with the host)"
$MOTE export "$OUT/mnist-cnn.mote" --out firmware/model/model.mote
cargo xtask qemu infer --json > "$OUT/device-infer.json"
cat "$OUT/device-infer.json"

# A model PyTorch trained to convergence keeps its accuracy at a small rate (batch-1 SGD with
# momentum on digits it already fits only adds noise); an under-trained one (--epochs 1)
# improves at a larger one: FINETUNE_LR=0.0003 examples/pytorch/journey.sh --epochs 1
LR=${FINETUNE_LR:-0.00001}
echo "== 5/5 on-device fine-tuning of the imported model (2,000 steps, batch 1, lr $LR)"
cargo xtask qemu train --finetune --steps 2000 --eval 2000 --lr "$LR" --json > "$OUT/device-finetune.json"
cat "$OUT/device-finetune.json"
