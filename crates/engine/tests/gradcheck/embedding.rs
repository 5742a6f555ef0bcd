//! Gradient checks: embedding.

use crate::act;
use crate::common::{Builder, Check, assert_grads};
use model_ir::{Activation, Framework, Op, ParamLayout, ParamRole};

#[test]
fn embedding_scatter_add_and_padding_idx() {
    for padding_idx in [None, Some(1)] {
        let mut b = Builder::new(Framework::Torch);
        let x = b.input("ids", &[4]);
        let t = b.param(
            "emb",
            ParamRole::Embeddings,
            ParamLayout::Embedding,
            &[5, 3],
        );
        let e = b.add(
            "emb",
            Op::Embedding {
                input_dim: 5,
                output_dim: 3,
                mask_zero: false,
                padding_idx,
            },
            &[&x],
            vec![t],
        );
        let y = b.add("act", act(Activation::Tanh), &[&e], vec![]);
        b.output(&y);
        // The padding row gets no gradient by design (torch), so FD would disagree there:
        // keep it out of the ids here; `conventions.rs` checks that it stays at zero.
        let ids = b.rng.ids(&[3, 4], 5).mapv(|i| {
            if Some(i as i64) == padding_idx {
                2.0
            } else {
                i
            }
        });
        let model = b.finish();
        let check = Check {
            skip_inputs: vec![0],
            ..Check::default()
        };
        assert_grads(&model, &[ids], &check);
    }
}
