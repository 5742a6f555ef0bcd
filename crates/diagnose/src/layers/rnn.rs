//! Recurrent layers: GRU reset placement and recurrent dropout.

use catalogue::Id;
use model_ir::Op;
use report::Severity;

use super::activation::{ActCtx, compare_act};
use super::py;
use crate::align::Pair;
use crate::findings::{Findings, ev, pair_label};

pub(super) fn rnn(p: &Pair<'_>, out: &mut Findings) {
    let (
        Op::Rnn {
            cell,
            activation: ka,
            recurrent_activation: kra,
            gru_reset: kreset,
            dropout: kd,
            recurrent_dropout: krd,
            direction: kdir,
            ..
        },
        Op::Rnn {
            activation: ta,
            recurrent_activation: tra,
            gru_reset: treset,
            direction: tdir,
            ..
        },
    ) = (&p.keras.op, &p.torch.op)
    else {
        return;
    };
    let label = pair_label(&p.keras.name, &p.torch.name);
    if kreset != treset {
        out.title_item(
            Id::GruLayoutResetAfter,
            "GRU reset gate placement differs",
            format!("`{}` Keras {kreset:?}, torch {treset:?}", p.keras.name),
        );
        out.add(
            Id::GruLayoutResetAfter,
            Severity::High,
            2.0,
            vec![ev(
                "GRU reset gate",
                format!("{kreset:?}"),
                format!("{treset:?}"),
                label.clone(),
            )],
            "no torch equivalent of reset_after=False: write a custom GRU cell with U_h(r ⊙ h)",
            "keras.layers.GRU(..., reset_after=True)",
        );
    }
    if *kd > 0.0 || *krd > 0.0 {
        out.title_item(
            Id::RnnDropoutAndMasking,
            "RNN dropout or masking has no torch counterpart",
            format!(
                "`{}` dropout={}, recurrent_dropout={} inside the cell",
                p.keras.name,
                py(*kd),
                py(*krd)
            ),
        );
        out.add(
            Id::RnnDropoutAndMasking,
            Severity::Medium,
            kd.max(*krd),
            vec![ev(
                format!("{cell:?} dropout inside the cell (same mask every step)"),
                format!("dropout={}, recurrent_dropout={}", py(*kd), py(*krd)),
                "none (torch RNN dropout acts between stacked layers only)",
                label.clone(),
            )],
            "a custom cell with variational dropout masks on the input and the hidden state",
            "dropout=0.0, recurrent_dropout=0.0 if the port is the reference",
        );
    }
    if kdir != tdir {
        out.set_title(
            Id::ArchitectureMismatch,
            format!(
                "RNN direction differs at `{}`: Keras {kdir:?}, torch {tdir:?}",
                p.keras.name
            ),
        );
        out.add(
            Id::ArchitectureMismatch,
            Severity::High,
            1.0,
            vec![ev(
                "RNN direction",
                format!("{kdir:?}"),
                format!("{tdir:?}"),
                label.clone(),
            )],
            format!("match the Keras direction/merge ({kdir:?})"),
            "nothing to change on this side",
        );
    }
    let x = ActCtx {
        label,
        krank: None,
        trank: None,
        kl: None,
        tl: None,
        tname: &p.torch.name,
    };
    compare_act(&x, ka, ta, out);
    if let (Some(a), Some(b)) = (kra, tra) {
        compare_act(&x, a, b, out);
    }
}
