//! The divergence catalogue (`../shared/catalogue.md`) as one typed enum: every id with its
//! number, kebab-case name, category and the title findings use; the few ids parallax adds for
//! plain porting mistakes the catalogue has no entry for; and the ids an analysis of two
//! bundles cannot decide.
//!
//! This is the only place in parallax that knows the catalogue. It depends on nothing, so
//! every crate that names a catalogue entry (the optimizer equivalences, the diagnosis) can.

use std::fmt;
use std::str::FromStr;

/// Declares [`Id`] and its data from one table: `Variant = number, name, category, title;`.
macro_rules! catalogue {
    ($($(#[$meta:meta])* $variant:ident = $number:literal, $name:literal, $category:literal, $title:literal;)*) => {
        /// One catalogue id. Variants are declared (and ordered) in catalogue order, the ids
        /// parallax adds after the catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Id {
            $($(#[$meta])* $variant,)*
        }

        impl Id {
            /// How many ids there are.
            pub const COUNT: usize = [$($name),*].len();

            /// Every id, in declaration order.
            pub const ALL: [Id; Id::COUNT] = [$(Id::$variant),*];

            /// Position in the catalogue (1-based); `0` for the ids parallax adds.
            pub const fn number(self) -> u32 {
                match self {
                    $(Id::$variant => $number,)*
                }
            }

            /// The kebab-case name (`adam-epsilon-hat`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Id::$variant => $name,)*
                }
            }

            /// The catalogue category (`optimizer`, `loss`, ...).
            pub const fn category(self) -> &'static str {
                match self {
                    $(Id::$variant => $category,)*
                }
            }

            /// The finding title.
            pub const fn title(self) -> &'static str {
                match self {
                    $(Id::$variant => $title,)*
                }
            }

            /// The id named `name` (kebab-case), if there is one.
            pub fn parse(name: &str) -> Option<Id> {
                match name {
                    $($name => Some(Id::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

catalogue! {
    AdamEpsilonHat = 1, "adam-epsilon-hat", "optimizer",
        "Adam's epsilon sits in a different place (Keras epsilon-hat)";
    AdamWeightDecayCoupling = 2, "adam-weight-decay-coupling", "optimizer",
        "weight decay is coupled to the gradient differently";
    AdamwDefaultDecay = 3, "adamw-default-decay", "optimizer",
        "AdamW weight decay differs";
    SgdMomentumLrInBuffer = 4, "sgd-momentum-lr-in-buffer", "optimizer",
        "momentum folds the learning rate in differently under a schedule";
    SgdDefaultLr = 5, "sgd-default-lr", "optimizer",
        "SGD hyper-parameters differ";
    RmspropEpsAndRho = 6, "rmsprop-eps-and-rho", "optimizer",
        "RMSprop hyper-parameters differ";
    AdagradInitEps = 7, "adagrad-init-eps", "optimizer",
        "Adagrad hyper-parameters differ";
    AdadeltaDefaults = 8, "adadelta-defaults", "optimizer",
        "Adadelta hyper-parameters differ";
    NadamMomentumSchedule = 9, "nadam-momentum-schedule", "optimizer",
        "Nadam hyper-parameters or momentum schedule differ";
    AdamaxEpsPlacement = 10, "adamax-eps-placement", "optimizer",
        "Adamax hyper-parameters differ";
    ClipnormPerTensorVsGlobal = 11, "clipnorm-per-tensor-vs-global", "optimizer",
        "gradient clipping differs";
    EmaWeights = 12, "ema-weights", "optimizer",
        "Keras use_ema overwrites the weights with their moving average";
    LegacyDecayKwarg = 13, "legacy-decay-kwarg", "schedule",
        "legacy optimizer `decay` argument (ignored by Keras 3)";
    LrScheduleGranularity = 14, "lr-schedule-granularity", "schedule",
        "learning-rate schedule stepped per batch vs per epoch";
    CosineDecaySemantics = 15, "cosine-decay-semantics", "schedule",
        "cosine decay schedules differ";
    ReduceLrOnPlateauThreshold = 16, "reduce-lr-on-plateau-threshold", "schedule",
        "ReduceLROnPlateau: absolute vs relative improvement threshold";
    BnMomentumConvention = 17, "bn-momentum-convention", "normalization",
        "BatchNorm momentum convention: running statistics update at different rates";
    BnEpsilon = 18, "bn-epsilon", "normalization",
        "BatchNorm epsilon differs";
    BnRunningVarBias = 19, "bn-running-var-bias", "normalization",
        "BatchNorm running variance is updated differently";
    BnFrozenMeansInference = 20, "bn-frozen-means-inference", "normalization",
        "frozen Keras BatchNorm runs in inference mode; torch BatchNorm still trains";
    DefaultTrainMode = 21, "default-train-mode", "normalization",
        "torch modules start in training mode";
    LayernormEpsAxis = 22, "layernorm-eps-axis", "normalization",
        "LayerNorm epsilon or normalized axes differ";
    DenseInit = 23, "dense-init", "init",
        "Dense initialisation differs";
    ConvInit = 24, "conv-init", "init",
        "convolution initialisation differs";
    DepthwiseInit = 25, "depthwise-init", "init",
        "depthwise convolution initialisation differs";
    EmbeddingInit = 26, "embedding-init", "init",
        "Embedding initialisation differs";
    RnnInit = 27, "rnn-init", "init",
        "recurrent layer initialisation differs";
    DenseLayout = 28, "dense-layout", "layout",
        "Dense kernel copied without the transpose (in,out) → (out,in)";
    ConvLayout = 29, "conv-layout", "layout",
        "convolution kernel copied with the wrong HWIO → OIHW transform";
    ConvTransposeLayout = 30, "conv-transpose-layout", "layout",
        "transposed-convolution kernel copied with the wrong transform";
    DepthwiseSeparableLayout = 31, "depthwise-separable-layout", "layout",
        "depthwise/separable kernel copied with the wrong transform";
    ChannelsLast = 32, "channels-last", "layout",
        "NHWC data fed as NCHW without a transpose";
    FlattenOrder = 33, "flatten-order", "layout",
        "Dense after Flatten: rows not permuted from H,W,C to C,H,W order";
    LstmLayout = 34, "lstm-layout", "recurrent",
        "LSTM weights copied with the wrong gate order or bias split";
    GruLayoutResetAfter = 35, "gru-layout-reset-after", "recurrent",
        "GRU gates not reordered or reset placement differs";
    RnnDropoutAndMasking = 36, "rnn-dropout-and-masking", "recurrent",
        "RNN dropout or masking has no torch counterpart";
    SamePaddingAsymmetric = 37, "same-padding-asymmetric", "padding",
        "'same' padding is split differently";
    PoolingPadding = 38, "pooling-padding", "padding",
        "pooling padding or divisor differs";
    ConvTransposeSameCrop = 39, "conv-transpose-same-crop", "padding",
        "transposed convolution 'same' crop differs";
    ResizeSemantics = 40, "resize-semantics", "preprocessing",
        "resize / upsampling interpolation differs";
    DoubleSoftmax = 41, "double-softmax", "loss",
        "output activation applied twice: probabilities fed to a loss that expects logits";
    CceProbabilityClipping = 42, "cce-probability-clipping", "loss",
        "Keras clips probabilities in cross-entropy; torch works on exact logits";
    BceClipping = 43, "bce-clipping", "loss",
        "binary cross-entropy clips differently";
    LossReductionWeights = 44, "loss-reduction-weights", "loss",
        "class/sample weights are normalised differently";
    LossPerSampleMeanAndSum = 45, "loss-per-sample-mean-and-sum", "loss",
        "loss reduction differs";
    TargetShapeBroadcast = 46, "target-shape-broadcast", "loss",
        "target shape broadcasts against the output in torch";
    LabelSmoothing = 47, "label-smoothing", "loss",
        "label smoothing differs";
    KldPoissonCosine = 48, "kld-poisson-cosine", "loss",
        "KL divergence / Poisson / cosine loss conventions differ";
    L2RegularizerFactorTwo = 49, "l2-regularizer-factor-two", "regularization",
        "Keras weight regularizers and torch weight decay differ";
    GeluApproximate = 50, "gelu-approximate", "numerics",
        "GELU: exact erf form vs tanh approximation";
    LeakyReluSlope = 51, "leaky-relu-slope", "numerics",
        "LeakyReLU negative slope differs";
    HardSigmoidDefinition = 52, "hard-sigmoid-definition", "numerics",
        "hard_sigmoid definition differs";
    SoftmaxImplicitDim = 53, "softmax-implicit-dim", "numerics",
        "softmax taken over a different axis";
    FitBatchShuffleDefaults = 54, "fit-batch-shuffle-defaults", "data-pipeline",
        "the training loop differs between fit and the DataLoader";
    ValidationSplitTail = 55, "validation-split-tail", "data-pipeline",
        "Keras validation_split takes the last samples before shuffling";
    StdDdof = 56, "std-ddof", "preprocessing",
        "standardisation uses the population std on one side, the unbiased std on the other";
    ImagenetPreprocessModes = 57, "imagenet-preprocess-modes", "preprocessing",
        "input preprocessing differs";
    ReportedLossSemantics = 58, "reported-loss-semantics", "data-pipeline",
        "reported training losses mean different things";
    Tf32Defaults = 59, "tf32-defaults", "numerics",
        "TF32 matmul defaults differ on Ampere+ GPUs";
    MixedPrecisionLossScale = 60, "mixed-precision-loss-scale", "numerics",
        "mixed-precision loss scaling differs";
    SeedingDeterminism = 61, "seeding-determinism", "numerics",
        "same seed, different random numbers";
    NoCounterpartOptimizers = 62, "no-counterpart-optimizers", "optimizer",
        "the optimizer has no counterpart in the other framework";
    // Ids parallax adds for plain porting mistakes that are not framework conventions.
    OptimizerMismatch = 0, "optimizer-mismatch", "optimizer",
        "optimizer class or hyper-parameters differ";
    LossMismatch = 0, "loss-mismatch", "loss",
        "the two sides train on different losses";
    InputMismatch = 0, "input-mismatch", "data-pipeline",
        "the two bundles feed different or reordered samples";
    ArchitectureMismatch = 0, "architecture-mismatch", "architecture",
        "aligned layers compute different functions";
    // Differences verified in the frameworks' sources that the catalogue lacks.
    WeightConstraints = 0, "weight-constraints", "regularization",
        "Keras weight constraints are applied after every update; torch has none";
    BnAffineInit = 0, "bn-affine-init", "init",
        "BatchNorm gamma/beta initialisation differs";
}

impl Id {
    /// Whether the id is a catalogue entry (not one parallax adds).
    pub const fn in_catalogue(self) -> bool {
        self.number() != 0
    }

    /// The catalogue entry `number`.
    pub fn from_number(number: u32) -> Option<Id> {
        Id::ALL
            .into_iter()
            .find(|id| id.in_catalogue() && id.number() == number)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no catalogue id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownId(pub String);

impl fmt::Display for UnknownId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown catalogue id `{}`", self.0)
    }
}

impl std::error::Error for UnknownId {}

impl FromStr for Id {
    type Err = UnknownId;

    fn from_str(s: &str) -> Result<Id, UnknownId> {
        Id::parse(s).ok_or_else(|| UnknownId(s.to_string()))
    }
}

/// Catalogue ids that cannot be decided from two bundles, with the reason, in catalogue order.
pub const UNDECIDABLE: [(Id, &str); 5] = [
    (
        Id::ReduceLrOnPlateauThreshold,
        "Keras callbacks are not saved in model.keras, so the Keras side's ReduceLROnPlateau (if any) is unknown",
    ),
    (
        Id::DefaultTrainMode,
        "depends on whether the user's inference code calls model.eval(); no bundle file records it",
    ),
    (
        Id::ReportedLossSemantics,
        "concerns what the user logs; no bundle records how either side reports its training loss",
    ),
    (
        Id::Tf32Defaults,
        "GPU-only behaviour; the bundles do not say which device trained",
    ),
    (
        Id::MixedPrecisionLossScale,
        "train.json does not record autocast or a GradScaler, so the torch side's loss scaling is unknown",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_the_catalogue_in_order() {
        let catalogue: Vec<Id> = Id::ALL.into_iter().filter(|id| id.in_catalogue()).collect();
        assert_eq!(catalogue.len(), 62);
        for (i, id) in catalogue.iter().enumerate() {
            assert_eq!(id.number() as usize, i + 1, "{id}");
            assert_eq!(Id::ALL[i], *id, "catalogue entries come first");
        }
        for id in Id::ALL {
            assert!(!id.title().is_empty(), "{id}");
            assert!(!id.category().is_empty(), "{id}");
            assert_eq!(Id::parse(id.name()), Some(id));
            assert_eq!(id.name().parse::<Id>(), Ok(id));
        }
        let mut names: Vec<&str> = Id::ALL.iter().map(|id| id.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Id::COUNT);
        assert_eq!(Id::from_number(41), Some(Id::DoubleSoftmax));
        assert_eq!(Id::from_number(0), None);
        assert_eq!(
            "no-such-id".parse::<Id>(),
            Err(UnknownId("no-such-id".into()))
        );
        for (id, why) in UNDECIDABLE {
            assert!(id.in_catalogue(), "{id}");
            assert!(!why.is_empty());
        }
        assert!(UNDECIDABLE.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn ids_match_the_catalogue_file() {
        // The shared catalogue is outside the repository; check it when it is there.
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/catalogue.md");
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        for id in Id::ALL.into_iter().filter(|id| id.in_catalogue()) {
            let heading = format!("### {}. `{}`", id.number(), id.name());
            assert!(text.contains(&heading), "catalogue lacks `{heading}`");
        }
    }
}
