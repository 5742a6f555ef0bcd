"""The ONNX project's node tests for every op type parallax lifts, converted to the
conformance format (`../shared/onnx-conformance/README.md`): one folder per case under
`cases/` with the unchanged-but-for-initializers `model.onnx`, `inputs.safetensors` (`x`, or
`x.<input name>` when the graph has several runtime inputs) and `reference.safetensors`
(`output`, or `output.<output name>`; metadata `source`, `op_type`, `opset`).

Conversion rules (what a real PyTorch export does):
- the operands an exporter stores as initializers (weights, biases, shapes, axes, pads,
  scales, sizes, indices, exponents, recurrent weights and states) become initializers;
  the data operands stay graph inputs;
- `_expanded` variants (the op's function body) are left out: they test other op types;
- training-mode Dropout with a non-zero ratio is left out (its reference mask comes from
  numpy's generator).

Also writes `ort.json`: for every case, whether ONNX Runtime reproduces the reference under
the ONNX backend runner's tolerance (|got - ref| <= 1e-7 + 1e-3 |ref|), or its error.

Run by `cargo xtask fixtures` (needs only onnx, onnxruntime, numpy and safetensors).
"""

import json
import os
import shutil
import sys

sys.dont_write_bytecode = True

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from onnx.backend.test.case import node as node_cases
from safetensors.numpy import save_file

PINNED_ONNX = "1.23.2"

# The op types the importer lifts (crates/model-import/src/onnx/lift/mod.rs, REGISTRY).
LIFTED = [
    "Gemm", "MatMul", "Conv", "ConvTranspose", "BatchNormalization", "LayerNormalization",
    "InstanceNormalization", "Dropout", "Identity", "Cast", "Relu", "LeakyRelu", "Elu", "Selu",
    "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Softsign", "Softmax",
    "LogSoftmax", "Clip", "Gelu", "Mish", "PRelu", "Erf", "Abs", "Neg", "Sqrt", "Exp", "Log",
    "Reciprocal", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Concat", "Tile",
    "Flatten", "Reshape", "Transpose", "Pad", "Gather", "Slice", "Split", "Squeeze",
    "Unsqueeze", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean",
    "ReduceMax", "ReduceSum", "ReduceMin", "Resize", "Upsample", "LSTM", "GRU", "RNN",
]

# Input positions an exporter stores as initializers, per op type (all others stay inputs).
CONSTANT_INPUTS = {
    "Conv": {1, 2}, "ConvTranspose": {1, 2}, "Gemm": {1, 2}, "MatMul": {1},
    "BatchNormalization": {1, 2, 3, 4}, "LayerNormalization": {1, 2},
    "InstanceNormalization": {1, 2}, "PRelu": {1}, "Reshape": {1}, "Pad": {1, 2, 3},
    "Gather": {1}, "Slice": {1, 2, 3, 4}, "Split": {1}, "Squeeze": {1}, "Unsqueeze": {1},
    "Tile": {1}, "Resize": {1, 2, 3}, "Upsample": {1}, "Clip": {1, 2},
    "ReduceMean": {1}, "ReduceMax": {1}, "ReduceSum": {1}, "ReduceMin": {1},
    "Dropout": {1, 2}, "Pow": {1},
    "LSTM": {1, 2, 3, 4, 5, 6, 7}, "GRU": {1, 2, 3, 4, 5}, "RNN": {1, 2, 3, 4, 5},
}


def check_versions():
    if onnx.__version__ != PINNED_ONNX:
        print(f"warning: onnx {onnx.__version__} installed, fixtures were made with {PINNED_ONNX}",
              file=sys.stderr)


def close(got, ref):
    got = np.asarray(got)
    ref = np.asarray(ref)
    if got.shape != ref.shape:
        return False
    if ref.dtype.kind in "fc":
        g = got.astype(np.float64)
        r = ref.astype(np.float64)
        same_nan = np.isnan(g) & np.isnan(r)
        ok = np.abs(g - r) <= 1e-7 + 1e-3 * np.abs(r)
        ok |= same_nan | ((g == r) & np.isinf(r))
        return bool(ok.all())
    return bool((got == ref).all())


def st_array(a):
    """The array as safetensors stores it, or None for dtypes it has no code for."""
    # np.require keeps a 0-d result (np.matmul of two vectors) 0-d; np.ascontiguousarray
    # would make it 1-d.
    a = np.require(np.asarray(a), requirements="C")
    if a.dtype.kind in "fiub" and a.dtype.itemsize in (1, 2, 4, 8):
        return a
    return None


def as_numpy(v):
    """Node tests give most data as numpy arrays and some (casts) as TensorProtos."""
    if isinstance(v, onnx.TensorProto):
        try:
            return numpy_helper.to_array(v)
        except Exception:
            return np.asarray([], dtype=object)
    return v


def convert(case):
    model = case.model
    graph = model.graph
    if case.name.endswith("_expanded") or "_expanded_" in case.name:
        return None, None
    if not any(n.op_type in LIFTED for n in graph.node):
        return None, None
    if len(graph.node) != 1:
        return None, "more than one node"
    node = graph.node[0]
    op = node.op_type
    if not case.data_sets:
        return None, "no data"
    inputs, outputs = case.data_sets[0]
    inputs = [as_numpy(v) for v in inputs]
    outputs = [as_numpy(v) for v in outputs]
    names = [i.name for i in graph.input]
    if op == "Dropout" and len(node.input) > 2 and node.input[2]:
        k = names.index(node.input[2])
        training = bool(np.asarray(inputs[k]))
        ratio = 0.5
        if len(node.input) > 1 and node.input[1]:
            ratio = float(np.asarray(inputs[names.index(node.input[1])]))
        if training and ratio != 0.0:
            return None, None
    const_pos = CONSTANT_INPUTS.get(op, set())
    const_names = {node.input[p] for p in const_pos if p < len(node.input) and node.input[p]}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    keep_inputs = []
    runtime = {}
    for vi, value in zip(graph.input, inputs):
        if vi.name in const_names:
            g.initializer.append(numpy_helper.from_array(np.asarray(value), vi.name))
        else:
            keep_inputs.append(vi)
            runtime[vi.name] = np.asarray(value)
    del g.input[:]
    g.input.extend(keep_inputs)
    outs = {o.name: np.asarray(v) for o, v in zip(graph.output, outputs)}
    return (m, runtime, outs), None


def main():
    check_versions()
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = os.path.join(here, "cases")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    ort_results = {}
    skipped = []
    count = 0
    for case in sorted(node_cases.collect_testcases(None), key=lambda c: c.name):
        try:
            conv, why = convert(case)
        except Exception as e:  # a case this conversion cannot express
            skipped.append((case.name, f"conversion failed: {e}"))
            continue
        if conv is None:
            if why:
                skipped.append((case.name, why))
            continue
        m, runtime, outs = conv
        op = m.graph.node[0].op_type
        xs = {}
        bad = None
        for k, v in runtime.items():
            a = st_array(v)
            if a is None:
                bad = f"input `{k}` has dtype {np.asarray(v).dtype}"
                break
            xs["x" if len(runtime) == 1 else f"x.{k}"] = a
        refs = {}
        for k, v in outs.items():
            a = st_array(v)
            if a is None:
                bad = f"output `{k}` has dtype {np.asarray(v).dtype}"
                break
            refs["output" if len(outs) == 1 else f"output.{k}"] = a
        if bad:
            skipped.append((case.name, bad))
            continue
        d = os.path.join(out_dir, case.name)
        os.makedirs(d)
        onnx.save(m, os.path.join(d, "model.onnx"))
        opset = max((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), default=0)
        meta = {"source": f"onnx {onnx.__version__} node test {case.name}", "op_type": op,
                "opset": str(opset)}
        if xs:
            save_file(xs, os.path.join(d, "inputs.safetensors"), metadata=meta)
        else:
            save_file({}, os.path.join(d, "inputs.safetensors"), metadata=meta)
        save_file(refs, os.path.join(d, "reference.safetensors"), metadata=meta)
        # ONNX Runtime on the same converted model.
        try:
            sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
            got = sess.run(None, runtime)
            ok = all(close(gv, outs[o.name]) for gv, o in zip(got, m.graph.output))
            ort_results[case.name] = {"op_type": op, "ort": "pass" if ok else "wrong"}
        except Exception as e:
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            ort_results[case.name] = {"op_type": op, "ort": "error", "reason": msg}
        count += 1
    with open(os.path.join(here, "ort.json"), "w") as f:
        json.dump({"onnx": onnx.__version__, "onnxruntime": ort.__version__,
                   "cases": ort_results,
                   "not_converted": dict(skipped)}, f, indent=1, sort_keys=True)
        f.write("\n")
    passed = sum(1 for r in ort_results.values() if r["ort"] == "pass")
    print(f"onnx-node: {count} cases written; ONNX Runtime passes {passed}; "
          f"{len(skipped)} not converted")


if __name__ == "__main__":
    main()
