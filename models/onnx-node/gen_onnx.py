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
    plain = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64,
             np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]
    if any(a.dtype == np.dtype(t) for t in plain) or a.dtype.name == "float8_e5m2":
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


class SyntheticCase:
    """A hand-built case in the shape of an ONNX node test (`name`, `model`, `data_sets`),
    for operand forms the node tests lack: a constant operand among computed ones (the class
    token concatenated to a sequence, `torch.maximum(x, weight)`), integer exponents, ...
    Its constants are initializers already; its reference comes from
    `onnx.reference.ReferenceEvaluator`."""

    def __init__(self, name, node, inputs, initializers, opset=17, reference=None):
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        graph_inputs = [
            helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for k, v in inputs.items()
        ]
        inits = [numpy_helper.from_array(v, k) for k, v in initializers.items()]
        ref = ReferenceEvaluator(
            helper.make_model(
                helper.make_graph([node], name, graph_inputs, [
                    helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None)
                    for o in node.output
                ], inits),
                opset_imports=[helper.make_opsetid("", opset)],
            )
        )
        outs = ref.run(None, dict(inputs)) if reference is None else reference(*inputs.values())
        graph_outputs = [
            helper.make_tensor_value_info(o, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
            for o, v in zip(node.output, outs)
        ]
        self.name = name
        self.model = helper.make_model(
            helper.make_graph([node], name, graph_inputs, graph_outputs, inits),
            opset_imports=[helper.make_opsetid("", opset)],
            producer_name="parallax-synthetic",
        )
        self.data_sets = [(list(inputs.values()), outs)]


def parallax_cases():
    """The hand-built cases (`cases/parallax_*`)."""
    from onnx import helper

    rng = np.random.default_rng(16)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    node = helper.make_node
    return [
        # The class token prepended to a sequence: Concat(constant, x) along the time axis.
        SyntheticCase("parallax_concat_constant_first",
                      node("Concat", ["cls", "x"], ["y"], axis=1),
                      {"x": f32(2, 3, 4)}, {"cls": f32(2, 1, 4)}),
        SyntheticCase("parallax_concat_constant_middle",
                      node("Concat", ["x", "c", "z"], ["y"], axis=-1),
                      {"x": f32(2, 3), "z": f32(2, 2)}, {"c": f32(2, 4)}),
        SyntheticCase("parallax_max_constant",
                      node("Max", ["x", "c"], ["y"]),
                      {"x": f32(3, 4)}, {"c": f32(4)}),
        SyntheticCase("parallax_min_constant_first",
                      node("Min", ["c", "x", "z"], ["y"]),
                      {"x": f32(3, 4), "z": f32(3, 4)}, {"c": f32(3, 1)}),
        SyntheticCase("parallax_sum_constant_middle",
                      node("Sum", ["x", "c", "z"], ["y"]),
                      {"x": f32(2, 3), "z": f32(2, 3)}, {"c": f32(3)}),
        SyntheticCase("parallax_pow_int64_exponent_tensor",
                      node("Pow", ["x", "e"], ["y"]),
                      {"x": f32(2, 3)}, {"e": np.array([0, 1, 3], dtype=np.int64)}),
        SyntheticCase("parallax_pow_float_exponent_tensor",
                      node("Pow", ["x", "e"], ["y"]),
                      {"x": np.abs(f32(2, 3)) + 0.5}, {"e": np.array([-1.5, 0.5, 2.25], np.float32)}),
        # Repeated and negative indices (the backward adds the repeats up), 2-D indices.
        SyntheticCase("parallax_gather_repeated_2d_indices",
                      node("Gather", ["x", "i"], ["y"], axis=1),
                      {"x": f32(2, 5, 3)}, {"i": np.array([[0, 4], [-1, 1]], dtype=np.int64)}),
        SyntheticCase("parallax_gather_last_axis_run",
                      node("Gather", ["x", "i"], ["y"], axis=-1),
                      {"x": f32(2, 6)}, {"i": np.array([1, 2, 3, 5], dtype=np.int64)}),
        # Flatten at an axis that merges the batch axis, Reshape that splits it.
        SyntheticCase("parallax_flatten_axis2",
                      node("Flatten", ["x"], ["y"], axis=2),
                      {"x": f32(2, 3, 4, 2)}, {}),
        SyntheticCase("parallax_reshape_split_batch",
                      node("Reshape", ["x", "s"], ["y"]),
                      {"x": f32(6, 4)}, {"s": np.array([2, 3, -1], dtype=np.int64)}),
        # Integer ids widened, then cast to float.
        SyntheticCase("parallax_cast_int64_to_float",
                      node("Cast", ["x"], ["y"], to=onnx.TensorProto.FLOAT),
                      {"x": np.array([[0, 7, -3], [1 << 20, 5, 2]], dtype=np.int64)}, {}),
        SyntheticCase("parallax_cast_float_to_int32",
                      node("Cast", ["x"], ["y"], to=onnx.TensorProto.INT32),
                      {"x": np.array([[0.5, -1.7, 3.2]], dtype=np.float32)}, {}),
        SyntheticCase("parallax_add_int32",
                      node("Add", ["x", "z"], ["y"]),
                      {"x": np.array([[1, 2]], np.int32), "z": np.array([[3, 4]], np.int32)}, {}),
        SyntheticCase("parallax_selu_custom",
                      node("Selu", ["x"], ["y"], alpha=0.5, gamma=1.5),
                      {"x": f32(3, 4)}, {}),
        SyntheticCase("parallax_prelu_slope_per_row",
                      node("PRelu", ["x", "s"], ["y"]),
                      {"x": f32(2, 3, 4)}, {"s": np.abs(f32(3, 1))}),
        SyntheticCase("parallax_pad_wrap_large",
                      node("Pad", ["x", "p"], ["y"], mode="wrap"),
                      {"x": f32(1, 2, 3, 2)}, {"p": np.array([0, 0, 4, 1, 0, 0, 1, 3], np.int64)}),
        # Opset < 13 Softmax/LogSoftmax coerce the input to 2-D at `axis` (the Operators
        # spec, Softmax-11; ReferenceEvaluator 1.23.2 applies the opset-13 meaning here, so
        # the reference is computed from the spec).
        SyntheticCase("parallax_softmax_opset11_axis1",
                      node("Softmax", ["x"], ["y"], axis=1),
                      {"x": f32(2, 3, 4)}, {}, opset=11,
                      reference=lambda x: [coerced_softmax(x, 1, log=False)]),
        SyntheticCase("parallax_logsoftmax_opset11_axis0",
                      node("LogSoftmax", ["x"], ["y"], axis=0),
                      {"x": f32(2, 3, 2)}, {}, opset=11,
                      reference=lambda x: [coerced_softmax(x, 0, log=True)]),
    ]


def coerced_softmax(x, axis, log):
    """Softmax-1/11 (and LogSoftmax): `x` as the matrix `[prod(shape[:axis]), prod(shape[axis:])]`,
    normalized along its rows (in float64, rounded to x's dtype)."""
    m = x.astype(np.float64).reshape(int(np.prod(x.shape[:axis])), -1)
    z = m - m.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1, keepdims=True))
    y = z - lse if log else np.exp(z - lse)
    return y.reshape(x.shape).astype(x.dtype)


def save_file(tensors, path, metadata):
    """A safetensors file with its header's keys in sorted order (the library's writer orders
    metadata differently from run to run), so that regenerating reproduces every byte."""
    codes = {"f": {2: "F16", 4: "F32", 8: "F64"}, "i": {1: "I8", 2: "I16", 4: "I32", 8: "I64"},
             "u": {1: "U8", 2: "U16", 4: "U32", 8: "U64"}, "b": {1: "BOOL"}}
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        a = np.require(tensors[name], requirements="C")
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        code = "F8_E5M2" if a.dtype.name == "float8_e5m2" else codes[a.dtype.kind][a.dtype.itemsize]
        header[name] = {"dtype": code, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for b in blobs:
            f.write(b)


def main():
    check_versions()
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = os.path.join(here, "cases")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    ort_results = {}
    skipped = []
    count = 0
    # Several node tests draw their data from numpy's global generator without a seed.
    np.random.seed(0)
    cases = sorted(node_cases.collect_testcases(None), key=lambda c: c.name) + parallax_cases()
    for case in cases:
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
