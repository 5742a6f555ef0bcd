//! The names Keras gives layer groups in `model.weights.h5`.
//!
//! keras/src/saving/saving_lib.py (`_save_container_state`) stores each layer of a model's
//! `layers` list under `layers/<name>`, where `<name>` is `naming.to_snake_case` of the
//! layer's *class* name, made unique within that list by `_get_unique_name`: the first
//! `dense`, then `dense_1`, `dense_2`, ... The user's layer name plays no part.
//! `Sequential.layers` leaves out its leading `InputLayer`; `Functional.layers` keeps every
//! `InputLayer`. A nested model's own layers sit under `<its group>/layers/...`.

use std::collections::BTreeMap;

/// `keras.src.utils.naming.to_snake_case`: drop non-word characters, then apply the two
/// regex substitutions `(.)([A-Z][a-z]+) → \1_\2` and `([a-z])([A-Z]) → \1_\2`, then lower-case.
pub(super) fn to_snake_case(name: &str) -> String {
    let chars: Vec<char> = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    // (.)([A-Z][a-z]+): scan left to right, matches do not overlap.
    let mut step1 = Vec::with_capacity(chars.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        let matched = i + 2 < chars.len()
            && chars[i + 1].is_ascii_uppercase()
            && chars[i + 2].is_ascii_lowercase();
        if matched {
            let mut j = i + 3;
            while j < chars.len() && chars[j].is_ascii_lowercase() {
                j += 1;
            }
            step1.push(chars[i]);
            step1.push('_');
            step1.extend_from_slice(&chars[i + 1..j]);
            i = j;
        } else {
            step1.push(chars[i]);
            i += 1;
        }
    }
    // ([a-z])([A-Z])
    let mut out = String::with_capacity(step1.len() + 4);
    let mut i = 0;
    while i < step1.len() {
        if i + 1 < step1.len() && step1[i].is_ascii_lowercase() && step1[i + 1].is_ascii_uppercase()
        {
            out.push(step1[i]);
            out.push('_');
            out.push(step1[i + 1]);
            i += 2;
        } else {
            out.push(step1[i]);
            i += 1;
        }
    }
    out.to_lowercase()
}

/// `_get_unique_name` over one container: the first use of a base name keeps it, later uses
/// get `_1`, `_2`, ...
#[derive(Debug, Default)]
pub(super) struct Uniquifier {
    used: BTreeMap<String, usize>,
}

impl Uniquifier {
    pub(super) fn next(&mut self, class_name: &str) -> String {
        let base = to_snake_case(class_name);
        match self.used.get_mut(&base) {
            Some(n) => {
                *n += 1;
                format!("{base}_{n}")
            }
            None => {
                self.used.insert(base.clone(), 0);
                base
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(class: &str, expected: &str) {
        assert_eq!(to_snake_case(class), expected, "to_snake_case({class:?})");
    }

    // Expected values are what Python's keras.src.utils.naming.to_snake_case returns.
    #[test]
    fn snake_case_matches_keras() {
        check("Dense", "dense");
        check("Conv2DTranspose", "conv2d_transpose");
        check("GlobalAveragePooling2D", "global_average_pooling2d");
        check("ReLU", "re_lu");
        check("LeakyReLU", "leaky_re_lu");
        check("PReLU", "p_re_lu");
        check("ELU", "elu");
        check("LSTM", "lstm");
        check("SimpleRNN", "simple_rnn");
        check("BatchNormalization", "batch_normalization");
        check("UpSampling2D", "up_sampling2d");
        check("DepthwiseConv2D", "depthwise_conv2d");
        check("SpatialDropout1D", "spatial_dropout1d");
        check("InputLayer", "input_layer");
        check("Functional", "functional");
        check("MyHTTPLayer", "my_http_layer");
    }

    #[test]
    fn uniquifier_counts_per_base_name() {
        let mut u = Uniquifier::default();
        let got: Vec<String> = ["Dense", "Dense", "ReLU", "Dense"]
            .iter()
            .map(|c| u.next(c))
            .collect();
        assert_eq!(got, ["dense", "dense_1", "re_lu", "dense_2"]);
    }
}
