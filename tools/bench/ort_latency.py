"""Batch-1 inference latency of an ONNX model in ONNX Runtime on one thread, measured through
Python as `cargo xtask bench host` reports it next to `mote bench`. Prints one JSON object.

Needs: pip install onnxruntime
"""
import argparse, json, time
import numpy as np
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--runs", type=int, default=5000)
    a = p.parse_args()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    shape = [1] + [d if isinstance(d, int) else 1 for d in inp.shape[1:]]
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    micros = []
    for k in range(200 + a.runs):
        start = time.perf_counter()
        session.run(None, {inp.name: x})
        if k >= 200:
            micros.append((time.perf_counter() - start) * 1e6)
    micros.sort()
    print(json.dumps({"onnxruntime": ort.__version__, "runs": a.runs, "median_us": micros[len(micros) // 2],
                      "mean_us": sum(micros) / len(micros), "min_us": micros[0]}))


if __name__ == "__main__":
    main()
