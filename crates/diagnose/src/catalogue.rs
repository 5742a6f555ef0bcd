//! The divergence catalogue (`../shared/catalogue.md`) as data: every id with its number,
//! category and the title findings use, the few ids this crate adds for plain porting
//! mistakes the catalogue has no entry for, and the ids the analysis cannot decide.
//!
//! This is the only place in parallax that knows the catalogue.

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Position in the catalogue (1-based); `0` for the ids added by this crate.
    pub number: u32,
    pub id: &'static str,
    pub category: &'static str,
    /// The finding title.
    pub title: &'static str,
}

const fn e(number: u32, id: &'static str, category: &'static str, title: &'static str) -> Entry {
    Entry {
        number,
        id,
        category,
        title,
    }
}

/// The 62 catalogue entries, in catalogue order.
pub const ENTRIES: [Entry; 62] = [
    e(
        1,
        "adam-epsilon-hat",
        "optimizer",
        "Adam's epsilon sits in a different place (Keras epsilon-hat)",
    ),
    e(
        2,
        "adam-weight-decay-coupling",
        "optimizer",
        "weight_decay is decoupled in Keras, coupled L2 in torch",
    ),
    e(
        3,
        "adamw-default-decay",
        "optimizer",
        "AdamW default weight decay differs (Keras 0.004, torch 0.01)",
    ),
    e(
        4,
        "sgd-momentum-lr-in-buffer",
        "optimizer",
        "SGD momentum folds the learning rate in differently under a schedule",
    ),
    e(
        5,
        "sgd-default-lr",
        "optimizer",
        "SGD learning rate differs (Keras default 0.01, torch 0.001)",
    ),
    e(
        6,
        "rmsprop-eps-and-rho",
        "optimizer",
        "RMSprop epsilon placement, rho/alpha and learning rate differ",
    ),
    e(
        7,
        "adagrad-init-eps",
        "optimizer",
        "Adagrad initial accumulator, epsilon and learning rate differ",
    ),
    e(
        8,
        "adadelta-defaults",
        "optimizer",
        "Adadelta learning rate, rho and epsilon differ",
    ),
    e(
        9,
        "nadam-momentum-schedule",
        "optimizer",
        "Nadam momentum schedule (and learning rate) differ",
    ),
    e(
        10,
        "adamax-eps-placement",
        "optimizer",
        "Adamax epsilon placement and learning rate differ",
    ),
    e(
        11,
        "clipnorm-per-tensor-vs-global",
        "optimizer",
        "gradient clipping differs (per-tensor vs global norm)",
    ),
    e(
        12,
        "ema-weights",
        "optimizer",
        "Keras use_ema overwrites the weights with their moving average",
    ),
    e(
        13,
        "legacy-decay-kwarg",
        "schedule",
        "legacy optimizer `decay` argument (ignored by Keras 3)",
    ),
    e(
        14,
        "lr-schedule-granularity",
        "schedule",
        "learning-rate schedule stepped per batch vs per epoch",
    ),
    e(
        15,
        "cosine-decay-semantics",
        "schedule",
        "cosine decay: fraction vs absolute floor, clamp vs restart",
    ),
    e(
        16,
        "reduce-lr-on-plateau-threshold",
        "schedule",
        "ReduceLROnPlateau: absolute vs relative improvement threshold",
    ),
    e(
        17,
        "bn-momentum-convention",
        "normalization",
        "BatchNorm momentum convention: running statistics update at different rates",
    ),
    e(
        18,
        "bn-epsilon",
        "normalization",
        "BatchNorm epsilon differs (Keras 1e-3, torch 1e-5)",
    ),
    e(
        19,
        "bn-running-var-bias",
        "normalization",
        "BatchNorm running variance: biased (Keras) vs unbiased (torch) update",
    ),
    e(
        20,
        "bn-frozen-means-inference",
        "normalization",
        "frozen Keras BatchNorm runs in inference mode; torch BatchNorm still trains",
    ),
    e(
        21,
        "default-train-mode",
        "normalization",
        "torch modules start in training mode",
    ),
    e(
        22,
        "layernorm-eps-axis",
        "normalization",
        "LayerNorm epsilon or normalized axes differ",
    ),
    e(
        23,
        "dense-init",
        "init",
        "Dense initialisation differs (glorot_uniform + zero bias vs torch's U(±1/√fan_in))",
    ),
    e(
        24,
        "conv-init",
        "init",
        "convolution initialisation differs (glorot_uniform + zero bias vs torch's U(±1/√fan_in))",
    ),
    e(
        25,
        "depthwise-init",
        "init",
        "depthwise convolution initialisation differs",
    ),
    e(
        26,
        "embedding-init",
        "init",
        "Embedding initialisation differs (U(±0.05) vs N(0, 1))",
    ),
    e(
        27,
        "rnn-init",
        "init",
        "recurrent layer initialisation differs (glorot/orthogonal/forget bias 1 vs U(±1/√H))",
    ),
    e(
        28,
        "dense-layout",
        "layout",
        "Dense kernel copied without the transpose (in,out) → (out,in)",
    ),
    e(
        29,
        "conv-layout",
        "layout",
        "convolution kernel copied with the wrong HWIO → OIHW transform",
    ),
    e(
        30,
        "conv-transpose-layout",
        "layout",
        "transposed-convolution kernel copied with the wrong transform",
    ),
    e(
        31,
        "depthwise-separable-layout",
        "layout",
        "depthwise/separable kernel copied with the wrong transform",
    ),
    e(
        32,
        "channels-last",
        "layout",
        "NHWC data fed as NCHW without a transpose",
    ),
    e(
        33,
        "flatten-order",
        "layout",
        "Dense after Flatten: rows not permuted from H,W,C to C,H,W order",
    ),
    e(
        34,
        "lstm-layout",
        "recurrent",
        "LSTM weights copied with the wrong gate order or bias split",
    ),
    e(
        35,
        "gru-layout-reset-after",
        "recurrent",
        "GRU gates not reordered (z,r,h → r,z,n) or reset placement differs",
    ),
    e(
        36,
        "rnn-dropout-and-masking",
        "recurrent",
        "RNN dropout or masking has no torch counterpart",
    ),
    e(
        37,
        "same-padding-asymmetric",
        "padding",
        "'same' padding: TF puts the extra pixel at the end, the port pads symmetrically",
    ),
    e(
        38,
        "pooling-padding",
        "padding",
        "pooling padding or divisor differs",
    ),
    e(
        39,
        "conv-transpose-same-crop",
        "padding",
        "transposed convolution 'same' crop differs",
    ),
    e(
        40,
        "resize-semantics",
        "preprocessing",
        "resize / upsampling interpolation differs",
    ),
    e(
        41,
        "double-softmax",
        "loss",
        "softmax applied twice: probabilities fed to a loss that expects logits",
    ),
    e(
        42,
        "cce-probability-clipping",
        "loss",
        "Keras clips probabilities in cross-entropy; torch works on exact logits",
    ),
    e(
        43,
        "bce-clipping",
        "loss",
        "binary cross-entropy clips differently (Keras 1e-7, torch log ≥ −100)",
    ),
    e(
        44,
        "loss-reduction-weights",
        "loss",
        "class/sample weights normalised differently (Σw/N vs Σw)",
    ),
    e(
        45,
        "loss-per-sample-mean-and-sum",
        "loss",
        "loss reduction differs (per-sample mean vs sum over elements)",
    ),
    e(
        46,
        "target-shape-broadcast",
        "loss",
        "target shape broadcasts against the output in torch",
    ),
    e(47, "label-smoothing", "loss", "label smoothing differs"),
    e(
        48,
        "kld-poisson-cosine",
        "loss",
        "KL divergence / Poisson / cosine loss conventions differ",
    ),
    e(
        49,
        "l2-regularizer-factor-two",
        "regularization",
        "Keras l2(λ) is λ·Σw² (gradient 2λw); torch weight_decay is λ′w",
    ),
    e(
        50,
        "gelu-approximate",
        "numerics",
        "GELU: exact erf form vs tanh approximation",
    ),
    e(
        51,
        "leaky-relu-slope",
        "numerics",
        "LeakyReLU negative slope differs (Keras 0.3 / 0.2, torch 0.01)",
    ),
    e(
        52,
        "hard-sigmoid-definition",
        "numerics",
        "hard_sigmoid definition differs (0.2x+0.5 vs x/6+0.5)",
    ),
    e(
        53,
        "softmax-implicit-dim",
        "numerics",
        "softmax taken over a different axis",
    ),
    e(
        54,
        "fit-batch-shuffle-defaults",
        "data-pipeline",
        "batch size, shuffling or epochs differ between fit and the DataLoader",
    ),
    e(
        55,
        "validation-split-tail",
        "data-pipeline",
        "Keras validation_split takes the last samples before shuffling",
    ),
    e(
        56,
        "std-ddof",
        "preprocessing",
        "standardisation uses the population std on one side, the unbiased std on the other",
    ),
    e(
        57,
        "imagenet-preprocess-modes",
        "preprocessing",
        "input preprocessing differs (scale, offset or channel order)",
    ),
    e(
        58,
        "reported-loss-semantics",
        "data-pipeline",
        "reported training losses mean different things",
    ),
    e(
        59,
        "tf32-defaults",
        "numerics",
        "TF32 matmul defaults differ on Ampere+ GPUs",
    ),
    e(
        60,
        "mixed-precision-loss-scale",
        "numerics",
        "mixed-precision loss scaling differs",
    ),
    e(
        61,
        "seeding-determinism",
        "numerics",
        "same seed, different random numbers: initial weights and batch order differ",
    ),
    e(
        62,
        "no-counterpart-optimizers",
        "optimizer",
        "the optimizer has no counterpart in the other framework",
    ),
];

/// Ids this crate adds for plain porting mistakes that are not framework conventions.
pub const EXTRA: [Entry; 4] = [
    e(
        0,
        "optimizer-mismatch",
        "optimizer",
        "optimizer class or hyper-parameters differ",
    ),
    e(
        0,
        "loss-mismatch",
        "loss",
        "the two sides train on different losses",
    ),
    e(
        0,
        "input-mismatch",
        "data-pipeline",
        "the two bundles feed different or reordered samples",
    ),
    e(
        0,
        "architecture-mismatch",
        "architecture",
        "aligned layers compute different functions",
    ),
];

/// Catalogue ids that cannot be decided from two bundles, with the reason.
pub const UNDECIDABLE: [(&str, &str); 5] = [
    (
        "reduce-lr-on-plateau-threshold",
        "Keras callbacks are not saved in model.keras, so the Keras side's ReduceLROnPlateau (if any) is unknown",
    ),
    (
        "default-train-mode",
        "depends on whether the user's inference code calls model.eval(); no bundle file records it",
    ),
    (
        "reported-loss-semantics",
        "concerns what the user logs; no bundle records how either side reports its training loss",
    ),
    (
        "tf32-defaults",
        "GPU-only behaviour; the bundles do not say which device trained",
    ),
    (
        "mixed-precision-loss-scale",
        "train.json does not record autocast or a GradScaler, so the torch side's loss scaling is unknown",
    ),
];

/// The entry of a catalogue (or extra) id.
pub fn entry(id: &str) -> Option<&'static Entry> {
    ENTRIES.iter().chain(EXTRA.iter()).find(|e| e.id == id)
}

/// The id of catalogue entry `number`.
pub fn id_of(number: u32) -> Option<&'static str> {
    ENTRIES.iter().find(|e| e.number == number).map(|e| e.id)
}

/// The finding title of an id (the id itself for an unknown one).
pub fn title(id: &str) -> String {
    entry(id).map_or_else(|| id.to_string(), |e| e.title.to_string())
}

/// Catalogue order of an id (extra ids after the catalogue).
pub(crate) fn order(id: &str) -> u32 {
    entry(id).map_or(u32::MAX, |e| if e.number == 0 { 100 } else { e.number })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_the_catalogue_in_order() {
        for (i, e) in ENTRIES.iter().enumerate() {
            assert_eq!(e.number as usize, i + 1, "{}", e.id);
            assert!(!e.title.is_empty());
        }
        let mut ids: Vec<&str> = ENTRIES.iter().chain(EXTRA.iter()).map(|e| e.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ENTRIES.len() + EXTRA.len());
        assert_eq!(id_of(41), Some("double-softmax"));
        for (id, why) in UNDECIDABLE {
            assert!(entry(id).is_some(), "{id}");
            assert!(!why.is_empty());
        }
    }

    #[test]
    fn ids_match_the_catalogue_file() {
        // The shared catalogue is outside the repository; check it when it is there.
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/catalogue.md");
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        for e in &ENTRIES {
            let heading = format!("### {}. `{}`", e.number, e.id);
            assert!(text.contains(&heading), "catalogue lacks `{heading}`");
        }
    }
}
