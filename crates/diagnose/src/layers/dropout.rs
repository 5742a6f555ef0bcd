//! Parameter-free Dropout and Masking layers present on one side only or with different rates.

use catalogue::Id;
use model_ir::{Node, Op};
use report::Severity;

use super::{Ctx, LAYER_ATTR_TOL, nodes_of, py};
use crate::findings::{Findings, ev, pair_label};

pub(super) fn dropout(c: &Ctx<'_>, out: &mut Findings) {
    let is_drop = |op: &Op| matches!(op, Op::Dropout { .. });
    let (kd, td) = (nodes_of(c.keras, is_drop), nodes_of(c.torch, is_drop));
    if kd.len() != td.len() {
        let names = |v: &[&Node]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        out.set_title(
            Id::ArchitectureMismatch,
            format!(
                "dropout layers differ: Keras {}, torch {}",
                names(&kd),
                names(&td)
            ),
        );
        out.add(
            Id::ArchitectureMismatch,
            Severity::Medium,
            0.5,
            vec![ev("dropout layers", names(&kd), names(&td), None)],
            "add or remove nn.Dropout to match the Keras model",
            "nothing to change on this side",
        );
        return;
    }
    for (k, t) in kd.iter().zip(&td) {
        if let (
            Op::Dropout {
                rate: a,
                spatial: sa,
            },
            Op::Dropout {
                rate: b,
                spatial: sb,
            },
        ) = (&k.op, &t.op)
            && (!LAYER_ATTR_TOL.close(*b, *a) || sa.is_some() != sb.is_some())
        {
            out.set_title(
                Id::ArchitectureMismatch,
                format!(
                    "dropout rate differs at `{}` (Keras {}{}, torch {}{})",
                    k.name,
                    py(*a),
                    if sa.is_some() { " spatial" } else { "" },
                    py(*b),
                    if sb.is_some() { " spatial" } else { "" }
                ),
            );
            out.add(
                Id::ArchitectureMismatch,
                Severity::Medium,
                (a - b).abs(),
                vec![ev(
                    "dropout rate",
                    format!("{}{}", py(*a), if sa.is_some() { " (spatial)" } else { "" }),
                    format!("{}{}", py(*b), if sb.is_some() { " (spatial)" } else { "" }),
                    pair_label(&k.name, &t.name),
                )],
                format!("nn.Dropout(p={})", py(*a)),
                "nothing to change on this side",
            );
        }
    }
}

pub(super) fn masking(c: &Ctx<'_>, out: &mut Findings) {
    let has_rnn = c.keras.nodes.iter().any(|n| matches!(n.op, Op::Rnn { .. }));
    for n in &c.keras.nodes {
        if let Op::Embedding {
            mask_zero: true, ..
        } = n.op
            && has_rnn
        {
            out.title_item(
                Id::RnnDropoutAndMasking,
                "RNN dropout or masking has no torch counterpart",
                format!("`{}` Embedding(mask_zero=True) masks padded steps", n.name),
            );
            out.add(
                Id::RnnDropoutAndMasking,
                Severity::Medium,
                1.0,
                vec![ev(
                    "padding mask",
                    "Embedding(mask_zero=True): padded steps keep the state, the last valid output is returned",
                    "no mask: padded steps are processed",
                    Some(n.name.clone()),
                )],
                "pack_padded_sequence with the true lengths, and gather the last valid output",
                "nothing to change on this side",
            );
        }
    }
}
