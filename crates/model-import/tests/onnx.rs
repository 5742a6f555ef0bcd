//! The ONNX importer on real exports: every file of `models/zoo/torch` (torch 2.15 TorchScript
//! training-mode exports, an eval-mode constant-folded export, dynamo exports, a Keras
//! `model.export(format="onnx")`) and the bundles' `models/*/torch/model.onnx` /
//! `model.eval.onnx` when present.
//!
//! Everything goes through [`check`], which imports the file and compares the IR with what the
//! framework itself wrote next to it: `<name>.expect.json` (state_dict keys, shapes and
//! `requires_grad`, leaf modules with their types and constructor arguments) for the zoo,
//! `state_dict.safetensors` for the bundles. Each test adds the key attributes of its fixture
//! as `(node, text its rendered line must contain)` pairs and the notes it must carry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model_ir::{Model, Node, Op, ParamLayout};
use serde_json::Value;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

/// One line per node: name, kind, attributes as JSON, then the parameters.
fn render(n: &Node) -> String {
    let params: Vec<String> = n
        .params
        .iter()
        .map(|p| {
            format!(
                "{} {:?} {} {}{}",
                p.name,
                p.tensor.shape(),
                serde_json::to_string(&p.layout).unwrap_or_default(),
                p.role.name(),
                if p.trainable { " trainable" } else { "" }
            )
        })
        .collect();
    format!(
        "{}: {} {} inputs={:?} outputs={:?} params=[{}]",
        n.name,
        n.op.kind(),
        n.op.attrs_json(),
        n.inputs,
        n.outputs,
        params.join("; ")
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// `k` or `[k, k]`, as a list of `rank` numbers.
fn per_axis(v: &Value, rank: usize) -> Vec<u64> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_u64().unwrap_or(u64::MAX)).collect(),
        other => vec![other.as_u64().unwrap_or(u64::MAX); rank],
    }
}

fn usizes(v: &[usize]) -> Vec<u64> {
    v.iter().map(|&x| x as u64).collect()
}

/// Imports `rel` (under `models/`) and checks it against the framework's own description,
/// the wanted `(node, substring)` pairs and the wanted note substrings.
#[track_caller]
fn check(rel: &str, want: &[(&str, &str)], notes: &[&str]) {
    let path = models_dir().join(rel);
    let model = match model_import::load_onnx(&path) {
        Ok(m) => m,
        Err(e) => panic!("{rel}: {e}"),
    };
    model
        .validate()
        .unwrap_or_else(|e| panic!("{rel}: invalid IR: {e}"));
    let lines: BTreeMap<&str, String> = model
        .nodes
        .iter()
        .map(|n| (n.name.as_str(), render(n)))
        .collect();
    let dump = || {
        lines.values().cloned().collect::<Vec<_>>().join("\n")
            + "\nnotes:\n"
            + &model.notes.join("\n")
    };
    for (node, text) in want {
        let line = lines
            .get(node)
            .unwrap_or_else(|| panic!("{rel}: no node `{node}` in\n{}", dump()));
        assert!(
            line.contains(text),
            "{rel}: node `{node}` lacks `{text}`:\n{line}"
        );
    }
    for note in notes {
        assert!(
            model.notes.iter().any(|n| n.contains(note)),
            "{rel}: no note containing `{note}` in\n{}",
            model.notes.join("\n")
        );
    }
    assert!(
        model.notes.iter().any(|n| n.contains("ONNX opset")),
        "{rel}: the opset is not noted"
    );
    let stem = path
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default()
        .trim_end_matches(".onnx");
    let expect = path.with_file_name(format!("{stem}.expect.json"));
    let state = path.with_file_name("state_dict.safetensors");
    if expect.exists() {
        let text = std::fs::read_to_string(&expect).unwrap();
        let e: Value = serde_json::from_str(&text).unwrap();
        if e.get("export").and_then(Value::as_str) == Some("keras") {
            check_keras(rel, &model, &e);
        } else {
            check_torch(rel, &model, &e, &dump);
        }
    } else if state.exists() {
        let tensors = model_import::load_safetensors(&state).unwrap();
        let entries: Vec<(String, Vec<usize>, bool)> = tensors
            .tensors
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.shape().to_vec(),
                    !k.contains("running_") && !k.ends_with("num_batches_tracked"),
                )
            })
            .collect();
        check_state_dict(rel, &model, &entries);
    } else {
        panic!("{rel}: neither {stem}.expect.json nor state_dict.safetensors next to it");
    }
}

/// Whether the model's notes excuse a state_dict tensor missing from the IR.
fn excused(model: &Model) -> bool {
    model.notes.iter().any(|n| {
        n.contains("folds BatchNorm")
            || n.contains("renamed by the exporter")
            || n.contains("names were lost")
    })
}

/// Every state_dict tensor (`(name, shape, trainable)`) is an IR parameter of that name and
/// shape, except where the notes say the export folded or renamed it.
#[track_caller]
fn check_state_dict(rel: &str, model: &Model, entries: &[(String, Vec<usize>, bool)]) {
    for (name, shape, trainable) in entries {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        match model.param(name) {
            Some(p) => {
                assert_eq!(p.tensor.shape(), shape.as_slice(), "{rel}: shape of {name}");
                assert_eq!(p.trainable, *trainable, "{rel}: trainable flag of {name}");
            }
            None => assert!(
                excused(model),
                "{rel}: state_dict tensor {name} is not an IR parameter and no note says why"
            ),
        }
    }
}

fn check_torch(rel: &str, model: &Model, e: &Value, dump: &dyn Fn() -> String) {
    assert_eq!(model.framework, model_ir::Framework::Torch, "{rel}");
    assert!(
        model
            .producer
            .as_deref()
            .is_some_and(|p| p.starts_with("pytorch")),
        "{rel}: producer"
    );
    let export = e["export"].as_str().unwrap_or_default();
    let entries: Vec<(String, Vec<usize>, bool)> = e["state_dict"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let shape = s["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            (
                s["name"].as_str().unwrap().to_string(),
                shape,
                s["requires_grad"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    check_state_dict(rel, model, &entries);
    let folded = model.notes.iter().any(|n| n.contains("folds BatchNorm"));
    let no_dropout = model.notes.iter().any(|n| n.contains("no Dropout nodes"));
    for m in e["modules"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let ty = m["type"].as_str().unwrap();
        let a = &m["attrs"];
        if (ty.starts_with("BatchNorm") && folded) || (ty.starts_with("Dropout") && no_dropout) {
            continue;
        }
        if ty.starts_with("Dropout") && export != "training" {
            panic!(
                "{rel}: eval-mode export kept `{name}` but says nothing about Dropout\n{}",
                dump()
            );
        }
        if matches!(ty, "LSTM" | "GRU") {
            let layers = a["num_layers"].as_u64().unwrap_or(1);
            for k in 0..layers {
                let node = if layers > 1 {
                    format!("{name}.l{k}")
                } else {
                    name.to_string()
                };
                let n = model
                    .node(&node)
                    .unwrap_or_else(|| panic!("{rel}: no node `{node}`\n{}", dump()));
                check_rnn(rel, n, ty, a, name, k);
            }
            continue;
        }
        let n = model
            .node(name)
            .unwrap_or_else(|| panic!("{rel}: module `{name}` ({ty}) has no IR node\n{}", dump()));
        check_module(rel, model, n, ty, a, export);
    }
}

fn check_rnn(rel: &str, n: &Node, ty: &str, a: &Value, module: &str, layer: u64) {
    let Op::Rnn {
        cell,
        units,
        gate_order,
        gru_reset,
        direction,
        batch_first,
        bias,
        ..
    } = &n.op
    else {
        panic!("{rel}: `{}` is {}, not rnn", n.name, n.op.kind());
    };
    let gru = ty == "GRU";
    assert_eq!(
        *cell,
        if gru {
            model_ir::RnnCell::Gru
        } else {
            model_ir::RnnCell::Lstm
        },
        "{rel}: cell"
    );
    assert_eq!(
        *units as u64,
        a["hidden_size"].as_u64().unwrap(),
        "{rel}: units"
    );
    assert_eq!(
        *batch_first,
        a["batch_first"].as_bool().unwrap(),
        "{rel}: batch_first of {}",
        n.name
    );
    let order = if gru {
        model_ir::GateOrder::Rzn
    } else {
        model_ir::GateOrder::Ifco
    };
    assert_eq!(*gate_order, order, "{rel}: gate order");
    if gru {
        assert_eq!(
            *gru_reset,
            Some(model_ir::GruReset::AfterMatmul),
            "{rel}: GRU reset"
        );
    }
    let bidi = a["bidirectional"].as_bool().unwrap();
    assert_eq!(
        matches!(direction, model_ir::RnnDirection::Bidirectional(_)),
        bidi,
        "{rel}: direction"
    );
    let has_bias = a["bias"]
        .as_bool()
        .or(a["has_bias"].as_bool())
        .unwrap_or(true);
    assert_eq!(*bias != model_ir::RnnBias::None, has_bias, "{rel}: bias");
    let mut leaves = vec!["weight_ih", "weight_hh"];
    if has_bias {
        leaves.extend(["bias_ih", "bias_hh"]);
    }
    for sfx in if bidi { vec!["", "_reverse"] } else { vec![""] } {
        for leaf in &leaves {
            let pname = format!("{module}.{leaf}_l{layer}{sfx}");
            let p = n
                .params
                .iter()
                .find(|p| p.name == pname)
                .unwrap_or_else(|| panic!("{rel}: `{}` lacks {pname}", n.name));
            let want = if leaf.starts_with("weight") {
                ParamLayout::RnnGatesIn { gate_order: order }
            } else {
                ParamLayout::RnnGateVector { gate_order: order }
            };
            assert_eq!(p.layout, want, "{rel}: layout of {pname}");
        }
    }
}

fn check_module(rel: &str, model: &Model, n: &Node, ty: &str, a: &Value, export: &str) {
    let ctx = format!("{rel}: module `{}` ({ty}) → {}", n.name, render(n));
    match ty {
        "Linear" => {
            let Op::Dense {
                units, use_bias, ..
            } = &n.op
            else {
                panic!("{ctx}")
            };
            assert_eq!(*units as u64, a["out_features"].as_u64().unwrap(), "{ctx}");
            assert_eq!(*use_bias, a["has_bias"].as_bool().unwrap(), "{ctx}");
            let w = n
                .params
                .iter()
                .find(|p| p.role == model_ir::ParamRole::Kernel)
                .expect("kernel");
            assert_eq!(
                w.layout,
                ParamLayout::DenseOutIn,
                "{ctx}: torch Linear weight is (out, in)"
            );
        }
        "Conv1d" | "Conv2d" => check_conv(&ctx, n, ty, a),
        "ConvTranspose2d" => {
            let Op::ConvTranspose {
                filters,
                output_padding,
                strides,
                ..
            } = &n.op
            else {
                panic!("{ctx}")
            };
            assert_eq!(
                *filters as u64,
                a["out_channels"].as_u64().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                output_padding.as_deref().map(usizes),
                Some(per_axis(&a["output_padding"], 2)),
                "{ctx}"
            );
            assert_eq!(usizes(strides), per_axis(&a["stride"], 2), "{ctx}");
        }
        "BatchNorm1d" | "BatchNorm2d" => check_batch_norm(&ctx, n, a, export),
        "LayerNorm" => {
            let Op::LayerNorm { axes, epsilon, .. } = &n.op else {
                panic!("{ctx}")
            };
            let dims = a["normalized_shape"].as_array().unwrap().len();
            assert_eq!(axes.len(), dims, "{ctx}");
            assert!(close(*epsilon, num(&a["eps"])), "{ctx}: epsilon {epsilon}");
        }
        "GroupNorm" => {
            let Op::GroupNorm {
                groups, epsilon, ..
            } = &n.op
            else {
                panic!("{ctx}")
            };
            assert_eq!(*groups as u64, a["num_groups"].as_u64().unwrap(), "{ctx}");
            assert!(close(*epsilon, num(&a["eps"])), "{ctx}");
        }
        "MaxPool1d" | "MaxPool2d" | "AvgPool1d" | "AvgPool2d" => check_pool(&ctx, n, ty, a),
        "AdaptiveAvgPool2d" => assert!(
            matches!(
                n.op,
                Op::GlobalPool {
                    pool: model_ir::PoolKind::Avg,
                    ..
                }
            ),
            "{ctx}"
        ),
        "Dropout" => {
            let Op::Dropout { rate, .. } = &n.op else {
                panic!("{ctx}")
            };
            assert!(close(*rate, num(&a["p"])), "{ctx}");
        }
        "Embedding" => check_embedding(&ctx, model, n, a),
        "ZeroPad2d" | "ReplicationPad2d" => {
            let Op::Pad { mode, .. } = &n.op else {
                panic!("{ctx}")
            };
            let want = if ty == "ZeroPad2d" {
                model_ir::PadMode::Constant(0.0)
            } else {
                model_ir::PadMode::Edge
            };
            assert_eq!(*mode, want, "{ctx}");
        }
        "Upsample" => {
            let Op::UpSampling {
                size,
                interpolation,
                ..
            } = &n.op
            else {
                panic!("{ctx}")
            };
            let scale = num(&a["scale_factor"]) as usize;
            assert_eq!(size, &vec![scale; size.len()], "{ctx}");
            let want = if a["mode"] == "bilinear" && a["align_corners"] == true {
                model_ir::Interpolation::BilinearAlignCorners
            } else if a["mode"] == "bilinear" {
                model_ir::Interpolation::Bilinear
            } else {
                model_ir::Interpolation::Nearest
            };
            assert_eq!(*interpolation, want, "{ctx}");
        }
        _ => check_activation(&ctx, n, ty, a),
    }
}

/// `Conv1d`/`Conv2d`: a regular or depthwise convolution with torch's kernel, stride, dilation and symmetric pads.
fn check_conv(ctx: &str, n: &Node, ty: &str, a: &Value) {
    let rank = if ty == "Conv1d" { 1 } else { 2 };
    let groups = a["groups"].as_u64().unwrap();
    let (cin, cout) = (
        a["in_channels"].as_u64().unwrap(),
        a["out_channels"].as_u64().unwrap(),
    );
    let (k, s, d, p) = match &n.op {
        Op::DepthwiseConv {
            depth_multiplier,
            kernel_size,
            strides,
            dilation,
            padding,
            ..
        } => {
            assert!(
                groups == cin && groups > 1,
                "{ctx}: depthwise but groups {groups}"
            );
            assert_eq!(*depth_multiplier as u64, cout / cin, "{ctx}");
            (kernel_size, strides, dilation, padding)
        }
        Op::Conv {
            filters,
            groups: g,
            kernel_size,
            strides,
            dilation,
            padding,
            ..
        } => {
            assert!(
                !(groups == cin && groups > 1),
                "{ctx}: groups == in_channels is depthwise"
            );
            assert_eq!(*filters as u64, cout, "{ctx}");
            assert_eq!(*g as u64, groups, "{ctx}");
            (kernel_size, strides, dilation, padding)
        }
        _ => panic!("{ctx}"),
    };
    assert_eq!(usizes(k), per_axis(&a["kernel_size"], rank), "{ctx}");
    assert_eq!(usizes(s), per_axis(&a["stride"], rank), "{ctx}");
    assert_eq!(usizes(d), per_axis(&a["dilation"], rank), "{ctx}");
    let pads = per_axis(&a["padding"], rank);
    match p {
        model_ir::Padding::Valid => assert!(pads.iter().all(|&x| x == 0), "{ctx}"),
        model_ir::Padding::Explicit { begin, end } => {
            assert_eq!(usizes(begin), pads, "{ctx}");
            assert_eq!(usizes(end), pads, "{ctx}");
        }
        other => panic!("{ctx}: padding {other:?}"),
    }
}

/// `BatchNorm1d`/`2d`: ONNX keep-old momentum, epsilon, the unbiased running variance, training mode.
fn check_batch_norm(ctx: &str, n: &Node, a: &Value, export: &str) {
    let Op::BatchNorm {
        momentum,
        epsilon,
        training_mode,
        running_variance,
        ..
    } = &n.op
    else {
        panic!("{ctx}")
    };
    let model_ir::MomentumForm::KeepOld(m) = momentum else {
        panic!("{ctx}: momentum {momentum:?}")
    };
    assert!(
        close(*m, 1.0 - num(&a["momentum"])),
        "{ctx}: ONNX keep-old momentum {m} vs torch {}",
        a["momentum"]
    );
    assert!(close(*epsilon, num(&a["eps"])), "{ctx}: epsilon");
    assert_eq!(
        *running_variance,
        model_ir::VarianceEstimate::Unbiased,
        "{ctx}"
    );
    if export == "training" {
        assert_eq!(*training_mode, Some(true), "{ctx}");
    }
}

/// Max and average pooling: kind, `ceil_mode`, kernel, `count_include_pad`.
fn check_pool(ctx: &str, n: &Node, ty: &str, a: &Value) {
    let Op::Pool {
        pool,
        ceil_mode,
        count_include_pad,
        pool_size,
        ..
    } = &n.op
    else {
        panic!("{ctx}")
    };
    let avg = ty.starts_with("Avg");
    assert_eq!(*pool == model_ir::PoolKind::Avg, avg, "{ctx}");
    assert_eq!(*ceil_mode, a["ceil_mode"].as_bool().unwrap(), "{ctx}");
    assert_eq!(
        usizes(pool_size),
        per_axis(&a["kernel_size"], pool_size.len()),
        "{ctx}"
    );
    if avg {
        assert_eq!(
            *count_include_pad,
            a["count_include_pad"].as_bool().unwrap(),
            "{ctx}"
        );
    }
}

/// `Embedding`: sizes, and the note for a `padding_idx` the ONNX file does not record.
fn check_embedding(ctx: &str, model: &Model, n: &Node, a: &Value) {
    let Op::Embedding {
        input_dim,
        output_dim,
        ..
    } = &n.op
    else {
        panic!("{ctx}")
    };
    assert_eq!(
        *input_dim as u64,
        a["num_embeddings"].as_u64().unwrap(),
        "{ctx}"
    );
    assert_eq!(
        *output_dim as u64,
        a["embedding_dim"].as_u64().unwrap(),
        "{ctx}"
    );
    if let Some(p) = a["padding_idx"].as_u64() {
        let hint = format!("row {p} is all zeros");
        assert!(
            model
                .notes
                .iter()
                .any(|x| x.contains("padding_idx") && x.contains(&hint)),
            "{ctx}: padding_idx note"
        );
    }
}

/// Every other module: an activation whose variant and arguments match torch's.
fn check_activation(ctx: &str, n: &Node, ty: &str, a: &Value) {
    let act = |n: &Node| match &n.op {
        Op::Activation { function } => Some(function.clone()),
        _ => None,
    };
    use model_ir::Activation as A;
    let f = act(n).unwrap_or_else(|| panic!("{ctx}: not an activation"));
    let ok = match (ty, &f) {
        (
            "ReLU",
            A::Relu {
                negative_slope,
                max_value: None,
                threshold,
            },
        ) => *negative_slope == 0.0 && *threshold == 0.0,
        ("ReLU6", A::Relu6)
        | ("SELU", A::Selu)
        | ("Sigmoid", A::Sigmoid)
        | ("Hardswish", A::HardSwish) => true,
        ("Tanh", A::Tanh) | ("Softsign", A::Softsign) | ("SiLU", A::Silu) | ("Mish", A::Mish) => {
            true
        }
        ("LogSigmoid", A::LogSigmoid) | ("Tanhshrink", A::TanhShrink) => true,
        ("LeakyReLU", A::LeakyRelu { slope }) => close(*slope, num(&a["negative_slope"])),
        ("ELU", A::Elu { alpha }) => close(*alpha, num(&a["alpha"])),
        ("GELU", A::Gelu { approximate }) => *approximate == (a["approximate"] == "tanh"),
        ("Hardsigmoid", A::HardSigmoid(h)) => {
            (h.slope - 1.0 / 6.0).abs() < 1e-6 && close(h.offset, 0.5)
        }
        ("Softmax", A::Softmax { axis }) | ("LogSoftmax", A::LogSoftmax { axis }) => {
            Some(*axis) == a["dim"].as_i64()
        }
        ("Softplus", A::Softplus { beta, .. }) => close(*beta, num(&a["beta"])),
        _ => false,
    };
    assert!(ok, "{ctx}: {f:?} does not match torch's {ty} {a}");
}

fn check_keras(rel: &str, model: &Model, e: &Value) {
    assert_eq!(model.framework, model_ir::Framework::Keras, "{rel}");
    assert!(
        model.notes.iter().any(|n| n.contains("tf2onnx")),
        "{rel}: the Keras export is not noted"
    );
    for layer in e["layers"].as_array().unwrap() {
        let name = layer["name"].as_str().unwrap();
        let cfg = &layer["config"];
        match layer["class"].as_str().unwrap() {
            "Dense" => {
                let n = model
                    .node(name)
                    .unwrap_or_else(|| panic!("{rel}: no node `{name}`"));
                let Op::Dense {
                    units, activation, ..
                } = &n.op
                else {
                    panic!("{rel}: {}", render(n))
                };
                assert_eq!(
                    *units as u64,
                    cfg["units"].as_u64().unwrap(),
                    "{rel}: {name}"
                );
                assert_eq!(
                    activation.describe().split(' ').next(),
                    cfg["activation"].as_str(),
                    "{rel}: {name}"
                );
                assert_eq!(
                    n.params[0].layout,
                    ParamLayout::DenseInOut,
                    "{rel}: Keras Dense kernel is (in, out)"
                );
            }
            "Conv2D" => {
                let n = model
                    .node(name)
                    .unwrap_or_else(|| panic!("{rel}: no node `{name}`"));
                let Op::Conv { filters, .. } = &n.op else {
                    panic!("{rel}: {}", render(n))
                };
                assert_eq!(
                    *filters as u64,
                    cfg["filters"].as_u64().unwrap(),
                    "{rel}: {name}"
                );
            }
            "Flatten" => {
                let n = model
                    .node(name)
                    .unwrap_or_else(|| panic!("{rel}: no node `{name}`"));
                assert!(
                    matches!(
                        n.op,
                        Op::Flatten {
                            order: model_ir::DataLayout::ChannelsLast,
                            ..
                        }
                    ),
                    "{rel}: {}",
                    render(n)
                );
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// the zoo (models/zoo/torch/gen_torch.py, gen_keras_onnx.py)
// ---------------------------------------------------------------------------------------

const KEEP_OLD_09: &str = r#""momentum":{"form":"keep_old","value":0.9}"#;

#[test]
fn mlp_gemm_and_bias_free_matmul() {
    check(
        "zoo/torch/mlp.onnx",
        &[
            ("x", r#"input {"shape":[null,8],"dtype":"f32"}"#),
            ("fc1", r#"dense {"units":16,"use_bias":true"#),
            (
                "fc1",
                r#"fc1.weight [16, 8] {"layout":"dense_out_in"} kernel trainable"#,
            ),
            ("fc2", r#""use_bias":false"#),
            ("fc2", r#"fc2.weight [12, 16] {"layout":"dense_out_in"}"#),
            ("act1", r#""fn":"relu""#),
            ("Softmax", r#""fn":"softmax","axis":1"#),
        ],
        &[],
    );
}

#[test]
fn mlp_seq_matmul_add() {
    check(
        "zoo/torch/mlp_seq.onnx",
        &[
            ("proj", r#""use_bias":true"#),
            ("proj", r#"outputs=["/proj/Add_output_0"]"#),
            ("head", r#""use_bias":false"#),
            ("LogSoftmax", r#""axis":-1"#),
        ],
        &[],
    );
}

#[test]
fn cnn_batchnorm_pooling_flatten_view() {
    check(
        "zoo/torch/cnn.onnx",
        &[
            ("bn1", KEEP_OLD_09),
            ("bn1", r#""training_mode":true"#),
            ("bn1", r#""running_variance":"unbiased""#),
            (
                "bn1",
                "bn1.running_var [8] {\"layout\":\"vector\"} moving_variance]",
            ),
            ("bn2", r#""momentum":{"form":"keep_old","value":0.8}"#),
            ("bn2", r#""epsilon":0.001"#),
            ("avg_incl", r#""count_include_pad":true"#),
            ("avg_excl", r#""count_include_pad":false"#),
            ("pool_ceil", r#""ceil_mode":true"#),
            (
                "Reshape",
                r#"flatten {"start_axis":1,"order":"channels_first"}"#,
            ),
            ("drop", r#"dropout {"rate":0.3"#),
            ("conv2", r#""strides":[2,2]"#),
        ],
        &[
            "torch's momentum is 1 − m: bn1 0.9 = torch momentum 0.1",
            "num_batches_tracked",
        ],
    );
}

#[test]
fn cnn_eval_mode_folds_batchnorm() {
    check(
        "zoo/torch/cnn_eval.onnx",
        &[
            ("conv1", "onnx::Conv_"),
            (
                "conv1",
                r#""padding":{"rule":"explicit","begin":[1,1],"end":[1,1]}"#,
            ),
        ],
        &[
            "no BatchNormalization nodes: eval-mode export folds BatchNorm into the preceding Conv (conv1, conv2)",
            "training semantics are lost",
            "no Dropout nodes",
            "initializers renamed by the exporter",
        ],
    );
}

#[test]
fn cnn_dynamo_export() {
    check(
        "zoo/torch/cnn_dynamo.onnx",
        &[
            ("conv1", "conv1.weight [8, 3, 3, 3]"),
            ("node_Reshape_24", r#"flatten {"start_axis":1"#),
        ],
        &[
            "dynamo=True",
            "FuseBatchNormIntoConv",
            "hold the folded values",
            "no Dropout nodes",
        ],
    );
}

#[test]
fn mlp_dynamo_export() {
    check(
        "zoo/torch/mlp_dynamo.onnx",
        &[
            ("fc2", r#""use_bias":false"#),
            ("fc2", "dense_out_in"),
            ("act1", "relu"),
        ],
        &["dynamo=True"],
    );
}

#[test]
fn depthwise_grouped_and_transposed_convolutions() {
    check(
        "zoo/torch/convs.onnx",
        &[
            ("dw", r#"depthwise_conv {"rank":2,"depth_multiplier":2"#),
            ("dw", r#"{"layout":"depthwise_out_one_spatial","rank":2}"#),
            ("grouped", r#""groups":2"#),
            ("up", r#""output_padding":[1,1]"#),
            (
                "up",
                r#"{"layout":"conv_transpose_in_out_spatial","rank":2}"#,
            ),
            ("gap", r#"global_pool {"pool":"avg""#),
        ],
        &[],
    );
}

#[test]
fn conv1d_and_pool1d() {
    check(
        "zoo/torch/conv1d.onnx",
        &[
            ("conv", r#""rank":1"#),
            ("conv", r#"{"layout":"conv_out_in_spatial","rank":1}"#),
            ("conv2", r#""dilation":[2]"#),
            ("avg", r#""ceil_mode":true"#),
            ("Flatten", r#""order":"channels_first""#),
        ],
        &[],
    );
}

#[test]
fn layer_norm_opset17() {
    check(
        "zoo/torch/layernorm.onnx",
        &[
            ("ln1", r#""axes":[-1],"epsilon":0.00001"#),
            ("ln2", r#""axes":[-2,-1],"epsilon":0.001"#),
        ],
        &[],
    );
}

#[test]
fn layer_norm_decomposed_at_opset11() {
    check(
        "zoo/torch/layernorm_op11.onnx",
        &[
            ("ln", r#"layer_norm {"axes":[-1],"epsilon":0.00001"#),
            ("ln", "ln.weight [8]"),
        ],
        &["opset 11 < 13: Softmax"],
    );
}

#[test]
fn group_norm_pattern_and_spatial_mean() {
    check(
        "zoo/torch/groupnorm.onnx",
        &[
            ("gn", r#"group_norm {"groups":2"#),
            ("gn", "gn.weight [8]"),
            (
                "ReduceMean",
                r#"global_pool {"pool":"avg","rank":2,"layout":"channels_first","keepdims":false}"#,
            ),
        ],
        &[],
    );
}

#[test]
fn every_activation() {
    check(
        "zoo/torch/acts.onnx",
        &[
            ("gelu", r#""fn":"gelu","approximate":false"#),
            ("gelu_tanh", r#""fn":"gelu","approximate":true"#),
            ("hardsigmoid", r#""slope":0.16666667,"offset":0.5"#),
            ("relu6", r#""fn":"relu6""#),
            ("silu", r#""fn":"silu""#),
            ("mish", r#""fn":"mish""#),
            ("softsign", r#""fn":"softsign""#),
        ],
        &["Softplus: ONNX has no threshold"],
    );
}

#[test]
fn padding_and_upsampling() {
    check(
        "zoo/torch/pad_up.onnx",
        &[
            ("zpad", r#""begin":[0,1],"end":[1,2]"#),
            ("Pad", r#""mode":{"mode":"reflect"}"#),
            ("rpad", r#""mode":{"mode":"edge"}"#),
            ("up_nearest", r#""size":[2,2],"interpolation":"nearest""#),
            ("up_bilinear", r#""interpolation":"bilinear""#),
        ],
        &[],
    );
}

#[test]
fn embedding_and_mean_over_time() {
    check(
        "zoo/torch/embed.onnx",
        &[
            ("emb", r#"{"layout":"embedding"} embeddings trainable"#),
            ("ReduceMean", r#"reduce {"reduce":"mean","axes":[1]"#),
        ],
        &["padding_idx is unknown"],
    );
}

#[test]
fn lstm_batch_first_traced_to_state_dict() {
    check(
        "zoo/torch/lstm.onnx",
        &[
            ("lstm", r#"inputs=["x"]"#),
            ("lstm", r#""batch_first":true"#),
            (
                "lstm",
                r#"lstm.weight_ih_l0 [32, 6] {"layout":"rnn_gates_in","gate_order":"ifco"} input_kernel"#,
            ),
            (
                "lstm",
                r#"lstm.bias_hh_l0 [32] {"layout":"rnn_gate_vector","gate_order":"ifco"} recurrent_bias"#,
            ),
            (
                "Gather",
                r#"select {"axis":1,"index":-1} inputs=["/lstm/LSTM_output_0"]"#,
            ),
        ],
        &[],
    );
}

#[test]
fn lstm_eval_weights_converted_from_onnx_layout() {
    check(
        "zoo/torch/lstm_eval.onnx",
        &[(
            "lstm",
            r#"lstm.weight_ih_l0 [32, 6] {"layout":"rnn_gates_in","gate_order":"ifco"}"#,
        )],
        &["names were lost", "gate order i,o,f,c"],
    );
}

#[test]
fn gru_bidirectional_h_n() {
    check(
        "zoo/torch/gru_bi.onnx",
        &[
            ("gru", r#""gru_reset":"after_matmul""#),
            ("gru", r#""gate_order":"rzn""#),
            (
                "gru",
                r#""direction":{"direction":"bidirectional","merge":"concat"}"#,
            ),
            ("gru", r#""batch_first":false"#),
            (
                "gru",
                r#"gru.weight_hh_l0_reverse [24, 8] {"layout":"rnn_gates_in","gate_order":"rzn"}"#,
            ),
            (
                "Gather",
                r#"select {"axis":0,"index":0} inputs=["/gru/GRU_output_1"]"#,
            ),
            ("Concat", r#""op":"concatenate","axis":1"#),
        ],
        &[],
    );
}

#[test]
fn lstm_two_layers() {
    check(
        "zoo/torch/lstm2.onnx",
        &[
            ("lstm.l0", r#"inputs=["x"]"#),
            ("lstm.l1", r#"inputs=["/lstm/LSTM_output_0"]"#),
            ("lstm.l1", "lstm.weight_ih_l1 [32, 8]"),
            ("Gather", r#"inputs=["/lstm/LSTM_1_output_0"]"#),
        ],
        &[],
    );
}

#[test]
fn lstm_bidirectional_batch_first_without_bias() {
    check(
        "zoo/torch/lstm_bi.onnx",
        &[
            ("lstm", r#""bias":"none""#),
            ("lstm", r#""batch_first":true"#),
            (
                "Gather",
                r#"select {"axis":1,"index":-1} inputs=["/lstm/LSTM_output_0"]"#,
            ),
            (
                "Gather_1",
                r#"select {"axis":0,"index":-1} inputs=["/lstm/LSTM_output_1"]"#,
            ),
        ],
        &[],
    );
}

#[test]
fn residual_merges_and_constants() {
    check(
        "zoo/torch/residual.onnx",
        &[
            (
                "Add",
                r#"merge {"op":{"op":"add"}} inputs=["/fc2/Gemm_output_0", "x"]"#,
            ),
            ("Sub", r#""op":"subtract""#),
            ("Mul", r#""op":"multiply""#),
            (
                "Mul_1",
                r#"constant_binary {"op":"mul","constant_first":false}"#,
            ),
            ("Concat", r#""axis":1"#),
        ],
        &[],
    );
}

#[test]
fn keras_model_export() {
    check(
        "zoo/torch/keras_export.onnx",
        &[
            ("conv.transpose", r#"permute {"perm":[0,3,1,2]}"#),
            ("conv", r#""activation":{"fn":"relu""#),
            ("flatten", r#""order":"channels_last""#),
            ("fc1", r#"{"layout":"dense_in_out"}"#),
            ("fc1", r#""use_bias":true"#),
            ("fc2", r#""use_bias":false"#),
            ("conv", r#""use_bias":true"#),
        ],
        &["tf2onnx", "suffix `_1`"],
    );
}

/// Every `.onnx` in the zoo has a test above.
#[test]
fn zoo_is_covered() {
    let tested = [
        "acts",
        "cnn",
        "cnn_dynamo",
        "cnn_eval",
        "conv1d",
        "convs",
        "embed",
        "groupnorm",
        "gru_bi",
        "keras_export",
        "layernorm",
        "layernorm_op11",
        "lstm",
        "lstm2",
        "lstm_bi",
        "lstm_eval",
        "mlp",
        "mlp_dynamo",
        "mlp_seq",
        "pad_up",
        "residual",
    ];
    let mut found: Vec<String> = std::fs::read_dir(models_dir().join("zoo/torch"))
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".onnx")
                .map(str::to_string)
        })
        .collect();
    found.sort();
    assert_eq!(found, tested, "zoo files and tests differ");
}

/// The bundles the cases ship (`models/<case>/torch/model.onnx`, `model.eval.onnx`), when present.
#[test]
fn bundle_exports() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(models_dir())
        .unwrap()
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.join("torch").is_dir())
        .collect();
    cases.sort();
    for case in cases {
        let name = case
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        for file in ["model.onnx", "model.eval.onnx"] {
            if case.join("torch").join(file).exists() {
                check(&format!("{name}/torch/{file}"), &[], &[]);
            }
        }
    }
}
