//! The Keras side of the attribute gate: every layer class lists the config keys its
//! converter computes (`"key"`: every value is read and either computed or refused by the
//! converter) or accepts at one value only (`"key=<JSON>"`: another value is refused here).
//! Any other key is refused, naming the layer, the key and the value, before the converter
//! runs: a key this importer does not know may change the numbers.
//!
//! Every class also accepts the keys Keras writes for every layer (`name`, `trainable`,
//! `dtype`; the dtype policy is noted by `training_only_notes`), the weight
//! `*_initializer` / `*_regularizer` / `*_constraint` and `activity_regularizer` keys
//! (attached or refused per variable by `keras/initializers.rs` and `keras/regularizers.rs`),
//! and Keras 2's `batch_input_shape` (the input shape of a Sequential model's first layer).

use serde_json::Value;

use crate::error::ErrorKind;
use crate::keras::config::{Cfg, show};

const CONV: &[&str] = &[
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "groups",
    "activation",
    "use_bias",
    "lora_rank",
    "lora_alpha",
];
const DEPTHWISE: &[&str] = &[
    "depth_multiplier",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "activation",
    "use_bias",
];
const SEPARABLE: &[&str] = &[
    "filters",
    "depth_multiplier",
    "kernel_size",
    "strides",
    "padding",
    "data_format",
    "dilation_rate",
    "activation",
    "use_bias",
];
const TRANSPOSE: &[&str] = &[
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "output_padding",
    "data_format",
    "dilation_rate",
    "activation",
    "use_bias",
    "groups=1",
];
const POOL: &[&str] = &["pool_size", "strides", "padding", "data_format"];
const RNN_COMMON: &[&str] = &[
    "units",
    "activation",
    "use_bias",
    "return_sequences",
    "return_state",
    "go_backwards",
    // A note (the state carried across batches); every batch starts from zeros here.
    "stateful",
    // Same numbers unrolled or as a loop.
    "unroll",
    // Only acts on a mask; no mask reaches a recurrent layer (Embedding mask_zero is refused).
    "zero_output_for_mask",
    // Training-mode dropout masks (random in both frameworks).
    "dropout",
    "recurrent_dropout",
    "seed",
    "time_major=false",
    // Keras 2: the kernel-fusion strategy, same numbers.
    "implementation",
];

/// The config keys `class` computes, besides the ones every layer accepts.
fn keys_of(class: &str) -> Option<Vec<&'static str>> {
    let rnn = |extra: &[&'static str]| {
        let mut v = RNN_COMMON.to_vec();
        v.extend_from_slice(extra);
        v
    };
    Some(match class {
        "Dense" => vec![
            "units",
            "activation",
            "use_bias",
            "quantization_config",
            "lora_rank",
            "lora_alpha",
        ],
        "Conv1D" | "Conv2D" | "Conv3D" => CONV.to_vec(),
        "DepthwiseConv1D" | "DepthwiseConv2D" => DEPTHWISE.to_vec(),
        "SeparableConv1D" | "SeparableConv2D" => SEPARABLE.to_vec(),
        "Conv1DTranspose" | "Conv2DTranspose" | "Conv3DTranspose" => TRANSPOSE.to_vec(),
        "BatchNormalization" => vec![
            "axis",
            "momentum",
            "epsilon",
            "center",
            "scale",
            "synchronized",
            "renorm=false",
            // Only read with renorm=True.
            "renorm_clipping",
            "renorm_momentum",
            "virtual_batch_size=null",
            "adjustment=null",
            "fused",
        ],
        "LayerNormalization" => vec!["axis", "epsilon", "center", "scale", "rms_scaling"],
        "GroupNormalization" => vec!["groups", "axis", "epsilon", "center", "scale"],
        "Activation" => vec!["activation"],
        "ReLU" => vec!["max_value", "negative_slope", "threshold"],
        "LeakyReLU" => vec!["negative_slope", "alpha"],
        "ELU" => vec!["alpha"],
        "Softmax" => vec!["axis"],
        "Dropout" => vec!["rate", "seed", "noise_shape"],
        "SpatialDropout1D" | "SpatialDropout2D" | "SpatialDropout3D" => {
            vec!["rate", "seed", "data_format"]
        }
        "Flatten" => vec!["data_format"],
        "Reshape" => vec!["target_shape"],
        "Permute" => vec!["dims"],
        "MaxPooling1D" | "MaxPooling2D" | "MaxPooling3D" | "AveragePooling1D"
        | "AveragePooling2D" | "AveragePooling3D" => POOL.to_vec(),
        "GlobalAveragePooling1D"
        | "GlobalAveragePooling2D"
        | "GlobalAveragePooling3D"
        | "GlobalMaxPooling1D"
        | "GlobalMaxPooling2D"
        | "GlobalMaxPooling3D" => vec!["data_format", "keepdims"],
        "ZeroPadding1D" | "ZeroPadding2D" | "ZeroPadding3D" => vec!["padding", "data_format"],
        "UpSampling1D" | "UpSampling2D" | "UpSampling3D" => {
            vec!["size", "data_format", "interpolation"]
        }
        "Embedding" => vec![
            "input_dim",
            "output_dim",
            "mask_zero",
            "quantization_config",
            "lora_rank",
            "lora_alpha",
            // Keras 2: the expected sequence length, no effect on the numbers.
            "input_length",
        ],
        "SimpleRNN" => rnn(&[]),
        "LSTM" => rnn(&["recurrent_activation", "unit_forget_bias"]),
        "GRU" => rnn(&["recurrent_activation", "reset_after"]),
        "Bidirectional" => vec!["layer", "backward_layer", "merge_mode"],
        "Add" | "Subtract" | "Multiply" | "Average" | "Maximum" | "Minimum" => Vec::new(),
        "Concatenate" => vec!["axis"],
        "Rescaling" => vec!["scale", "offset"],
        "Normalization" => vec!["axis", "invert", "mean", "variance"],
        "Identity" => Vec::new(),
        _ => return None,
    })
}

fn common(key: &str) -> bool {
    matches!(
        key,
        "name" | "trainable" | "dtype" | "activity_regularizer" | "batch_input_shape"
    ) || key.ends_with("_initializer")
        || key.ends_with("_regularizer")
        || key.ends_with("_constraint")
}

/// Refuses the first config key of `c` its class does not compute (or a value other than
/// the one it accepts). Classes without a list are left to `convert`'s `UnsupportedLayer`.
pub(super) fn check(c: &Cfg<'_>) -> Result<(), ErrorKind> {
    let Some(keys) = keys_of(c.class) else {
        return Ok(());
    };
    for (key, value) in c.map {
        if common(key) {
            continue;
        }
        let mut known = false;
        for entry in &keys {
            match entry.split_once('=') {
                None if entry == key => known = true,
                Some((k, want)) if k == key => {
                    let want: Value = serde_json::from_str(want).unwrap_or(Value::Null);
                    // `groups=1` also accepts 1.0; `renorm=false` also accepts null.
                    let same = value == &want
                        || (value.is_null() && want == Value::Bool(false))
                        || (value.as_f64().is_some() && value.as_f64() == want.as_f64());
                    if !same {
                        return Err(c.unsupported(format!(
                            "argument `{key}` = {} (only {want} is computed)",
                            show(value)
                        )));
                    }
                    known = true;
                }
                _ => {}
            }
        }
        if !known {
            return Err(c.unsupported(format!(
                "argument `{key}` = {} is not computed by the importer",
                show(value)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(class: &str, cfg: serde_json::Value) -> Result<(), ErrorKind> {
        let map = cfg.as_object().unwrap().clone();
        let c = Cfg::new(&map, "l", class);
        check(&c)
    }

    #[test]
    fn known_keys_pass_unknown_keys_and_values_are_refused() {
        assert!(
            run(
                "Dense",
                json!({"name": "d", "units": 2, "kernel_initializer": null, "dtype": "float32"})
            )
            .is_ok()
        );
        let e = run("Dense", json!({"units": 2, "mystery": 3})).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("`l` (Dense)") && s.contains("`mystery` = 3"),
            "{s}"
        );
        let e = run("BatchNormalization", json!({"renorm": true})).unwrap_err();
        assert!(e.to_string().contains("`renorm` = true"), "{e}");
        assert!(run("BatchNormalization", json!({"renorm": false})).is_ok());
        assert!(run("Conv2DTranspose", json!({"groups": 1})).is_ok());
        assert!(run("Conv2DTranspose", json!({"groups": 2})).is_err());
        assert!(run("LSTM", json!({"time_major": true})).is_err());
        assert!(run("NotALayer", json!({"x": 1})).is_ok());
    }
}
