//! Merge layers: element-wise merges and `Concatenate`.

use model_ir::{MergeOp, Op};

use super::Converted;
use crate::error::ErrorKind;
use crate::keras::config::Cfg;

/// `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`, `Concatenate`.
pub(super) fn merge(c: &Cfg<'_>, notes: &mut Vec<String>) -> Result<Converted, ErrorKind> {
    let class = c.class;
    let op = match class {
        "Add" => MergeOp::Add,
        "Subtract" => MergeOp::Subtract,
        "Multiply" => MergeOp::Multiply,
        "Average" => MergeOp::Average,
        "Maximum" => MergeOp::Maximum,
        "Minimum" => MergeOp::Minimum,
        _ => MergeOp::Concatenate(c.i64_or("axis", -1, notes)?),
    };
    let arity = if class == "Subtract" {
        (2, 2)
    } else {
        (1, usize::MAX)
    };
    Ok(Converted {
        op: Op::Merge { op },
        groups: Vec::new(),
        outputs: 1,
        arity,
        transpose_first: None,
    })
}
