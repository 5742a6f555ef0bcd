//! Step 3a: conventions decidable from the two layer configurations.
//!
//! BatchNorm momentum form (`bn-momentum-convention`, compared as the fraction of the running
//! value kept per step), epsilon (`bn-epsilon`), running-variance estimate
//! (`bn-running-var-bias`), frozen BatchNorm (`bn-frozen-means-inference`); LayerNorm and
//! GroupNorm epsilon and axes (`layernorm-eps-axis`); convolution padding for the actual
//! input size (`same-padding-asymmetric`), pooling padding and divisor (`pooling-padding`),
//! transposed-convolution crop (`conv-transpose-same-crop`), upsampling interpolation
//! (`resize-semantics`); activations after each aligned layer (`gelu-approximate`,
//! `leaky-relu-slope`, `hard-sigmoid-definition`, `softmax-implicit-dim`); RNN reset
//! placement, dropout and masking (`gru-layout-reset-after`, `rnn-dropout-and-masking`);
//! layers with parameters the alignment left without a counterpart (`architecture-mismatch`).

mod activation;
mod conv;
mod dropout;
mod norm;
mod pool;
mod resize;
mod rnn;
mod unpaired;

use catalogue::Id;
use model_ir::{DataLayout, Model, Node, Op};
use report::{Severity, Tolerance, sig};

use crate::align::{Aligned, Pair};
use crate::findings::{Findings, ev, pair_label};
use crate::graph::Shapes;

use activation::activations;
use conv::{conv_padding, conv_transpose_crop};
use dropout::{dropout, masking};
use norm::{batch_norm, layer_norm};
use pool::pooling;
use resize::{resizes, upsampling};
use rnn::rnn;
use unpaired::unpaired;

/// Float layer attributes (epsilons, momenta, slopes) compared for equality: configs store
/// float32 round-trips.
const LAYER_ATTR_TOL: Tolerance = Tolerance::Custom {
    atol: 1e-9,
    rtol: 1e-5,
};

pub(crate) struct Ctx<'a> {
    pub(crate) keras: &'a Model,
    pub(crate) torch: &'a Model,
    pub(crate) kshapes: &'a Shapes,
    pub(crate) tshapes: &'a Shapes,
}

fn py(x: f64) -> String {
    sig(x)
}

fn input_shape<'s>(shapes: &'s Shapes, n: &Node) -> Option<&'s Vec<Option<usize>>> {
    shapes.get(n.inputs.first()?)
}

/// Logical axis name of a positive axis in a tensor of rank `r` (channel/spatial/batch for
/// feature maps, the index otherwise).
fn logical_axis(p: usize, r: usize, layout: Option<DataLayout>) -> String {
    match layout {
        Some(l) if r >= 3 => match (l, p) {
            (_, 0) => "batch".into(),
            (DataLayout::ChannelsLast, p) if p == r - 1 => "channel".into(),
            (DataLayout::ChannelsFirst, 1) => "channel".into(),
            (DataLayout::ChannelsLast, p) => format!("spatial {}", p - 1),
            (DataLayout::ChannelsFirst, p) => format!("spatial {}", p - 2),
        },
        _ => format!("axis {p}"),
    }
}

/// Nodes of one kind in graph order.
fn nodes_of(m: &Model, pred: impl Fn(&Op) -> bool) -> Vec<&Node> {
    m.nodes.iter().filter(|n| pred(&n.op)).collect()
}

fn extra_params(p: &Pair<'_>, out: &mut Findings) {
    for q in &p.torch_unpaired {
        out.set_title(
            Id::ArchitectureMismatch,
            format!(
                "torch parameter `{}` {:?} has no Keras counterpart",
                q.name,
                q.tensor.shape()
            ),
        );
        out.add(
            Id::ArchitectureMismatch,
            Severity::Medium,
            0.5,
            vec![ev(
                format!("parameter `{}` has no Keras counterpart", q.name),
                "none",
                format!("{:?}", q.tensor.shape()),
                pair_label(&p.keras.name, &p.torch.name),
            )],
            format!(
                "drop `{}` (e.g. bias=False) to match the Keras layer",
                q.name
            ),
            "nothing to change on this side",
        );
    }
}

/// Step 3a over the aligned pairs and the parameter-free layers.
pub(crate) fn check(c: &Ctx<'_>, aligned: &Aligned<'_>, out: &mut Findings) {
    for p in &aligned.pairs {
        batch_norm(c, p, out);
        layer_norm(c, p, out);
        conv_padding(c, p, out);
        conv_transpose_crop(c, p, out);
        activations(c, p, out);
        rnn(p, out);
        extra_params(p, out);
    }
    pooling(c, out);
    upsampling(c, out);
    resizes(c, out);
    dropout(c, out);
    masking(c, out);
    unpaired(aligned, out);
}

#[cfg(test)]
mod tests {

    use report::Severity;

    use crate::testkit::*;

    /// The ids found for a Keras and a torch model that differ in one layer only.
    #[track_caller]
    pub(super) fn check(
        keras: model_ir::Model,
        torch: model_ir::Model,
        expect: &[(&str, Severity)],
    ) {
        let found = ids(keras, torch);
        let want: Vec<(String, Severity)> =
            expect.iter().map(|(i, s)| (i.to_string(), *s)).collect();
        assert_eq!(found, want);
    }
}
