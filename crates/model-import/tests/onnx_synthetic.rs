//! The ONNX importer on small hand-built graphs: the variants torch does not emit today but
//! other exporters (or older torch versions) do, and the ones that must be refused.
//!
//! Graphs are built with the prost types, encoded, written to a scratch file and imported
//! through [`check`].

use std::path::Path;

use onnx_proto::Message;
use onnx_proto::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto, tensor_shape_proto, type_proto,
};

fn attr_i(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(2),
        i: Some(v),
        ..Default::default()
    }
}

fn attr_f(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(1),
        f: Some(v),
        ..Default::default()
    }
}

fn attr_t(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(4),
        t: Some(t),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

/// A float tensor stored in `float_data` (typed field, not raw_data).
fn floats(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        float_data: values.to_vec(),
        ..Default::default()
    }
}

fn seq(n: usize) -> Vec<f32> {
    (0..n).map(|v| v as f32 * 0.1).collect()
}

fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                None => tensor_shape_proto::dimension::Value::DimParam("batch".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A torch-produced model with input `x` of shape `input` and output `y`.
fn model(
    opset: i64,
    input: &[Option<i64>],
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
) -> ModelProto {
    ModelProto {
        ir_version: Some(8),
        producer_name: Some("pytorch".into()),
        producer_version: Some("2.15.0".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(opset),
        }],
        graph: Some(GraphProto {
            name: Some("main_graph".into()),
            node: nodes,
            initializer: inits,
            input: vec![value("x", input)],
            output: vec![value("y", &[])],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What an import should give: the `(node, text)` pairs and note substrings of a model, or a
/// substring of the error.
type Expected<'a> = Result<(&'a [(&'a str, &'a str)], &'a [&'a str]), &'a str>;

/// Imports `m`; `Ok` lists `(node, substring of its kind + attrs + params)` and note
/// substrings that must be present, `Err` a substring of the error message.
#[track_caller]
fn check(name: &str, m: ModelProto, expected: Expected<'_>) -> Option<model_ir::Model> {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("onnx_synthetic-{name}.onnx"));
    std::fs::write(&path, m.encode_to_vec()).unwrap();
    let result = model_import::load_onnx(&path);
    let _ = std::fs::remove_file(&path);
    match (result, expected) {
        (Ok(model), Ok((nodes, notes))) => {
            for (n, text) in nodes {
                let node = model.node(n).unwrap_or_else(|| {
                    panic!(
                        "{name}: no node `{n}` among {:?}",
                        model.nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
                    )
                });
                let params: Vec<String> = node
                    .params
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {:?} {}",
                            p.name,
                            p.tensor.shape(),
                            serde_json::to_string(&p.layout).unwrap()
                        )
                    })
                    .collect();
                let line = format!(
                    "{} {} [{}]",
                    node.op.kind(),
                    node.op.attrs_json(),
                    params.join("; ")
                );
                assert!(line.contains(text), "{name}: `{n}` lacks `{text}`: {line}");
            }
            for note in notes {
                assert!(
                    model.notes.iter().any(|x| x.contains(note)),
                    "{name}: no note `{note}` in {:#?}",
                    model.notes
                );
            }
            Some(model)
        }
        (Err(e), Err(text)) => {
            assert!(e.to_string().contains(text), "{name}: {e}");
            None
        }
        (Ok(model), Err(text)) => panic!(
            "{name}: imported, expected an error with `{text}`: {:?}",
            model.nodes.iter().map(|n| n.op.kind()).collect::<Vec<_>>()
        ),
        (Err(e), Ok(_)) => panic!("{name}: {e}"),
    }
}

fn gemm(attrs: Vec<AttributeProto>, w_dims: &[i64]) -> ModelProto {
    model(
        17,
        &[None, Some(4)],
        vec![node(
            "Gemm",
            "/fc/Gemm",
            &["x", "fc.weight", "fc.bias"],
            &["y"],
            attrs,
        )],
        vec![
            floats("fc.weight", w_dims, &seq(12)),
            floats("fc.bias", &[3], &[0.0, 1.0, 2.0]),
        ],
    )
}

#[test]
fn gemm_trans_b_0_keeps_in_out_layout() {
    check(
        "gemm-transb0",
        gemm(vec![], &[4, 3]),
        Ok((
            &[
                ("fc", r#""units":3"#),
                ("fc", r#"fc.weight [4, 3] {"layout":"dense_in_out"}"#),
            ],
            &["kept as (in, out)"],
        )),
    );
}

#[test]
fn gemm_trans_b_1_is_torch_linear() {
    check(
        "gemm-transb1",
        gemm(vec![attr_i("transB", 1)], &[3, 4]),
        Ok((
            &[("fc", r#"fc.weight [3, 4] {"layout":"dense_out_in"}"#)],
            &[],
        )),
    );
}

#[test]
fn gemm_scaling_and_transposed_a_lift_exactly() {
    // alpha·A·B + beta·C: the product scaled by alpha/beta, C added, the sum scaled by beta.
    let m = check(
        "gemm-alpha-beta",
        gemm(
            vec![
                attr_i("transB", 1),
                attr_f("alpha", 2.0),
                attr_f("beta", 0.5),
            ],
            &[3, 4],
        ),
        Ok((&[("fc", r#""units":3,"use_bias":false"#)], &[])),
    )
    .unwrap();
    let kinds: Vec<String> = m
        .nodes
        .iter()
        .map(|n| format!("{} {}", n.op.kind(), n.op.attrs_json()))
        .collect();
    let tail = &kinds[kinds.len() - 3..];
    assert!(tail[0].contains(r#""scale":4.0"#), "{kinds:?}");
    assert!(tail[1].starts_with("constant_binary"), "{kinds:?}");
    assert!(tail[2].contains(r#""scale":0.5"#), "{kinds:?}");
    // transA: the input permuted first.
    let m = check(
        "gemm-transa",
        gemm(vec![attr_i("transA", 1)], &[4, 3]),
        Ok((&[("fc", r#""units":3,"use_bias":true"#)], &[])),
    )
    .unwrap();
    assert_eq!(m.nodes[1].op.attrs_json().to_string(), r#"{"perm":[1,0]}"#);
}

#[test]
fn gemm_of_a_non_matrix_is_refused() {
    let m = model(
        17,
        &[None, Some(2), Some(4)],
        vec![node("Gemm", "/fc/Gemm", &["x", "w"], &["y"], vec![])],
        vec![floats("w", &[4, 3], &seq(12))],
    );
    check("gemm-rank3", m, Err("operand A of rank 3"));
}

#[test]
fn matmul_of_two_computed_values_is_refused() {
    let m = model(
        17,
        &[Some(4), Some(4)],
        vec![node("MatMul", "/MatMul", &["x", "x"], &["y"], vec![])],
        vec![],
    );
    check("matmul-values", m, Err("MatMul of two computed values"));
}

#[test]
fn matmul_by_a_stack_of_matrices_needs_the_rank_of_a() {
    // A of known rank: a broadcast product summed over K.
    let m = model(
        17,
        &[Some(2), Some(3), Some(4)],
        vec![node("MatMul", "/MatMul", &["x", "w"], &["y"], vec![])],
        vec![floats("w", &[2, 4, 5], &seq(40))],
    );
    check(
        "matmul-3d",
        m,
        Ok((&[], &["broadcast product summed over K"])),
    );
}

fn conv_transpose(attrs: Vec<AttributeProto>, input: &[Option<i64>]) -> ModelProto {
    model(
        17,
        input,
        vec![node(
            "ConvTranspose",
            "/up/ConvTranspose",
            &["x", "up.weight"],
            &["y"],
            attrs,
        )],
        vec![floats("up.weight", &[1, 2, 3, 3], &seq(18))],
    )
}

fn attr_s(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(3),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(7),
        ints: v.to_vec(),
        ..Default::default()
    }
}

#[test]
fn conv_transpose_same_and_output_shape_become_explicit_pads() {
    // in 3, stride 2, k 3: full length 7; SAME_UPPER wants 6: total 1, the odd one at the end.
    check(
        "convt-same-upper",
        conv_transpose(
            vec![
                attr_s("auto_pad", "SAME_UPPER"),
                attr_ints("strides", &[2, 2]),
            ],
            &[None, Some(1), Some(3), Some(3)],
        ),
        Ok((
            &[(
                "up",
                r#""padding":{"rule":"explicit","begin":[0,0],"end":[1,1]}"#,
            )],
            &[],
        )),
    );
    // output_shape longer than the full length: zeros at the end (output padding).
    check(
        "convt-output-shape",
        conv_transpose(
            vec![
                attr_ints("strides", &[3, 2]),
                attr_ints("output_shape", &[10, 8]),
            ],
            &[None, Some(1), Some(3), Some(3)],
        ),
        Ok((&[("up", r#""output_padding":[1,1]"#)], &[])),
    );
}

#[test]
fn conv_transpose_same_refusals() {
    check(
        "convt-same-unknown",
        conv_transpose(
            vec![
                attr_s("auto_pad", "SAME_LOWER"),
                attr_ints("strides", &[2, 2]),
            ],
            &[None, Some(1), None, Some(3)],
        ),
        Err("auto_pad=SAME_LOWER / output_shape on an input of unknown spatial size"),
    );
    check(
        "convt-output-shape-and-pads",
        conv_transpose(
            vec![
                attr_ints("output_shape", &[5, 5]),
                attr_ints("pads", &[1, 1, 1, 1]),
            ],
            &[None, Some(1), Some(3), Some(3)],
        ),
        Err("pads [1, 1, 1, 1] together with output_shape"),
    );
    // kernel 3, stride 4: the scatter reaches 11 < 12 = in × stride.
    check(
        "convt-same-short",
        conv_transpose(
            vec![
                attr_s("auto_pad", "SAME_UPPER"),
                attr_ints("strides", &[4, 4]),
            ],
            &[None, Some(1), Some(3), Some(3)],
        ),
        Err("auto_pad=SAME_UPPER with an output 12 longer than the transposed convolution's 11"),
    );
}

#[test]
fn maxpool_storage_order_and_indices() {
    let pool = |attrs: Vec<AttributeProto>, outputs: &[&str]| {
        let mut m = model(
            22,
            &[None, Some(1), Some(4), Some(4)],
            vec![node("MaxPool", "/pool/MaxPool", &["x"], outputs, attrs)],
            vec![],
        );
        if outputs.len() == 2 {
            m.graph.as_mut().unwrap().output.push(value("i", &[]));
        }
        m
    };
    check(
        "maxpool-storage-2",
        pool(
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_i("storage_order", 2),
            ],
            &["y", "i"],
        ),
        Err("storage_order=2"),
    );
    // storage_order=1: pooled with the spatial axes reversed, both outputs permuted back.
    let m = check(
        "maxpool-storage-1",
        pool(
            vec![
                attr_ints("kernel_shape", &[2, 3]),
                attr_i("storage_order", 1),
            ],
            &["y", "i"],
        ),
        Ok((&[], &[])),
    )
    .unwrap();
    let kinds: Vec<&str> = m.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["input", "permute", "pool", "permute", "permute"]);
    assert!(
        m.nodes[2]
            .op
            .attrs_json()
            .to_string()
            .contains(r#""pool_size":[3,2]"#)
    );
    // Without the Indices output storage_order changes nothing.
    let m = check(
        "maxpool-storage-1-no-indices",
        pool(
            vec![
                attr_ints("kernel_shape", &[2, 3]),
                attr_i("storage_order", 1),
            ],
            &["y"],
        ),
        Ok((&[], &[])),
    )
    .unwrap();
    assert_eq!(m.nodes.len(), 2);
}

fn clip(lo: f32, hi: f32) -> ModelProto {
    model(
        17,
        &[None, Some(4)],
        vec![node(
            "Clip",
            "/act/Clip",
            &["x", "lo", "hi"],
            &["y"],
            vec![],
        )],
        vec![floats("lo", &[], &[lo]), floats("hi", &[], &[hi])],
    )
}

#[test]
fn clip_lifts_to_relu_variants_or_to_bounds() {
    check(
        "clip06",
        clip(0.0, 6.0),
        Ok((&[("act", r#""fn":"relu6""#)], &[])),
    );
    check(
        "clip03",
        clip(0.0, 3.0),
        Ok((&[("act", r#""max_value":3.0"#)], &[])),
    );
    // Any other Clip: max(x, lo) then min(·, hi), as constant binaries.
    let m = check(
        "clip-11",
        clip(-1.0, 1.0),
        Ok((&[("act", r#""op":"maximum""#)], &[])),
    )
    .unwrap();
    assert!(
        m.nodes
            .iter()
            .any(|n| n.op.attrs_json().to_string().contains(r#""op":"minimum""#)),
        "clip-11: no minimum node"
    );
}

#[test]
fn old_softmax_semantics() {
    let sm = |axis: i64| {
        model(
            11,
            &[None, Some(3), Some(4)],
            vec![node(
                "Softmax",
                "/sm/Softmax",
                &["x"],
                &["y"],
                vec![attr_i("axis", axis)],
            )],
            vec![],
        )
    };
    check(
        "softmax-last",
        sm(2),
        Ok((&[("sm", r#""axis":2"#)], &["opset 11 < 13"])),
    );
    // Opset < 13 over axis 1 of a rank-3 value: the 2-D coercion `[N, 12]`, softmax over
    // axis 1, and back.
    let m = check("softmax-middle", sm(1), Ok((&[], &[]))).expect("imported");
    let kinds: Vec<String> = m
        .nodes
        .iter()
        .map(|n| format!("{} {}", n.op.kind(), n.op.attrs_json()))
        .collect();
    assert_eq!(
        kinds,
        [
            r#"input {"shape":[null,3,4],"dtype":"f32"}"#,
            r#"reshape_all {"shape":[-1,12]}"#,
            r#"activation {"function":{"fn":"softmax","axis":1}}"#,
            r#"reshape_all {"shape":[-1,3,4]}"#,
        ]
    );
}

#[test]
fn hardswish_before_opset_14() {
    let m = model(
        13,
        &[None, Some(4)],
        vec![
            node(
                "HardSigmoid",
                "/hs/HardSigmoid",
                &["x"],
                &["h"],
                vec![attr_f("alpha", 1.0 / 6.0)],
            ),
            node("Mul", "/hs/Mul", &["x", "h"], &["y"], vec![]),
        ],
        vec![],
    );
    check("hardswish", m, Ok((&[("hs", r#""fn":"hard_swish""#)], &[])));
}

#[test]
fn constant_nodes_and_constant_operands() {
    let c = floats("", &[], &[2.5]);
    let m = model(
        17,
        &[None, Some(4)],
        vec![
            node(
                "Constant",
                "/Constant",
                &[],
                &["c"],
                vec![attr_t("value", c)],
            ),
            node("Sub", "/Sub", &["c", "x"], &["y"], vec![]),
        ],
        vec![],
    );
    check(
        "const-first",
        m,
        Ok((
            &[
                ("Sub", r#""op":"sub","constant_first":true"#),
                ("Sub", "Sub.constant []"),
            ],
            &[],
        )),
    );
}

#[test]
fn division_of_two_values_is_a_merge() {
    let m = model(
        17,
        &[None, Some(4)],
        vec![
            node("Relu", "/Relu", &["x"], &["r"], vec![]),
            node("Div", "/Div", &["x", "r"], &["y"], vec![]),
        ],
        vec![],
    );
    check("div", m, Ok((&[("Div", r#""op":"divide""#)], &[])));
}

#[test]
fn reshape_that_moves_the_batch_reshapes_the_whole_tensor() {
    let m = model(
        17,
        &[None, Some(4)],
        vec![node("Reshape", "/Reshape", &["x", "shape"], &["y"], vec![])],
        vec![TensorProto {
            name: Some("shape".into()),
            dims: vec![1],
            data_type: Some(7),
            int64_data: vec![-1],
            ..Default::default()
        }],
    );
    // `[N, 4] → [-1]` merges the batch axis: a reshape of the whole tensor, the batch
    // length inferred at run time.
    check(
        "reshape-batch",
        m,
        Ok((&[("Reshape", r#"reshape_all {"shape":[-1]}"#)], &[])),
    );
}

#[test]
fn lstm_with_a_real_initial_state_is_refused() {
    let h = 2;
    let m = model(
        17,
        &[Some(3), None, Some(2)],
        vec![node(
            "LSTM",
            "/lstm/LSTM",
            &["x", "W", "R", "", "", "x"],
            &["y", "yh", "yc"],
            vec![attr_i("hidden_size", h)],
        )],
        vec![
            floats("W", &[1, 8, 2], &seq(16)),
            floats("R", &[1, 8, 2], &seq(16)),
        ],
    );
    check("lstm-h0", m, Err("non-zero initial_h"));
}

#[test]
fn lstm_with_plain_onnx_weights_is_converted_to_torch_gate_order() {
    // Gate blocks in ONNX order i, o, f, c hold 0, 1, 2, 3: torch's i, f, g, o order is 0, 2, 3, 1.
    let blocks: Vec<f32> = [0.0, 1.0, 2.0, 3.0].iter().flat_map(|&v| [v; 2]).collect();
    let m = model(
        17,
        &[Some(3), None, Some(1)],
        vec![
            node(
                "LSTM",
                "/rnn/LSTM",
                &["x", "W", "R"],
                &["Y", "Yh", "Yc"],
                vec![attr_i("hidden_size", 2)],
            ),
            node("Squeeze", "/rnn/Squeeze", &["Yh", "ax"], &["y"], vec![]),
        ],
        vec![
            floats("W", &[1, 8, 1], &blocks),
            floats("R", &[1, 8, 2], &seq(16)),
            TensorProto {
                name: Some("ax".into()),
                dims: vec![1],
                data_type: Some(7),
                int64_data: vec![0],
                ..Default::default()
            },
        ],
    );
    let model = check(
        "lstm-order",
        m,
        Ok((
            &[
                ("rnn", r#""bias":"none""#),
                ("rnn", r#""batch_first":false"#),
            ],
            &["names were lost"],
        )),
    );
    let w = model
        .as_ref()
        .and_then(|m| m.param("rnn.weight_ih_l0"))
        .expect("converted weight");
    let v: Vec<f32> = w.tensor.to_f32().iter().copied().collect();
    assert_eq!(v, vec![0.0, 0.0, 2.0, 2.0, 3.0, 3.0, 1.0, 1.0]);
}

/// Layers whose initializers lost their `state_dict` names (`onnx::Gemm_7`) and layers without
/// parameters are named after their TorchScript scope; torch names every scope after the
/// module's qualified name, so `/blocks/blocks.0/Gemm` is module `blocks.0` (a Sequential in an
/// attribute), `/layers/layers.1/layers.1.act/Relu` is `layers.1.act` (a ModuleList entry's
/// attribute), and `/head/Gemm` is the plain attribute `head`: never `blocks.blocks.0`.
#[test]
fn torchscript_scopes_name_modules_by_their_state_dict_prefix() {
    let m = model(
        17,
        &[None, Some(4)],
        vec![
            node(
                "Gemm",
                "/blocks/blocks.0/Gemm",
                &["x", "onnx::Gemm_7", "onnx::Gemm_8"],
                &["h"],
                vec![attr_i("transB", 1)],
            ),
            node(
                "Relu",
                "/layers/layers.1/layers.1.act/Relu",
                &["h"],
                &["r"],
                vec![],
            ),
            node(
                "Gemm",
                "/head/Gemm",
                &["r", "onnx::Gemm_9", "onnx::Gemm_10"],
                &["y"],
                vec![attr_i("transB", 1)],
            ),
        ],
        vec![
            floats("onnx::Gemm_7", &[3, 4], &seq(12)),
            floats("onnx::Gemm_8", &[3], &[0.0, 1.0, 2.0]),
            floats("onnx::Gemm_9", &[2, 3], &seq(6)),
            floats("onnx::Gemm_10", &[2], &[0.0, 1.0]),
        ],
    );
    let model = check(
        "scopes",
        m,
        Ok((
            &[
                ("blocks.0", r#""units":3"#),
                ("layers.1.act", "activation"),
                ("head", r#""units":2"#),
            ],
            &[],
        )),
    )
    .expect("imports");
    assert!(
        model
            .nodes
            .iter()
            .all(|n| !n.name.contains("blocks.blocks") && !n.name.contains("layers.layers")),
        "{:?}",
        model.nodes.iter().map(|n| &n.name).collect::<Vec<_>>()
    );
}

#[test]
fn conv_transpose_output_shape_with_valid_is_refused() {
    check(
        "convt-valid-output-shape",
        conv_transpose(
            vec![
                attr_s("auto_pad", "VALID"),
                attr_ints("output_shape", &[5, 5]),
            ],
            &[None, Some(1), Some(3), Some(3)],
        ),
        Err("output_shape together with auto_pad=VALID"),
    );
}

fn batch_norm(attrs: Vec<AttributeProto>, outputs: &[&str]) -> ModelProto {
    let mut m = model(
        15,
        &[Some(2), Some(3), Some(4)],
        vec![node(
            "BatchNormalization",
            "/bn/BatchNormalization",
            &[
                "x",
                "bn.weight",
                "bn.bias",
                "bn.running_mean",
                "bn.running_var",
            ],
            outputs,
            attrs,
        )],
        vec![
            floats("bn.weight", &[3], &[1.0, 2.0, 3.0]),
            floats("bn.bias", &[3], &[0.0, 0.5, 1.0]),
            floats("bn.running_mean", &[3], &[0.1, 0.2, 0.3]),
            floats("bn.running_var", &[3], &[1.0, 1.5, 2.0]),
        ],
    );
    for o in &outputs[1..] {
        m.graph.as_mut().unwrap().output.push(value(o, &[]));
    }
    m
}

#[test]
fn batch_norm_statistics_outputs() {
    // Without training_mode=1 the statistics outputs are not computed.
    check(
        "bn-stats-inference",
        batch_norm(vec![], &["y", "m", "v"]),
        Err("statistics outputs [1, 2] are used"),
    );
    // With it, the node is its training step; the running mean is momentum·mean + (1−m)·μ.
    check(
        "bn-stats-training",
        batch_norm(
            vec![attr_i("training_mode", 1), attr_f("momentum", 0.75)],
            &["y", "m", "v"],
        ),
        Ok((
            &[("bn", r#""axes":[0,2]"#)],
            &["lifted as its training step"],
        )),
    );
    // Only Y: a BatchNorm layer whose statistics follow the engine's mode.
    check(
        "bn-training-y-only",
        batch_norm(vec![attr_i("training_mode", 1)], &["y"]),
        Ok((&[("bn", r#""training_mode":true"#)], &[])),
    );
}

#[test]
fn matmul_add_with_a_legacy_axis_is_not_a_bias() {
    // Add-6 with axis=0 aligns the vector with the rows: not the Dense bias; refused by Add.
    let m = model(
        6,
        &[Some(4), Some(4)],
        vec![
            node("MatMul", "/fc/MatMul", &["x", "fc.weight"], &["h"], vec![]),
            node(
                "Add",
                "/fc/Add",
                &["h", "fc.bias"],
                &["y"],
                vec![attr_i("broadcast", 1), attr_i("axis", 0)],
            ),
        ],
        vec![
            floats("fc.weight", &[4, 4], &seq(16)),
            floats("fc.bias", &[4], &seq(4)),
        ],
    );
    check("matmul-add-axis0", m, Err("legacy broadcast with axis=0"));
}

#[test]
fn reduce_with_no_axes_and_noop_is_the_identity() {
    let m = model(
        18,
        &[None, Some(3)],
        vec![node(
            "ReduceMax",
            "/ReduceMax",
            &["x"],
            &["y"],
            vec![attr_i("noop_with_empty_axes", 1)],
        )],
        vec![],
    );
    let m = check("reduce-noop", m, Ok((&[], &[]))).unwrap();
    assert_eq!(m.nodes[1].op.kind(), "identity");
}

#[test]
fn gemm_and_matmul_refusals() {
    // beta=0 ignores C only when 0·C is 0 everywhere.
    let m = model(
        17,
        &[None, Some(4)],
        vec![node(
            "Gemm",
            "/fc/Gemm",
            &["x", "fc.weight", "c"],
            &["y"],
            vec![attr_f("beta", 0.0)],
        )],
        vec![
            floats("fc.weight", &[4, 3], &seq(12)),
            floats("c", &[3], &[0.0, f32::INFINITY, 1.0]),
        ],
    );
    check(
        "gemm-beta0-inf",
        m,
        Err("beta=0 times a C holding inf or NaN"),
    );
    // An integer matrix multiplies in integers (wrapping), which the engine does not.
    let ints = TensorProto {
        name: Some("w".into()),
        dims: vec![4, 3],
        data_type: Some(7),
        int64_data: (0..12).collect(),
        ..Default::default()
    };
    let m = model(
        17,
        &[None, Some(4)],
        vec![node("MatMul", "/MatMul", &["x", "w"], &["y"], vec![])],
        vec![ints],
    );
    check("matmul-int", m, Err("MatMul of I64 (integer) operands"));
}
