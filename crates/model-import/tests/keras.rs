//! Keras `.keras` import: every zoo model against what Keras itself reported
//! (`<name>.expect.json`: layers, classes, variable shapes, dtypes, trainable flags and
//! values), the committed bundle fixtures, and the conventions read from the config.

mod keras_util;

use std::collections::BTreeMap;
use std::path::Path;

use keras_util::{bundle_fixtures, close, edit_config, import, layer_config, zoo, zoo_files};
use model_import::load_keras;
use model_ir::{
    Activation, BidiMerge, DType, DataLayout, GruReset, HardSigmoid, MergeOp, Model, MomentumForm,
    Op, Padding, ParamLayout, PoolKind, RnnBias, RnnDirection, VarianceEstimate,
};
use serde_json::Value;

/// The IR op kind a Keras class becomes.
fn kind_of(class: &str) -> &'static str {
    match class {
        "InputLayer" => "input",
        "Dense" => "dense",
        "Conv1D" | "Conv2D" | "Conv3D" => "conv",
        "DepthwiseConv1D" | "DepthwiseConv2D" => "depthwise_conv",
        "SeparableConv1D" | "SeparableConv2D" => "separable_conv",
        c if c.ends_with("Transpose") => "conv_transpose",
        "BatchNormalization" => "batch_norm",
        "LayerNormalization" => "layer_norm",
        "GroupNormalization" => "group_norm",
        "Activation" | "ReLU" | "LeakyReLU" | "ELU" | "Softmax" => "activation",
        c if c.contains("Dropout") => "dropout",
        "Flatten" => "flatten",
        "Reshape" => "reshape",
        "Permute" => "permute",
        c if c.starts_with("Global") => "global_pool",
        c if c.contains("Pooling") => "pool",
        c if c.starts_with("ZeroPadding") => "pad",
        c if c.starts_with("UpSampling") => "up_sampling",
        "Embedding" => "embedding",
        "SimpleRNN" | "LSTM" | "GRU" | "Bidirectional" => "rnn",
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" | "Concatenate" => {
            "merge"
        }
        "Rescaling" => "rescaling",
        "Normalization" => "normalization",
        other => panic!("no expected kind for {other}"),
    }
}

fn dtype_of(name: &str) -> DType {
    match name {
        "float32" => DType::F32,
        "float64" => DType::F64,
        "float16" => DType::F16,
        "bfloat16" => DType::BF16,
        "int64" => DType::I64,
        "int32" => DType::I32,
        other => panic!("dtype {other}"),
    }
}

fn usize_list(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|x| x.as_u64().expect("int") as usize)
        .collect()
}

/// Imports `path` and compares it with `expect` (the generator's `<name>.expect.json`).
#[track_caller]
fn check(path: &Path, expect: &Value) {
    let m = load_keras(path).unwrap_or_else(|e| panic!("{e}"));
    let file = path.display();
    m.validate().unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(
        m.name,
        expect["name"].as_str().unwrap(),
        "{file}: model name"
    );
    let version = expect["keras_version"].as_str().unwrap();
    assert_eq!(
        m.producer.as_deref(),
        Some(format!("keras {version}").as_str())
    );
    let inputs: Vec<&str> = m.inputs.iter().map(|v| v.name.as_str()).collect();
    let want: Vec<&str> = expect["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(inputs, want, "{file}: inputs");
    assert_eq!(
        m.outputs.len() as u64,
        expect["outputs"].as_u64().unwrap(),
        "{file}: outputs"
    );

    // Node names: nested layers whose name is used twice get their models' names as prefix.
    let layers = expect["layers"].as_array().unwrap();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in layers {
        let nested_input =
            l["class_name"] == "InputLayer" && !l["scope"].as_array().unwrap().is_empty();
        if !nested_input {
            *counts.entry(l["name"].as_str().unwrap()).or_default() += 1;
        }
    }
    let mut params_seen = 0;
    let mut config_params = 0;
    for l in layers {
        let class = l["class_name"].as_str().unwrap();
        let name = l["name"].as_str().unwrap();
        let scope: Vec<&str> = l["scope"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        if matches!(class, "Sequential" | "Functional")
            || (class == "InputLayer" && !scope.is_empty())
        {
            continue;
        }
        let node_name = if !scope.is_empty() && counts[name] > 1 {
            format!("{}/{name}", scope.join("/"))
        } else {
            name.to_string()
        };
        let node = m
            .node(&node_name)
            .unwrap_or_else(|| panic!("{file}: no node `{node_name}`"));
        assert_eq!(
            node.op.kind(),
            kind_of(class),
            "{file}: kind of `{node_name}`"
        );
        assert_eq!(node.origin.class, class, "{file}: class of `{node_name}`");
        let weights = l["weights"].as_array().unwrap();
        let mut params: Vec<_> = node.params.iter().collect();
        if class == "Normalization" && weights.is_empty() {
            // mean/variance given to the constructor: parameters taken from config.json.
            let names: Vec<&str> = params.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(
                names,
                [format!("{node_name}/mean"), format!("{node_name}/variance")]
            );
            assert!(params.iter().all(|p| !p.trainable));
            config_params += params.iter().map(|p| p.tensor.len()).sum::<usize>();
            params.clear();
        }
        assert_eq!(
            params.len(),
            weights.len(),
            "{file}: parameter count of `{node_name}`"
        );
        for (p, w) in params.iter().zip(weights) {
            let what = format!(
                "{file}: `{}` (Keras `{}`)",
                p.name,
                w["path"].as_str().unwrap()
            );
            assert_eq!(
                p.tensor.shape(),
                usize_list(&w["shape"]).as_slice(),
                "{what}: shape"
            );
            assert_eq!(
                p.tensor.dtype(),
                dtype_of(w["dtype"].as_str().unwrap()),
                "{what}: dtype"
            );
            assert_eq!(
                p.trainable,
                w["trainable"].as_bool().unwrap(),
                "{what}: trainable"
            );
            let values = p.tensor.to_f64();
            for (got, want) in values.iter().zip(w["head"].as_array().unwrap()) {
                let want = want.as_f64().unwrap();
                assert!(
                    close(*got, want, 1e-12, 1e-12),
                    "{what}: value {got} != {want}"
                );
            }
            let sum: f64 = values.iter().sum();
            let want = w["sum"].as_f64().unwrap();
            assert!(close(sum, want, 1e-9, 1e-6), "{what}: sum {sum} != {want}");
            assert!(
                p.name.starts_with(&format!("{node_name}/")),
                "{what}: name prefix"
            );
            params_seen += 1;
        }
    }
    let total: usize = m.params().map(|(_, p)| p.tensor.len()).sum();
    assert_eq!(
        params_seen as u64,
        expect["weight_count"].as_u64().unwrap(),
        "{file}: weight count"
    );
    assert_eq!(
        (total - config_params) as u64,
        expect["scalar_count"].as_u64().unwrap(),
        "{file}: scalar count"
    );
    assert_eq!(
        m.trainable_count() as u64,
        expect["trainable_scalar_count"].as_u64().unwrap(),
        "{file}: trainable scalar count"
    );
    let training = m.training.as_ref().expect("training config");
    assert_eq!(training.framework_version.as_deref(), Some(version));
    assert_eq!(
        training.optimizer.is_some(),
        expect["compiled"].as_bool().unwrap(),
        "{file}: optimizer"
    );
    assert!(
        !m.notes
            .iter()
            .any(|n| n.contains("no layer in config.json claims")),
        "{file}: unclaimed weights: {:?}",
        m.notes
    );
}

#[test]
fn zoo_models_match_what_keras_reported() {
    let files = zoo_files();
    assert!(files.len() >= 8, "zoo files: {files:?}");
    for path in files {
        let expect_path = path.with_extension("expect.json");
        let expect: Value = serde_json::from_slice(&std::fs::read(&expect_path).unwrap()).unwrap();
        check(&path, &expect);
    }
}

#[test]
fn zoo_inputs_match_the_recorded_io() {
    for path in zoo_files() {
        let m = load_keras(&path).unwrap();
        let io = std::fs::read(path.with_extension("io.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&io).unwrap();
        for (i, input) in m.inputs.iter().enumerate() {
            let key = if m.inputs.len() == 1 {
                "x".to_string()
            } else {
                format!("x.{i}")
            };
            let x = st
                .tensor(&key)
                .unwrap_or_else(|e| panic!("{}: {key}: {e}", path.display()));
            assert_eq!(
                x.shape().len(),
                input.shape.len(),
                "{}: rank of {}",
                path.display(),
                input.name
            );
            for (d, want) in x.shape().iter().zip(&input.shape) {
                if let Some(w) = want {
                    assert_eq!(d, w, "{}: shape of {}", path.display(), input.name);
                }
            }
        }
    }
}

#[test]
fn committed_bundle_fixtures_import() {
    for path in bundle_fixtures() {
        let m = load_keras(&path).unwrap_or_else(|e| panic!("{e}"));
        m.validate().unwrap();
        assert!(m.params().count() > 0, "{}: no parameters", path.display());
        assert!(
            m.training.as_ref().is_some_and(|t| t.optimizer.is_some()),
            "{}: compiled",
            path.display()
        );
        assert!(
            !m.notes
                .iter()
                .any(|n| n.contains("no layer in config.json claims")),
            "{}: {:?}",
            path.display(),
            m.notes
        );
    }
}

fn load(name: &str) -> Model {
    import(&format!("ok-{name}"), &zoo(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn op<'a>(m: &'a Model, node: &str) -> &'a Op {
    &m.node(node).unwrap_or_else(|| panic!("no node {node}")).op
}

#[test]
fn batch_norm_momentum_is_keras_keep_old_with_biased_variance() {
    let m = load("conv_tf_same");
    let Op::BatchNorm {
        axis,
        epsilon,
        momentum,
        running_variance,
        center,
        scale,
        trainable,
        ..
    } = op(&m, "batch_normalization")
    else {
        panic!("not a batch norm");
    };
    assert_eq!(*axis, -1);
    assert!(close(*epsilon, 1e-3, 1e-12, 0.0));
    assert!(matches!(momentum, MomentumForm::KeepOld(v) if close(*v, 0.9, 1e-12, 0.0)));
    assert_eq!(*running_variance, VarianceEstimate::Biased);
    assert!(*center && *scale && *trainable);
    let bn = m.node("batch_normalization").unwrap();
    let flags: Vec<bool> = bn.params.iter().map(|p| p.trainable).collect();
    assert_eq!(flags, [true, true, false, false]);

    let m = load("conv_channels_first");
    let Op::BatchNorm { axis, center, .. } = op(&m, "bn_cf") else {
        panic!("not a batch norm");
    };
    assert_eq!((*axis, *center), (1, false));
}

#[test]
fn same_padding_is_tensorflow_same_upper() {
    let m = load("conv_tf_same");
    let Op::Conv {
        padding,
        strides,
        layout,
        activation,
        ..
    } = op(&m, "stem")
    else {
        panic!("not a conv");
    };
    assert_eq!(*padding, Padding::SameUpper);
    assert_eq!(strides, &[2, 2]);
    assert_eq!(*layout, DataLayout::ChannelsLast);
    assert_eq!(*activation, Activation::RELU);
    let Op::Pool {
        pool,
        padding,
        count_include_pad,
        ..
    } = op(&m, "average_pooling2d")
    else {
        panic!("not a pool");
    };
    assert_eq!(
        (*pool, padding, *count_include_pad),
        (PoolKind::Avg, &Padding::SameUpper, false)
    );
    let Op::Conv {
        dilation, use_bias, ..
    } = op(&m, "dilated")
    else {
        panic!("not a conv");
    };
    assert_eq!((dilation.as_slice(), *use_bias), (&[2, 2][..], false));
    let m = load("seq_misc");
    let Op::Conv {
        padding, dilation, ..
    } = op(&m, "conv1d")
    else {
        panic!("not a conv");
    };
    assert_eq!((padding, dilation.as_slice()), (&Padding::Causal, &[2][..]));
}

#[test]
fn leaky_relu_slopes_differ_between_layer_and_function() {
    let m = load("seq_misc");
    assert_eq!(
        op(&m, "leaky_re_lu"),
        &Op::Activation {
            function: Activation::LeakyRelu { slope: 0.25 }
        }
    );
    assert_eq!(
        op(&m, "elu"),
        &Op::Activation {
            function: Activation::Elu { alpha: 0.5 }
        }
    );
    let m = load("activations");
    assert_eq!(
        op(&m, "act_leaky_relu"),
        &Op::Activation {
            function: Activation::LeakyRelu { slope: 0.2 }
        }
    );
    // The layer's own default is 0.3 when the config omits it.
    let bytes = edit_config(&zoo("seq_misc"), |v| {
        let cfg = layer_config(v, "leaky_re_lu")["config"]
            .as_object_mut()
            .unwrap();
        cfg.remove("negative_slope");
    });
    let m = import("leaky-default", &bytes).unwrap();
    assert_eq!(
        op(&m, "leaky_re_lu"),
        &Op::Activation {
            function: Activation::LeakyRelu { slope: 0.3 }
        }
    );
    assert!(
        m.notes
            .iter()
            .any(|n| n.contains("negative_slope") && n.contains("default"))
    );
}

#[test]
fn activation_defaults_follow_keras3() {
    let m = load("activations");
    let f = |n: &str| match op(&m, n) {
        Op::Activation { function } => function.clone(),
        other => panic!("{n}: {other:?}"),
    };
    assert_eq!(f("act_gelu"), Activation::Gelu { approximate: false });
    assert_eq!(
        f("act_hard_sigmoid"),
        Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH)
    );
    assert_eq!(f("act_hard_swish"), Activation::HardSwish);
    assert_eq!(f("act_swish"), Activation::Silu);
    assert_eq!(f("act_softmax"), Activation::Softmax { axis: -1 });
    assert_eq!(
        f("relu_thresh"),
        Activation::Relu {
            negative_slope: 0.0,
            max_value: Some(2.0),
            threshold: 0.5
        }
    );
    assert_eq!(
        op(&m, "norm_cfg"),
        &Op::Normalization {
            axes: vec![-1],
            invert: false,
            epsilon: 1e-7
        }
    );
    let mean = m.param("norm_cfg/mean").unwrap();
    assert_eq!(mean.tensor.shape(), &[5]);
    assert!(
        mean.tensor
            .to_f64()
            .iter()
            .all(|v| close(*v, 0.5, 1e-12, 0.0))
    );
    let Op::Dense { activation, .. } = op(&m, "dense_hs") else {
        panic!("not dense");
    };
    assert_eq!(
        *activation,
        Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH)
    );
    let m = load("conv_tf_same");
    assert_eq!(
        op(&m, "re_lu"),
        &Op::Activation {
            function: Activation::Relu {
                negative_slope: 0.1,
                max_value: Some(6.0),
                threshold: 0.0
            }
        }
    );
}

#[test]
fn flatten_order_is_channels_last_after_a_transpose() {
    let m = load("conv_channels_first");
    assert_eq!(
        op(&m, "flatten_cf"),
        &Op::Flatten {
            start_axis: 1,
            order: DataLayout::ChannelsLast
        }
    );
    let flatten = m.node("flatten_cf").unwrap();
    let permute = m.node("flatten_cf/to_channels_last").unwrap();
    assert_eq!(
        permute.op,
        Op::Permute {
            perm: vec![0, 2, 3, 1]
        }
    );
    assert_eq!(flatten.inputs, permute.outputs);
    let Op::Conv { layout, .. } = op(&m, "conv_cf") else {
        panic!("not a conv");
    };
    assert_eq!(*layout, DataLayout::ChannelsFirst);
    // channels_last Flatten needs no transpose.
    let m = load("conv_tf_same");
    assert!(m.node("flatten/to_channels_last").is_none());
    assert_eq!(
        op(&m, "flatten"),
        &Op::Flatten {
            start_axis: 1,
            order: DataLayout::ChannelsLast
        }
    );
}

#[test]
fn gru_reset_after_decides_bias_and_reset_placement() {
    let m = load("rnn_stack");
    let Op::Rnn {
        gru_reset,
        bias,
        go_backwards,
        recurrent_activation,
        return_sequences,
        ..
    } = op(&m, "gru")
    else {
        panic!("not an rnn");
    };
    assert_eq!(
        (*gru_reset, *bias, *go_backwards),
        (Some(GruReset::BeforeMatmul), RnnBias::Single, true)
    );
    assert_eq!(
        recurrent_activation,
        &Some(Activation::HardSigmoid(HardSigmoid::KERAS3_TORCH))
    );
    assert!(*return_sequences);
    let Op::Rnn {
        gru_reset,
        bias,
        recurrent_dropout,
        ..
    } = op(&m, "gru_1")
    else {
        panic!("not an rnn");
    };
    assert_eq!(
        (*gru_reset, *bias),
        (
            Some(GruReset::AfterMatmul),
            RnnBias::KerasInputRecurrentRows
        )
    );
    assert!(close(*recurrent_dropout, 0.1, 1e-12, 0.0));
    let b = m.param("gru_1/bias").unwrap();
    assert!(matches!(b.layout, ParamLayout::GruBiasRows { .. }));
    assert_eq!(b.tensor.shape(), &[2, 9]);
    let Op::Rnn {
        direction,
        unit_forget_bias,
        dropout,
        ..
    } = op(&m, "bidirectional")
    else {
        panic!("not an rnn");
    };
    assert_eq!(*direction, RnnDirection::Bidirectional(BidiMerge::Sum));
    assert!(!*unit_forget_bias);
    assert!(close(*dropout, 0.1, 1e-12, 0.0));
    assert!(m.param("bidirectional/forward_enc/kernel").is_some());
    assert!(
        m.param("bidirectional/backward_enc/recurrent_kernel")
            .is_some()
    );
    let Op::Embedding { mask_zero, .. } = op(&m, "embedding") else {
        panic!("not an embedding");
    };
    assert!(*mask_zero);
}

#[test]
fn nested_models_are_inlined_with_unique_names() {
    let m = load("functional_nested");
    // `proj` exists both in inner_seq and at the top level.
    assert!(m.node("inner_seq/proj").is_some() && m.node("proj").is_some());
    assert!(m.param("inner_seq/proj/kernel").is_some() && m.param("proj/kernel").is_some());
    // The frozen nested Functional makes its variables non-trainable.
    assert!(m.param("inner_dense/kernel").is_some_and(|p| !p.trainable));
    let add = m.node("add").unwrap();
    assert_eq!(add.inputs, ["inner_seq/proj:0:0", "inner_ln:0:0"]);
    assert_eq!(
        op(&m, "cat"),
        &Op::Merge {
            op: MergeOp::Concatenate(-1)
        }
    );
    assert_eq!(m.outputs, ["head_cls:0:0", "proj:0:0"]);
    assert!(
        m.notes
            .iter()
            .any(|n| n.contains("layers/sequential/layers/dense_1"))
    );
    assert!(
        m.notes
            .iter()
            .any(|n| n.contains("kernel_constraint MaxNorm")),
        "{:?}",
        m.notes
    );
    // The config's initializers and constraints, typed with their arguments.
    let o = &m.initializers["inner_dense/kernel"];
    assert_eq!(o.kind, model_ir::InitKind::Orthogonal { gain: 1.0 });
    assert_eq!(o.seed, Some(3));
    assert_eq!(m.initializers["proj/bias"].kind, model_ir::InitKind::Zeros);
    assert_eq!(
        m.initializers["proj/kernel"].kind,
        model_ir::InitKind::VarianceScaling {
            scale: 1.0,
            mode: model_ir::FanMode::FanAvg,
            distribution: model_ir::ScalingDist::Uniform
        }
    );
    let t = m.training.as_ref().unwrap();
    assert_eq!(
        t.constraints.get("head_cls/kernel"),
        Some(&model_ir::Constraint::MaxNorm {
            max_value: 2.0,
            axes: vec![0]
        })
    );
    assert_eq!(t.constraints.len(), 1);
}

#[test]
fn compile_config_keeps_optimizer_and_loss_objects() {
    let m = load("conv_tf_same");
    let t = m.training.unwrap();
    let opt = t.optimizer.unwrap();
    assert_eq!(opt.class_name, "SGD");
    assert_eq!(
        opt.config["learning_rate"]["class_name"],
        "ExponentialDecay"
    );
    assert_eq!(opt.config["clipnorm"].as_f64(), Some(1.0));
    assert_eq!(opt.config["nesterov"], true);
    let loss = t.loss.unwrap();
    assert_eq!(loss.class_name, "CategoricalCrossentropy");
    assert_eq!(loss.config["from_logits"], true);
    assert!(close(
        loss.config["label_smoothing"].as_f64().unwrap(),
        0.1,
        1e-12,
        0.0
    ));

    let m = load("functional_nested");
    let loss = m.training.unwrap().loss.unwrap();
    assert_eq!(loss.class_name, "per_output");
    assert_eq!(loss.config["losses"][1], "mse");

    let m = load("activations");
    let t = m.training.unwrap();
    assert!(t.optimizer.is_none() && t.loss.is_none());
    assert!(m.notes.iter().any(|n| n.contains("without compile")));
}

#[test]
fn bf16_and_f16_weights_decode_in_both_hdf5_layouts() {
    for name in ["mixed_dtypes", "mixed_dtypes_h5latest"] {
        let m = load(name);
        assert_eq!(m.param("bf16/kernel").unwrap().tensor.dtype(), DType::BF16);
        assert_eq!(m.param("f16/kernel").unwrap().tensor.dtype(), DType::F16);
        assert_eq!(m.param("f64/bias").unwrap().tensor.dtype(), DType::F64);
    }
}

#[test]
fn deflated_archives_read_like_stored_ones() {
    let bytes = zoo("rnn_stack");
    let deflated = keras_util::write_zip(&keras_util::read_zip(&bytes), true);
    assert!(deflated.len() < bytes.len());
    let a = import("stored", &bytes).unwrap();
    let b = import("deflated", &deflated).unwrap();
    assert_eq!(a.nodes.len(), b.nodes.len());
    for ((_, p), (_, q)) in a.params().zip(b.params()) {
        assert_eq!(p.name, q.name);
        assert_eq!(p.tensor, q.tensor);
    }
}

/// The model's `training.regularizers` are exactly `expected` (parameter, l1, l2).
#[track_caller]
fn check_regularizers(m: &Model, expected: &[(&str, f64, f64)]) {
    let got: Vec<(String, f64, f64)> = m
        .training
        .as_ref()
        .expect("training config")
        .regularizers
        .iter()
        .map(|(k, r)| (k.clone(), r.l1, r.l2))
        .collect();
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for ((name, l1, l2), (want, w1, w2)) in got.iter().zip(expected) {
        assert_eq!(name, want, "{got:?}");
        assert!(
            close(*l1, *w1, 1e-15, 0.0) && close(*l2, *w2, 1e-15, 0.0),
            "{name}: ({l1}, {l2}) vs ({w1}, {w2})"
        );
    }
}

#[test]
fn weight_regularizers_land_in_the_training_config() {
    // functional: L2(1e-3) on branch_a's kernel; Keras's own loss.regularization at the
    // initial weights is 1e-3·Σw².
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/functional/keras");
    let m = load_keras(&dir.join("model.keras")).unwrap();
    check_regularizers(&m, &[("branch_a/kernel", 0.0, 1e-3)]);
    let reference = model_import::load_safetensors(&dir.join("reference.safetensors")).unwrap();
    let recorded = reference.tensors["loss.regularization"].to_f64()[[]];
    let w = m.param("branch_a/kernel").unwrap().tensor.to_f64();
    let penalty = 1e-3 * w.iter().map(|x| x * x).sum::<f64>();
    assert!(
        close(penalty, recorded, 1e-6, 0.0),
        "{penalty} vs {recorded}"
    );
    assert!(
        m.notes.iter().any(|n| n
            == r#"layer `branch_a` (Dense): kernel_regularizer L2({"l2":0.001}) adds a penalty to the loss"#),
        "{:?}",
        m.notes
    );
    // The zoo: a Conv2D kernel, a GRU recurrent kernel (L1 as Keras serialized it from a
    // float32 tensor), a Conv1D kernel with L1L2.
    check_regularizers(&load("conv_tf_same"), &[("stem/kernel", 0.0, 1e-4)]);
    check_regularizers(
        &load("rnn_stack"),
        &[("gru_1/recurrent_kernel", 0.0010000000474974513, 0.0)],
    );
    check_regularizers(&load("seq_misc"), &[("conv1d_1/kernel", 1e-4, 1e-3)]);
    check_regularizers(&load("activations"), &[]);
}

#[test]
fn regularizer_forms_and_where_they_apply() {
    let reg = |class: &str, cfg: Value| serde_json::json!({"module": "keras.regularizers", "class_name": class, "config": cfg, "registered_name": null});
    let bytes = edit_config(&zoo("rnn_stack"), |v| {
        let emb = layer_config(v, "embedding")["config"]
            .as_object_mut()
            .unwrap();
        emb.insert("embeddings_regularizer".into(), "l2".into());
        emb.insert(
            "activity_regularizer".into(),
            reg("L1", serde_json::json!({"l1": 0.5})),
        );
        // Keras writes both directions' configs; the backward one gets its own.
        let bidi = &mut layer_config(v, "bidirectional")["config"];
        let fwd = bidi["layer"]["config"].as_object_mut().unwrap();
        fwd.insert(
            "kernel_regularizer".into(),
            reg("L1L2", serde_json::json!({"l1": 0.25})),
        );
        let bwd = bidi["backward_layer"]["config"].as_object_mut().unwrap();
        bwd.insert(
            "kernel_regularizer".into(),
            reg("L1L2", serde_json::json!({"l2": 0.5})),
        );
        let dense = layer_config(v, "dense")["config"].as_object_mut().unwrap();
        dense.insert("trainable".into(), false.into());
        dense.insert("kernel_regularizer".into(), "l1".into());
    });
    let m = import("regularizers", &bytes).unwrap();
    // A string takes the constructor default; both directions of the Bidirectional LSTM;
    // nothing for the frozen Dense.
    check_regularizers(
        &m,
        &[
            ("bidirectional/backward_enc/kernel", 0.0, 0.5),
            ("bidirectional/forward_enc/kernel", 0.25, 0.0),
            ("embedding/embeddings", 0.0, 0.01),
            ("gru_1/recurrent_kernel", 0.0010000000474974513, 0.0),
        ],
    );
    for note in [
        r#"layer `embedding` (Embedding): activity_regularizer L1({"l1":0.5}) adds a penalty on the layer's output to the loss; the engine does not model it"#,
        r#"layer `dense` (Dense): kernel_regularizer "l1": `dense/kernel` is not trainable, so Keras adds no penalty"#,
        r#"layer `forward_enc` (LSTM): kernel_regularizer L1L2({"l1":0.25}) adds a penalty to the loss"#,
    ] {
        assert_eq!(
            m.notes.iter().filter(|n| *n == note).count(),
            1,
            "{note}\n{:#?}",
            m.notes
        );
    }

    // Which variable each argument penalizes; a null factor takes the default.
    let bytes = edit_config(&zoo("conv_tf_same"), |v| {
        let bn = layer_config(v, "batch_normalization")["config"]
            .as_object_mut()
            .unwrap();
        bn.insert("gamma_regularizer".into(), "l2".into());
        bn.insert("beta_regularizer".into(), "l1".into());
        let dw = layer_config(v, "depthwise_conv2d")["config"]
            .as_object_mut()
            .unwrap();
        dw.insert(
            "depthwise_regularizer".into(),
            reg("L2", serde_json::json!({"l2": 0.5})),
        );
        let sep = layer_config(v, "separable_conv2d")["config"]
            .as_object_mut()
            .unwrap();
        sep.insert(
            "depthwise_regularizer".into(),
            reg("L1", serde_json::json!({"l1": 0.125})),
        );
        sep.insert(
            "pointwise_regularizer".into(),
            reg("L2", serde_json::json!({"l2": null})),
        );
        sep.insert("bias_regularizer".into(), "l2".into());
    });
    let m = import("regularizer-variables", &bytes).unwrap();
    check_regularizers(
        &m,
        &[
            ("batch_normalization/beta", 0.01, 0.0),
            ("batch_normalization/gamma", 0.0, 0.01),
            ("depthwise_conv2d/kernel", 0.0, 0.5),
            ("separable_conv2d/depthwise_kernel", 0.125, 0.0),
            ("separable_conv2d/pointwise_kernel", 0.0, 0.01),
            ("stem/kernel", 0.0, 1e-4),
        ],
    );
    // use_bias=False: Keras creates no bias, so the argument penalizes nothing.
    let note = r#"layer `separable_conv2d` (SeparableConv2D): bias_regularizer "l2": the layer has no `bias` variable; Keras ignores it"#;
    assert!(m.notes.iter().any(|n| n == note), "{:#?}", m.notes);

    let bytes = edit_config(&zoo("rnn_stack"), |v| {
        let dense = layer_config(v, "dense")["config"].as_object_mut().unwrap();
        dense.insert(
            "kernel_regularizer".into(),
            reg(
                "OrthogonalRegularizer",
                serde_json::json!({"factor": 0.01, "mode": "rows"}),
            ),
        );
    });
    assert_eq!(
        import("orthogonal", &bytes)
            .map(|_| ())
            .map_err(|e| e.kind.to_string()),
        Err("unsupported: layer `dense` (Dense): kernel_regularizer OrthogonalRegularizer (only L1, L2 and L1L2 regularizers are supported)".to_string())
    );
}
