//! Normalization layers: `BatchNormalization`, `LayerNormalization`, `InstanceNormalization`.

use model_ir::{
    BinaryOp, DType, DataLayout, Framework, MergeOp, MomentumForm, Op, Param, ParamLayout,
    ParamRole, ReduceKind, Tensor, UnaryOp, VarianceEstimate,
};

use crate::onnx::value::norm_axis;

use super::{Lifter, R, Registry};

pub(super) fn register(reg: &mut Registry) {
    reg.add(
        &["BatchNormalization"],
        // Whether batch or running statistics are used is the engine's mode, not the graph's:
        // `training_mode` and opset-6's `is_test` only say how the graph was exported.
        &["epsilon", "momentum", "spatial", "training_mode", "is_test"],
        |l, i| l.batch_norm(i),
    );
    // stash_type=1: statistics in float32, the precision the engine computes f32 inputs in.
    reg.add(
        &["LayerNormalization"],
        &["axis", "epsilon", "stash_type=1"],
        |l, i| l.layer_norm(i),
    );
    reg.add(&["InstanceNormalization"], &["epsilon"], |l, i| {
        l.instance_norm(i)
    });
}

impl Lifter<'_> {
    fn batch_norm(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        if a.int("spatial")? == Some(0) {
            return Err(self.unsupported(i, "spatial=0 (per-element statistics)"));
        }
        let epsilon = a.float_or("epsilon", 1e-5)?;
        let momentum = a.float_or("momentum", 0.9)?;
        let training_mode = a.int("training_mode")?.map(|v| v != 0);
        let used: Vec<usize> = (1..self.g.nodes[i].output.len())
            .filter(|&k| {
                self.g
                    .output(i, k)
                    .is_some_and(|o| !self.g.consumers(o).is_empty() || self.g.is_output(o))
            })
            .collect();
        if !used.is_empty() {
            if training_mode != Some(true) || used.iter().any(|&k| k > 2) {
                return Err(self.unsupported(
                    i,
                    format!(
                        "statistics outputs {used:?} are used (only running_mean/running_var of training_mode=1, opset 14+, are computed)"
                    ),
                ));
            }
            return self.batch_norm_training_outputs(i, epsilon, momentum);
        }
        let x = self.rt(i, 0)?;
        let rank = self.rank(self.g.input(i, 0).unwrap_or_default());
        let params = vec![
            self.param(i, 1, ParamRole::Gamma, ParamLayout::Vector, "weight")?,
            self.param(i, 2, ParamRole::Beta, ParamLayout::Vector, "bias")?,
            self.param(
                i,
                3,
                ParamRole::MovingMean,
                ParamLayout::Vector,
                "running_mean",
            )?,
            self.param(
                i,
                4,
                ParamRole::MovingVariance,
                ParamLayout::Vector,
                "running_var",
            )?,
        ];
        let op = Op::BatchNorm {
            axis: 1,
            epsilon,
            momentum: MomentumForm::KeepOld(momentum),
            running_variance: match self.framework {
                Framework::Torch => VarianceEstimate::Unbiased,
                Framework::Keras => VarianceEstimate::Biased,
            },
            center: true,
            scale: true,
            trainable: true,
            track_running_stats: true,
            training_mode,
        };
        let out = self.out(i, 0)?;
        let layout = self.layout_of(&x).or(if rank.is_some_and(|r| r >= 3) {
            Some(DataLayout::ChannelsFirst)
        } else {
            None
        });
        let name = self.emit(
            i,
            op,
            vec![x],
            vec![out.clone()],
            params,
            "BatchNormalization",
        )?;
        self.set_layout(&out, layout);
        self.bn_momenta.push((name, momentum));
        Ok(())
    }

    /// BatchNormalization-14/15 with `training_mode=1` whose updated running statistics are
    /// read: ONNX defines the node as one training step, whatever mode the graph is run in, so
    /// it lifts as IR nodes computing exactly that: batch mean `μ` and biased variance `σ²`
    /// over every axis but 1, `Y = γ·(x − μ)/√(σ² + ε) + β`,
    /// `running_mean = momentum·mean + (1 − momentum)·μ`, `running_var` likewise with `σ²`.
    fn batch_norm_training_outputs(&mut self, i: usize, epsilon: f64, momentum: f64) -> R<()> {
        let v = self.g.input(i, 0).unwrap_or_default();
        let rank = self
            .rank(v)
            .filter(|&r| r >= 2)
            .ok_or_else(|| self.unsupported(i, "training_mode=1 on a value of unknown rank"))?;
        let x = self.rt(i, 0)?;
        let y = self.out(i, 0)?;
        let base = self.scopes.node_name(&self.g.nodes[i], &self.g.name(i));
        let axes: Vec<i64> = std::iter::once(0).chain(2..rank as i64).collect();
        let channels = self.konst(i, 1)?.len();
        let mut per_channel = vec![channels];
        per_channel.resize(rank - 1, 1);
        let trainable = self.framework == Framework::Torch;
        let vector = |l: &mut Self, k: usize, suffix: &str| -> R<Param> {
            let mut p = l.param(i, k, ParamRole::Constant, ParamLayout::AsIs, suffix)?;
            p.trainable = trainable && l.g.input(i, k).is_some_and(|v| l.g.is_initializer(v));
            p.tensor = p.tensor.reshaped(&per_channel).ok_or_else(|| {
                l.malformed(i, format!("{suffix} of shape {:?}", p.tensor.shape()))
            })?;
            Ok(p)
        };
        let gamma = vector(self, 1, "weight")?;
        let beta = vector(self, 2, "bias")?;
        let scalar = |l: &Self, suffix: &str, v: f64| -> R<Param> {
            Ok(Param {
                name: format!("{base}.{suffix}"),
                role: ParamRole::Constant,
                layout: ParamLayout::AsIs,
                tensor: Tensor::from_f32(&[], vec![v as f32])
                    .ok_or_else(|| l.malformed(i, "scalar constant"))?,
                trainable: false,
            })
        };
        // momentum · running statistic, the constant part of each update.
        let kept = |l: &Self, k: usize, suffix: &str| -> R<Param> {
            let t = l.konst(i, k)?;
            if t.len() != channels {
                return Err(l.malformed(i, format!("{suffix} of shape {:?}", t.shape())));
            }
            let vals = t
                .to_f64()
                .iter()
                .map(|&r| r * momentum)
                .collect::<Vec<f64>>();
            let tensor = match t.dtype() {
                DType::F64 => Tensor::F64(
                    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[channels]), vals)
                        .map_err(|e| l.malformed(i, e))?,
                ),
                _ => Tensor::from_f32(&[channels], vals.iter().map(|&v| v as f32).collect())
                    .ok_or_else(|| l.malformed(i, suffix))?,
            };
            Ok(Param {
                name: format!("{base}.{suffix}"),
                role: ParamRole::Constant,
                layout: ParamLayout::AsIs,
                tensor,
                trainable: false,
            })
        };
        let v_ = |what: &str| format!("{y}::bn_{what}");
        let reduce = || Op::Reduce {
            reduce: ReduceKind::Mean,
            axes: axes.clone(),
            keepdims: true,
        };
        let cb = |op| Op::ConstantBinary {
            op,
            constant_first: false,
        };
        let mut steps: Vec<(Op, Vec<String>, String, Vec<Param>)> = vec![
            (reduce(), vec![x.clone()], v_("mean"), vec![]),
            (
                Op::Merge {
                    op: MergeOp::Subtract,
                },
                vec![x, v_("mean")],
                v_("centered"),
                vec![],
            ),
            (
                cb(BinaryOp::Pow),
                vec![v_("centered")],
                v_("squared"),
                vec![scalar(self, "two", 2.0)?],
            ),
            (reduce(), vec![v_("squared")], v_("variance"), vec![]),
            (
                cb(BinaryOp::Add),
                vec![v_("variance")],
                v_("variance_eps"),
                vec![scalar(self, "epsilon", epsilon)?],
            ),
            (
                Op::Unary { op: UnaryOp::Sqrt },
                vec![v_("variance_eps")],
                v_("std"),
                vec![],
            ),
            (
                Op::Merge {
                    op: MergeOp::Divide,
                },
                vec![v_("centered"), v_("std")],
                v_("normalized"),
                vec![],
            ),
            (
                cb(BinaryOp::Mul),
                vec![v_("normalized")],
                v_("scaled"),
                vec![gamma],
            ),
            (cb(BinaryOp::Add), vec![v_("scaled")], y.clone(), vec![beta]),
        ];
        for (k, stat, running) in [(1, "mean", "running_mean"), (2, "variance", "running_var")] {
            let Some(o) = self
                .g
                .output(i, k)
                .filter(|o| !self.g.consumers(o).is_empty() || self.g.is_output(o))
                .map(str::to_string)
            else {
                continue;
            };
            let flat = v_(&format!("{stat}_per_channel"));
            let blended = v_(&format!("{stat}_blended"));
            steps.push((
                Op::Squeeze { axes: axes.clone() },
                vec![v_(stat)],
                flat.clone(),
                vec![],
            ));
            steps.push((
                Op::Rescaling {
                    scale: 1.0 - momentum,
                    offset: 0.0,
                },
                vec![flat],
                blended.clone(),
                vec![],
            ));
            steps.push((
                cb(BinaryOp::Add),
                vec![blended],
                o,
                vec![kept(self, k + 2, &format!("momentum_times_{running}"))?],
            ));
        }
        let class = "BatchNormalization (training_mode=1, statistics outputs)";
        for (op, inputs, output, params) in steps {
            self.emit_named(i, &base, op, inputs, vec![output], params, class)?;
        }
        self.notes.push(format!(
            "{base}: BatchNormalization with training_mode=1 whose running statistics are read lifted as its training step (batch statistics, biased variance, momentum {momentum}), not as a BatchNorm layer"
        ));
        self.set_layout(&y, (rank >= 3).then_some(DataLayout::ChannelsFirst));
        Ok(())
    }

    fn layer_norm(&mut self, i: usize) -> R<()> {
        let a = self.attrs(i);
        let axis = a.int_or("axis", -1)?;
        let epsilon = a.float_or("epsilon", 1e-5)?;
        let v = self.g.input(i, 0).unwrap_or_default().to_string();
        let rank = self
            .rank(&v)
            .ok_or_else(|| self.unsupported(i, "LayerNormalization of a value of unknown rank"))?;
        let first =
            norm_axis(axis, rank, "LayerNormalization").map_err(|e| self.malformed(i, e))?;
        let axes: Vec<i64> = (first..rank).map(|ax| ax as i64 - rank as i64).collect();
        let x = self.rt(i, 0)?;
        let mut params = vec![self.param(
            i,
            1,
            ParamRole::Gamma,
            gamma_layout(self.konst(i, 1)?),
            "weight",
        )?];
        if self.g.input(i, 2).is_some() {
            let layout = gamma_layout(self.konst(i, 2)?);
            params.push(self.param(i, 2, ParamRole::Beta, layout, "bias")?);
        }
        let center = params.len() == 2;
        let out = self.out(i, 0)?;
        let name = self.emit(
            i,
            Op::LayerNorm {
                axes: axes.clone(),
                epsilon,
                center,
                scale: true,
                rms_scaling: false,
            },
            vec![x.clone()],
            vec![out],
            params,
            "LayerNormalization",
        )?;
        self.layer_norm_stats(i, &name, &x, &axes, epsilon)
    }

    /// LayerNormalization's optional outputs `Mean` and `InvStdDev` (`1/√(σ² + ε)`, biased
    /// variance), the normalized axes kept as size 1, as IR nodes of their own: a mean, and
    /// `(x − mean)²` averaged, plus ε, square-rooted and inverted.
    fn layer_norm_stats(
        &mut self,
        i: usize,
        name: &str,
        x: &str,
        axes: &[i64],
        epsilon: f64,
    ) -> R<()> {
        let used = |k: usize| {
            self.g
                .output(i, k)
                .filter(|o| !self.g.consumers(o).is_empty() || self.g.is_output(o))
                .map(str::to_string)
        };
        let (mean_out, inv_out) = (used(1), used(2));
        if mean_out.is_none() && inv_out.is_none() {
            return Ok(());
        }
        let base = format!("{name}.stats");
        let class = "LayerNormalization (Mean, InvStdDev)";
        let mean = mean_out.unwrap_or_else(|| format!("{name}::mean"));
        let reduce_mean = || Op::Reduce {
            reduce: ReduceKind::Mean,
            axes: axes.to_vec(),
            keepdims: true,
        };
        self.emit_named(
            i,
            &base,
            reduce_mean(),
            vec![x.to_string()],
            vec![mean.clone()],
            Vec::new(),
            class,
        )?;
        let Some(inv) = inv_out else {
            return Ok(());
        };
        let centered = format!("{inv}::centered");
        let squared = format!("{inv}::squared");
        let var = format!("{inv}::variance");
        let shifted = format!("{inv}::variance_eps");
        let std = format!("{inv}::std");
        // ε is a float attribute: its f32 value is exact in either compute precision.
        let konst = |suffix: &str, v: f64| -> R<Param> {
            Ok(Param {
                name: format!("{name}.{suffix}"),
                role: ParamRole::Constant,
                layout: ParamLayout::AsIs,
                tensor: Tensor::from_f32(&[], vec![v as f32])
                    .ok_or_else(|| self.malformed(i, "scalar constant"))?,
                trainable: false,
            })
        };
        let steps: Vec<(Op, Vec<String>, String, Vec<Param>)> = vec![
            (
                Op::Merge {
                    op: MergeOp::Subtract,
                },
                vec![x.to_string(), mean],
                centered.clone(),
                Vec::new(),
            ),
            (
                Op::ConstantBinary {
                    op: BinaryOp::Pow,
                    constant_first: false,
                },
                vec![centered],
                squared.clone(),
                vec![konst("two", 2.0)?],
            ),
            (reduce_mean(), vec![squared], var.clone(), Vec::new()),
            (
                Op::ConstantBinary {
                    op: BinaryOp::Add,
                    constant_first: false,
                },
                vec![var],
                shifted.clone(),
                vec![konst("epsilon", epsilon)?],
            ),
            (
                Op::Unary { op: UnaryOp::Sqrt },
                vec![shifted],
                std.clone(),
                Vec::new(),
            ),
            (
                Op::Unary {
                    op: UnaryOp::Reciprocal,
                },
                vec![std],
                inv,
                Vec::new(),
            ),
        ];
        for (op, inputs, output, params) in steps {
            self.emit_named(i, &base, op, inputs, vec![output], params, class)?;
        }
        Ok(())
    }

    fn instance_norm(&mut self, i: usize) -> R<()> {
        let epsilon = self.attrs(i).float_or("epsilon", 1e-5)?;
        let x = self.rt(i, 0)?;
        let scale = self.konst(i, 1)?;
        let groups = scale.len();
        let params = vec![
            self.param(i, 1, ParamRole::Gamma, ParamLayout::Vector, "weight")?,
            self.param(i, 2, ParamRole::Beta, ParamLayout::Vector, "bias")?,
        ];
        let out = self.out(i, 0)?;
        let name = self.emit(
            i,
            Op::GroupNorm {
                groups,
                axis: 1,
                epsilon,
                center: true,
                scale: true,
            },
            vec![x],
            vec![out.clone()],
            params,
            "InstanceNormalization",
        )?;
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        self.notes.push(format!("{name}: InstanceNormalization lifted as GroupNorm with one group per channel ({groups})"));
        Ok(())
    }
}

pub(super) fn gamma_layout(t: &Tensor) -> ParamLayout {
    if t.shape().len() == 1 {
        ParamLayout::Vector
    } else {
        ParamLayout::AsIs
    }
}
