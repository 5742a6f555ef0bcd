//! Recurrent layers: SimpleRNN, LSTM and GRU (both reset placements), one or two directions,
//! with backpropagation through time.
//!
//! Parameters are read into a canonical form per direction: `Wx` `(in, G·H)`, `Wh` `(H, G·H)`,
//! `bx`, `bh` `(G·H)` with gate blocks in the order LSTM `i, f, c, o`, GRU `z, r, h`, whatever
//! the stored layout (`RnnInGates` Keras `(in, G·H)`, `RnnGatesIn` torch `(G·H, in)`,
//! `OnnxRnnWeight` `(dirs, G·H, in)`, `GruBiasRows` Keras `(2, 3H)`, `OnnxRnnBias`
//! `(dirs, 2·G·H)`) and gate order (`GateOrder` of the layout, else of the op). Gradients are
//! mapped back through the same reorder/transpose. A missing bias is zero.
//!
//! Cells, with `a = x·Wx + bx + h·Wh + bh` split into gate blocks, `σ` = recurrent_activation
//! (sigmoid, or either hard-sigmoid definition), `φ` = activation (tanh by default):
//! - SimpleRNN: `h' = φ(a)` (`keras/src/layers/rnn/simple_rnn.py`, torch `nn.RNN`).
//! - LSTM: `i = σ(a_i)`, `f = σ(a_f)`, `g = φ(a_c)`, `o = σ(a_o)`, `c' = f⊙c + i⊙g`,
//!   `h' = o⊙φ(c')` (`keras/src/layers/rnn/lstm.py`, torch `nn.LSTM`).
//! - GRU, reset after the matmul (Keras `reset_after=True`, torch, ONNX
//!   `linear_before_reset=1`): `z = σ(x_z + h_z)`, `r = σ(x_r + h_r)`,
//!   `n = φ(x_h + r⊙(h·Wh_h + bh_h))`, `h' = z⊙h + (1−z)⊙n`, where `x_* = x·Wx_* + bx_*`,
//!   `h_* = h·Wh_* + bh_*` (`keras/src/layers/rnn/gru.py`, torch `nn.GRU`).
//! - GRU, reset before the matmul (Keras `reset_after=False`, ONNX `linear_before_reset=0`):
//!   `n = φ(x_h + (r⊙h)·Wh_h + bh_h)`.
//!
//! ONNX extensions (parameters by role, from the ONNX importer): peepholes `P`
//! (`ParamRole::Peephole`, `(dirs, 3H)` in ONNX block order `i, o, f`) add `p_i⊙c` and
//! `p_f⊙c` (previous cell state) to the input and forget pre-activations and `p_o⊙c'` (new cell
//! state) to the output gate's, so BPTT adds `da_o⊙p_o` to `dc` and `da_i⊙p_i + da_f⊙p_f` to
//! `dc_prev`; `initial_h` / `initial_c` (`(dirs, N, H)`) replace the zero initial states and
//! receive the gradient left after the first step; `sequence_lens` (`(N)` integers,
//! `ParamRole::SequenceLengths`, not trained) ends entry `b` after its first `lens[b]` time
//! steps: a step at `t ≥ lens[b]` leaves that entry's state unchanged and outputs zero (so a
//! reverse direction starts at `lens[b] − 1` from the initial state, and the last state is the
//! one at the last valid step, as ONNX Runtime computes), and in BPTT passes the state
//! gradients through untouched.
//!
//! Sequences: the initial state is zero unless given. `Forward` runs `t = 0..T`; `Reverse` (ONNX) runs
//! `T−1..0` and writes each output at its own time step; Keras `go_backwards` runs `T−1..0` and
//! returns the outputs in processing order (reversed); `Bidirectional` runs both and writes the
//! reverse outputs at their own time steps (Keras flips the backward sequence back), merged by
//! concat (`[fw, bw]` on the feature axis, as torch), sum, mul, ave, or returned separately.
//! The last output is the final state of each direction. States (`return_state`): Keras order
//! `[h, c]` per direction (`(N, H)` each, forward first); for nodes from PyTorch, torch's
//! `h_n`, `c_n` stacked over directions `(dirs, N, H)`. `batch_first` selects `(N, T, F)`
//! versus `(T, N, F)` for input and sequence output. Cell dropout (`dropout`,
//! `recurrent_dropout`) is not applied (identity).
//!
//! BPTT, per step in reverse processing order with `dh` (from the outputs and the next step) and
//! `dc`: LSTM `dc += dh⊙o⊙φ'(c')`, `da_o = dh⊙φ(c')⊙σ'`, `da_i = dc⊙g⊙σ'`, `da_f = dc⊙c⊙σ'`,
//! `da_c = dc⊙i⊙φ'`, `dc_prev = dc⊙f`; GRU after `dz = dh⊙(h − n)`, `dn = dh⊙(1 − z)`,
//! `dp_n = dn⊙φ'`, `dr = dp_n⊙(h·Wh_h + bh_h)`, recurrent part of the `h` block `dp_n⊙r`;
//! GRU before `d(r⊙h) = dp_n·Wh_hᵀ`, `dr = d(r⊙h)⊙h`; then `dWh += hᵀ·da_h`, `dbh += Σ da_h`,
//! `dh_prev += dh⊙z (GRU) + da_h·Whᵀ`; finally `dWx = xᵀ·dA`, `dbx = Σ dA`, `dx = dA·Wxᵀ`.

use std::collections::BTreeMap;

use model_ir::{
    Activation, BidiMerge, Framework, GateOrder, GruReset, ParamRole, RnnBias, RnnCell,
    RnnDirection,
};
use ndarray::{Array1, Array2, Array3, ArrayD, Axis, IxDyn, concatenate, s};

use super::activation::{apply, check, derivative};
use super::util::{matmul, permuted, standard};
use super::{BwdCx, FwdCx, NodeCx, NodeGrads, Out, ParamShapes, Saved};
use crate::error::EngineError;
use crate::float::Float;

mod params;
use params::{DirParams, PMap, read_shape, resolve_dir};

/// Canonical values of one direction.
struct Weights<F> {
    wx: Array2<F>,
    wh: Array2<F>,
    bx: Array1<F>,
    bh: Array1<F>,
    /// LSTM peepholes `(p_i, p_f, p_o)`, each `(H)`.
    peep: Option<[Array1<F>; 3]>,
    /// Initial hidden state `(N, H)` (zero unless given).
    h0: Option<Array2<F>>,
    /// Initial cell state `(N, H)` (zero unless given).
    c0: Option<Array2<F>>,
}

/// Gradients of one direction from [`Rnn::bptt`].
struct DirGrads<F> {
    /// `dA` by original time `(T, N, G·H)`.
    da_x: Array3<F>,
    dwh: Array2<F>,
    dbh: Array1<F>,
    /// `(dp_i, dp_f, dp_o)` when the layer has peepholes.
    dpeep: Option<[Array1<F>; 3]>,
    /// Gradient of the initial hidden and cell states `(N, H)`.
    dh0: Array2<F>,
    dc0: Array2<F>,
}

#[derive(Debug, Clone)]
pub(crate) struct Rnn {
    cell: RnnCell,
    units: usize,
    input_size: usize,
    activation: Activation,
    gate_activation: Activation,
    reset: GruReset,
    direction: RnnDirection,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
    batch_first: bool,
    /// States as torch's `(dirs, N, H)` stacks rather than Keras's per-direction `(N, H)`.
    torch_states: bool,
    dirs: Vec<DirParams>,
    n_outputs: usize,
    /// ONNX LSTM peephole parameter `(dirs, 3H)`, blocks `i, o, f`.
    peephole: Option<String>,
    /// ONNX `initial_h` / `initial_c` parameters `(dirs, N, H)`.
    initial_h: Option<String>,
    initial_c: Option<String>,
    /// ONNX `sequence_lens`: batch entry `b` has its first `lens[b]` time steps; the steps
    /// past it leave the state unchanged and output zeros.
    lens: Option<Vec<usize>>,
}

fn canonical_order(cell: RnnCell) -> GateOrder {
    match cell {
        RnnCell::SimpleRnn => GateOrder::Single,
        RnnCell::Lstm => GateOrder::Ifco,
        RnnCell::Gru => GateOrder::Zrh,
    }
}

impl Rnn {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn compile(
        cx: &NodeCx<'_>,
        cell: RnnCell,
        units: usize,
        activation: &Activation,
        recurrent_activation: &Option<Activation>,
        gate_order: GateOrder,
        bias: RnnBias,
        gru_reset: Option<GruReset>,
        direction: RnnDirection,
        return_sequences: bool,
        return_state: bool,
        go_backwards: bool,
        batch_first: bool,
    ) -> Result<Rnn, EngineError> {
        cx.inputs(1, 1).map_err(|_| {
            cx.unsupported("initial-state inputs (only zero initial states are executed)")
        })?;
        check(cx, activation)?;
        let gate_activation = recurrent_activation.clone().unwrap_or(Activation::Sigmoid);
        for a in [activation, &gate_activation] {
            if matches!(
                a,
                Activation::Softmax { .. } | Activation::LogSoftmax { .. }
            ) {
                return Err(cx.unsupported("a softmax as a recurrent activation"));
            }
        }
        if units == 0 {
            return Err(cx.invalid("units is 0"));
        }
        let ndir = match direction {
            RnnDirection::Bidirectional(_) => 2,
            _ => 1,
        };
        if ndir == 2 && go_backwards {
            return Err(cx.unsupported("go_backwards inside a bidirectional layer"));
        }
        let g = cell.gates();
        let gh = g * units;
        let mut dirs = Vec::new();
        let mut input_size = None;
        for d in 0..ndir {
            let dp = resolve_dir(cx, cell, gate_order, bias, d, ndir, units)?;
            let wx_shape = read_shape(cx, &dp.wx)?;
            let wh_shape = read_shape(cx, &dp.wh)?;
            if wx_shape.len() != 2 || wx_shape[1] != gh {
                return Err(cx.invalid(format!(
                    "input kernel `{}` reads as {wx_shape:?}, expected (in, {gh})",
                    dp.wx.name
                )));
            }
            if wh_shape != [units, gh] {
                return Err(cx.invalid(format!(
                    "recurrent kernel `{}` reads as {wh_shape:?}, expected [{units}, {gh}]",
                    dp.wh.name
                )));
            }
            for b in [&dp.bx, &dp.bh].into_iter().flatten() {
                let bs = read_shape(cx, b)?;
                if bs != [gh] {
                    return Err(cx.invalid(format!(
                        "bias `{}` reads as {bs:?}, expected [{gh}]",
                        b.name
                    )));
                }
            }
            if *input_size.get_or_insert(wx_shape[0]) != wx_shape[0] {
                return Err(cx.invalid("the two directions have different input sizes"));
            }
            dirs.push(dp);
        }
        let reset = match (cell, gru_reset) {
            (RnnCell::Gru, None) => return Err(cx.invalid("a GRU without gru_reset")),
            (_, r) => r.unwrap_or(GruReset::AfterMatmul),
        };
        // States stacked over directions `(dirs, N, H)` (torch, ONNX) for nodes from PyTorch
        // and for every layer whose kernels are stored torch/ONNX style (an ONNX file from any
        // exporter); Keras's per-direction `(N, H)` otherwise.
        let torch_states =
            cx.node.origin.framework == Framework::Torch || dirs.iter().any(|d| d.wx.transposed);
        let extra = |role: ParamRole, shape_ok: &dyn Fn(&[usize]) -> bool, what: &str| match cx
            .opt_param(role)?
        {
            None => Ok(None),
            Some(p) if shape_ok(p.tensor.shape()) => Ok(Some(p.name.clone())),
            Some(p) => Err(cx.invalid(format!(
                "{} `{}` has shape {:?}, expected {what}",
                role.name(),
                p.name,
                p.tensor.shape()
            ))),
        };
        let lstm = cell == RnnCell::Lstm;
        let peephole = extra(
            ParamRole::Peephole,
            &|s| lstm && s == [ndir, 3 * units],
            &format!("[{ndir}, {}] on an LSTM", 3 * units),
        )?;
        let state_ok = |s: &[usize]| s.len() == 3 && s[0] == ndir && s[2] == units;
        let initial_h = extra(
            ParamRole::InitialHidden,
            &state_ok,
            &format!("[{ndir}, batch, {units}]"),
        )?;
        let initial_c = extra(
            ParamRole::InitialCell,
            &|s| lstm && state_ok(s),
            &format!("[{ndir}, batch, {units}] on an LSTM"),
        )?;
        let lens = match cx.opt_param(ParamRole::SequenceLengths)? {
            None => None,
            Some(p) => {
                let v = p.tensor.to_i64();
                if v.ndim() != 1 || v.iter().any(|&n| n < 1) {
                    return Err(cx.invalid(format!(
                        "sequence_lens `{}` must be a vector of positive lengths, got {:?}",
                        p.name,
                        v.iter().collect::<Vec<_>>()
                    )));
                }
                Some(v.iter().map(|&n| n as usize).collect())
            }
        };
        let rnn = Rnn {
            cell,
            units,
            input_size: input_size.unwrap_or(0),
            activation: activation.clone(),
            gate_activation,
            reset,
            direction,
            return_sequences,
            return_state,
            go_backwards,
            batch_first,
            torch_states,
            dirs,
            n_outputs: cx.node.outputs.len(),
            peephole,
            initial_h,
            initial_c,
            lens,
        };
        cx.outputs(rnn.produced())?;
        Ok(rnn)
    }

    fn state_count(&self) -> usize {
        if matches!(self.cell, RnnCell::Lstm) {
            2
        } else {
            1
        }
    }

    fn split_main(&self) -> bool {
        matches!(self.direction, RnnDirection::Bidirectional(BidiMerge::None))
    }

    /// How many outputs the layer produces.
    fn produced(&self) -> usize {
        let main = if self.split_main() { 2 } else { 1 };
        let states = if !self.return_state {
            0
        } else if self.torch_states {
            self.state_count()
        } else {
            self.state_count() * self.dirs.len()
        };
        main + states
    }

    fn merged_width(&self) -> usize {
        match self.direction {
            RnnDirection::Bidirectional(BidiMerge::Concat) => 2 * self.units,
            _ => self.units,
        }
    }

    /// `(T, N)` of an input shape.
    fn tn(&self, x: &[usize]) -> Result<(usize, usize), String> {
        if x.len() != 3 || x[2] != self.input_size {
            return Err(format!(
                "expects a rank-3 input with {} features ({}), got {x:?}",
                self.input_size,
                if self.batch_first {
                    "batch, time, features"
                } else {
                    "time, batch, features"
                }
            ));
        }
        Ok(if self.batch_first {
            (x[1], x[0])
        } else {
            (x[0], x[1])
        })
    }

    pub(crate) fn infer(
        &self,
        ps: &ParamShapes,
        xs: &[&[usize]],
    ) -> Result<Vec<Vec<usize>>, String> {
        let (t, n) = self.tn(xs[0])?;
        if t == 0 {
            return Err("a sequence of length 0".into());
        }
        if let Some(lens) = &self.lens
            && (lens.len() != n || lens.iter().any(|&l| l > t))
        {
            return Err(format!(
                "sequence_lens {lens:?} does not fit a batch of {n} sequences of {t} steps"
            ));
        }
        for name in [&self.initial_h, &self.initial_c].into_iter().flatten() {
            let s = ps.get(name).map(Vec::as_slice).unwrap_or_default();
            if s.get(1) != Some(&n) {
                return Err(format!(
                    "initial state `{name}` has shape {s:?}, which does not fit a batch of {n}"
                ));
            }
        }
        let w = self.merged_width();
        let seq = |w: usize| {
            if self.batch_first {
                vec![n, t, w]
            } else {
                vec![t, n, w]
            }
        };
        let main = |w: usize| {
            if self.return_sequences {
                seq(w)
            } else {
                vec![n, w]
            }
        };
        let mut out = if self.split_main() {
            vec![main(self.units), main(self.units)]
        } else {
            vec![main(w)]
        };
        if self.return_state {
            if self.torch_states {
                for _ in 0..self.state_count() {
                    out.push(vec![self.dirs.len(), n, self.units]);
                }
            } else {
                for _ in 0..self.dirs.len() * self.state_count() {
                    out.push(vec![n, self.units]);
                }
            }
        }
        out.truncate(self.n_outputs);
        Ok(out)
    }

    fn weights<F: Float>(&self, params: &crate::params::ParamStore<F>, d: usize) -> Weights<F> {
        let gh = self.cell.gates() * self.units;
        let dp = &self.dirs[d];
        let two = |m: &PMap| {
            let a = m.read(super::param(params, &m.name), gh);
            match a.into_dimensionality::<ndarray::Ix2>() {
                Ok(v) => v,
                Err(e) => panic!("rnn kernel: {e}"),
            }
        };
        let one = |m: &Option<PMap>| match m {
            Some(m) => match m
                .read(super::param(params, &m.name), gh)
                .into_dimensionality::<ndarray::Ix1>()
            {
                Ok(v) => v,
                Err(e) => panic!("rnn bias: {e}"),
            },
            None => Array1::zeros(gh),
        };
        let h = self.units;
        let row = |name: &Option<String>| {
            name.as_ref().map(|n| {
                let a = super::param(params, n).index_axis(Axis(0), d).to_owned();
                match a.into_dimensionality::<ndarray::Ix2>() {
                    Ok(v) => v,
                    Err(e) => panic!("rnn initial state: {e}"),
                }
            })
        };
        let peep = self.peephole.as_ref().map(|n| {
            let p = super::param(params, n).index_axis(Axis(0), d).to_owned();
            let blk = |b: usize| {
                p.slice_axis(Axis(0), ndarray::Slice::from(b * h..(b + 1) * h))
                    .to_owned()
                    .into_dimensionality::<ndarray::Ix1>()
                    .unwrap_or_else(|e| panic!("rnn peephole: {e}"))
            };
            // ONNX order i, o, f.
            [blk(0), blk(2), blk(1)]
        });
        Weights {
            wx: two(&dp.wx),
            wh: two(&dp.wh),
            bx: one(&dp.bx),
            bh: one(&dp.bh),
            peep,
            h0: row(&self.initial_h),
            c0: row(&self.initial_c),
        }
    }

    /// Processing order of time steps for direction `d`.
    fn order(&self, d: usize, t: usize) -> Vec<usize> {
        let reverse = match self.direction {
            RnnDirection::Forward => self.go_backwards,
            RnnDirection::Reverse => true,
            RnnDirection::Bidirectional(_) => d == 1,
        };
        if reverse {
            (0..t).rev().collect()
        } else {
            (0..t).collect()
        }
    }

    /// Output time index of processing step `k` (Keras `go_backwards` keeps processing order).
    /// Batch entries whose sequence has ended before time step `ti` (ONNX `sequence_lens`).
    fn ended(&self, ti: usize) -> Vec<usize> {
        match &self.lens {
            Some(lens) => (0..lens.len()).filter(|&b| ti >= lens[b]).collect(),
            None => Vec::new(),
        }
    }

    /// The sequence output of one direction `(T, N, H)` by output time, zero past each
    /// entry's length.
    fn sequence<F: Float>(&self, hs: &Array3<F>, order: &[usize]) -> Array3<F> {
        let mut seq = Array3::<F>::zeros(hs.raw_dim());
        for k in 0..order.len() {
            let mut row = seq.index_axis_mut(Axis(0), self.out_pos(order, k));
            row.assign(&hs.index_axis(Axis(0), k));
            for b in self.ended(order[k]) {
                row.index_axis_mut(Axis(0), b).fill(F::zero());
            }
        }
        seq
    }

    fn out_pos(&self, order: &[usize], k: usize) -> usize {
        if self.go_backwards { k } else { order[k] }
    }

    fn time_major<F: Float>(&self, x: &ArrayD<F>) -> Array3<F> {
        let a = if self.batch_first {
            permuted(x, &[1, 0, 2])
        } else {
            standard(x.clone())
        };
        match a.into_dimensionality::<ndarray::Ix3>() {
            Ok(v) => v,
            Err(e) => panic!("rnn input: {e}"),
        }
    }

    fn seq_out<F: Float>(&self, a: Array3<F>) -> ArrayD<F> {
        let a = a.into_dyn();
        if self.batch_first {
            permuted(&a, &[1, 0, 2])
        } else {
            a
        }
    }

    fn gate(&self, block: usize) -> &Activation {
        let candidate = match self.cell {
            RnnCell::SimpleRnn => 0,
            RnnCell::Lstm => 2,
            RnnCell::Gru => 2,
        };
        if block == candidate {
            &self.activation
        } else {
            &self.gate_activation
        }
    }

    /// Runs one direction; returns the trace arrays `[A, Gt, C, PhiC, E, Hs]` of shape
    /// `(T, N, ·)` in processing order.
    fn run_dir<F: Float>(
        &self,
        w: &Weights<F>,
        x: &Array3<F>,
        order: &[usize],
    ) -> Result<Vec<Array3<F>>, String> {
        let (t, n, f) = x.dim();
        let h = self.units;
        let g = self.cell.gates();
        let gh = g * h;
        let xm = match x.view().into_shape_with_order((t * n, f)) {
            Ok(v) => v,
            Err(e) => return Err(e.to_string()),
        };
        let mut xw = matmul(&xm, &w.wx.view());
        xw += &w.bx;
        let xw = match xw.into_shape_with_order((t, n, gh)) {
            Ok(v) => v,
            Err(e) => return Err(e.to_string()),
        };
        let mut a_all = Array3::<F>::zeros((t, n, gh));
        let mut g_all = Array3::<F>::zeros((t, n, gh));
        let cw = if self.cell == RnnCell::Lstm { h } else { 0 };
        let mut c_all = Array3::<F>::zeros((t, n, cw));
        let mut phic_all = Array3::<F>::zeros((t, n, cw));
        let ew = if self.cell == RnnCell::Gru { h } else { 0 };
        let mut e_all = Array3::<F>::zeros((t, n, ew));
        let mut h_all = Array3::<F>::zeros((t, n, h));
        let mut hprev = w.h0.clone().unwrap_or_else(|| Array2::<F>::zeros((n, h)));
        let mut cprev = match &w.c0 {
            Some(c0) if cw > 0 => c0.clone(),
            _ => Array2::<F>::zeros((n, cw)),
        };
        for (k, &ti) in order.iter().enumerate() {
            let xt = xw.index_axis(Axis(0), ti);
            let (hnew, a, gates) = match self.cell {
                RnnCell::SimpleRnn => {
                    let mut a = matmul(&hprev.view(), &w.wh.view());
                    a += &xt;
                    a += &w.bh;
                    let hn = self.act2(&self.activation, &a)?;
                    (hn.clone(), a, hn)
                }
                RnnCell::Lstm => {
                    let mut a = matmul(&hprev.view(), &w.wh.view());
                    a += &xt;
                    a += &w.bh;
                    // Peepholes: i and f see the previous cell state, o the new one.
                    if let Some([pi, pf, _]) = &w.peep {
                        let mut ai = a.slice_mut(s![.., 0..h]);
                        ai += &(&cprev * pi);
                        let mut af = a.slice_mut(s![.., h..2 * h]);
                        af += &(&cprev * pf);
                    }
                    let mut gates = self.gates(&a)?;
                    let c = &gates.slice(s![.., h..2 * h]) * &cprev
                        + &(&gates.slice(s![.., 0..h]) * &gates.slice(s![.., 2 * h..3 * h]));
                    if let Some([_, _, po]) = &w.peep {
                        let mut ao = a.slice_mut(s![.., 3 * h..4 * h]);
                        ao += &(&c * po);
                        let o = self.act2(self.gate(3), &ao.to_owned())?;
                        gates.slice_mut(s![.., 3 * h..4 * h]).assign(&o);
                    }
                    let mut c = c;
                    for b in self.ended(ti) {
                        c.row_mut(b).assign(&cprev.row(b));
                    }
                    let phic = self.act2(&self.activation, &c)?;
                    let hn = &gates.slice(s![.., 3 * h..4 * h]) * &phic;
                    c_all.index_axis_mut(Axis(0), k).assign(&c);
                    phic_all.index_axis_mut(Axis(0), k).assign(&phic);
                    cprev = c;
                    (hn, a, gates)
                }
                RnnCell::Gru => {
                    let mut hw = matmul(&hprev.view(), &w.wh.view());
                    hw += &w.bh;
                    let mut a = Array2::<F>::zeros((n, gh));
                    {
                        let mut zr = a.slice_mut(s![.., 0..2 * h]);
                        zr.assign(&xt.slice(s![.., 0..2 * h]));
                        zr += &hw.slice(s![.., 0..2 * h]);
                    }
                    let zr_act =
                        self.act2(&self.gate_activation, &a.slice(s![.., 0..2 * h]).to_owned())?;
                    let r = zr_act.slice(s![.., h..2 * h]).to_owned();
                    let e = match self.reset {
                        GruReset::AfterMatmul => {
                            let e = hw.slice(s![.., 2 * h..3 * h]).to_owned();
                            let pre = &xt.slice(s![.., 2 * h..3 * h]) + &(&r * &e);
                            a.slice_mut(s![.., 2 * h..3 * h]).assign(&pre);
                            e
                        }
                        GruReset::BeforeMatmul => {
                            let rh = &r * &hprev;
                            let mut pre = matmul(&rh.view(), &w.wh.slice(s![.., 2 * h..3 * h]));
                            pre += &xt.slice(s![.., 2 * h..3 * h]);
                            pre += &w.bh.slice(s![2 * h..3 * h]);
                            a.slice_mut(s![.., 2 * h..3 * h]).assign(&pre);
                            rh
                        }
                    };
                    let nn =
                        self.act2(&self.activation, &a.slice(s![.., 2 * h..3 * h]).to_owned())?;
                    let z = zr_act.slice(s![.., 0..h]);
                    let hn = &z * &hprev + &(&z.mapv(|v| F::one() - v) * &nn);
                    let mut gates = Array2::<F>::zeros((n, gh));
                    gates.slice_mut(s![.., 0..2 * h]).assign(&zr_act);
                    gates.slice_mut(s![.., 2 * h..3 * h]).assign(&nn);
                    e_all.index_axis_mut(Axis(0), k).assign(&e);
                    (hn, a, gates)
                }
            };
            let mut hnew = hnew;
            for b in self.ended(ti) {
                hnew.row_mut(b).assign(&hprev.row(b));
            }
            a_all.index_axis_mut(Axis(0), k).assign(&a);
            g_all.index_axis_mut(Axis(0), k).assign(&gates);
            h_all.index_axis_mut(Axis(0), k).assign(&hnew);
            hprev = hnew;
        }
        Ok(vec![a_all, g_all, c_all, phic_all, e_all, h_all])
    }

    fn act2<F: Float>(&self, act: &Activation, a: &Array2<F>) -> Result<Array2<F>, String> {
        let y = apply(act, &a.clone().into_dyn())?;
        y.into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| e.to_string())
    }

    /// LSTM gate activations of the pre-activations `a` (N, 4H).
    fn gates<F: Float>(&self, a: &Array2<F>) -> Result<Array2<F>, String> {
        let h = self.units;
        let mut out = Array2::<F>::zeros(a.raw_dim());
        for b in 0..self.cell.gates() {
            let blk = a.slice(s![.., b * h..(b + 1) * h]).to_owned();
            out.slice_mut(s![.., b * h..(b + 1) * h])
                .assign(&self.act2(self.gate(b), &blk)?);
        }
        Ok(out)
    }

    pub(crate) fn forward<F: Float>(
        &self,
        cx: &mut FwdCx<'_, F>,
        xs: &[&ArrayD<F>],
    ) -> Result<Out<F>, String> {
        let x = self.time_major(xs[0]);
        let t = x.dim().0;
        let mut saved = Saved::default();
        let mut seqs = Vec::new();
        let mut lasts = Vec::new();
        let mut cells = Vec::new();
        for d in 0..self.dirs.len() {
            let w = self.weights(cx.params, d);
            let order = self.order(d, t);
            let trace = self.run_dir(&w, &x, &order)?;
            let hs = &trace[5];
            seqs.push(self.sequence(hs, &order));
            lasts.push(hs.index_axis(Axis(0), t - 1).to_owned());
            if self.cell == RnnCell::Lstm {
                cells.push(trace[2].index_axis(Axis(0), t - 1).to_owned());
            }
            saved.arrays.extend(trace.into_iter().map(|a| a.into_dyn()));
        }
        let mut ys = Vec::new();
        let merge = |a: Vec<ArrayD<F>>| -> Result<Vec<ArrayD<F>>, String> {
            Ok(match self.direction {
                RnnDirection::Bidirectional(m) => {
                    let last = a[0].ndim() - 1;
                    match m {
                        BidiMerge::Concat => vec![
                            concatenate(Axis(last), &[a[0].view(), a[1].view()])
                                .map_err(|e| e.to_string())?,
                        ],
                        BidiMerge::Sum => vec![&a[0] + &a[1]],
                        BidiMerge::Mul => vec![&a[0] * &a[1]],
                        BidiMerge::Ave => vec![(&a[0] + &a[1]).mapv(|v| v * F::of(0.5))],
                        BidiMerge::None => a,
                    }
                }
                _ => a,
            })
        };
        if self.return_sequences {
            let parts: Vec<ArrayD<F>> = seqs.iter().map(|s| s.clone().into_dyn()).collect();
            for y in merge(parts)? {
                ys.push(
                    self.seq_out(
                        y.into_dimensionality::<ndarray::Ix3>()
                            .map_err(|e| e.to_string())?,
                    ),
                );
            }
        } else {
            ys.extend(merge(lasts.iter().map(|l| l.clone().into_dyn()).collect())?);
        }
        if self.return_state {
            if self.torch_states {
                let stack = |v: &[Array2<F>]| -> Result<ArrayD<F>, String> {
                    let views: Vec<_> = v.iter().map(|a| a.view().insert_axis(Axis(0))).collect();
                    Ok(concatenate(Axis(0), &views)
                        .map_err(|e| e.to_string())?
                        .into_dyn())
                };
                ys.push(stack(&lasts)?);
                if self.cell == RnnCell::Lstm {
                    ys.push(stack(&cells)?);
                }
            } else {
                for d in 0..self.dirs.len() {
                    ys.push(lasts[d].clone().into_dyn());
                    if self.cell == RnnCell::Lstm {
                        ys.push(cells[d].clone().into_dyn());
                    }
                }
            }
        }
        ys.truncate(self.n_outputs);
        Ok(Out { ys, saved })
    }

    pub(crate) fn backward<F: Float>(&self, cx: &BwdCx<'_, F>) -> NodeGrads<F> {
        let x = self.time_major(cx.xs[0]);
        let (t, n, f) = x.dim();
        let h = self.units;
        let ndir = self.dirs.len();
        // Per-direction gradients w.r.t. the sequence (output time order), last h and last c.
        let mut dseq: Vec<Array3<F>> = (0..ndir).map(|_| Array3::zeros((t, n, h))).collect();
        let mut dlast: Vec<Array2<F>> = (0..ndir).map(|_| Array2::zeros((n, h))).collect();
        let mut dclast: Vec<Array2<F>> = (0..ndir).map(|_| Array2::zeros((n, h))).collect();
        let seq_of = |d: usize| -> Array3<F> {
            let hs = to3(&cx.saved.arrays[d * 6 + 5]);
            self.sequence(&hs, &self.order(d, t))
        };
        let last_of = |d: usize| -> Array2<F> {
            to3(&cx.saved.arrays[d * 6 + 5])
                .index_axis(Axis(0), t - 1)
                .to_owned()
        };
        let n_main = if self.split_main() { 2 } else { 1 };
        // Split the main output gradient(s) into directions.
        let mains: Vec<ArrayD<F>> = cx.dys[..n_main.min(cx.dys.len())].to_vec();
        for (mi, dm) in mains.iter().enumerate() {
            let dm = if self.return_sequences {
                if self.batch_first {
                    permuted(dm, &[1, 0, 2])
                } else {
                    standard(dm.clone())
                }
            } else {
                dm.clone()
            };
            let parts: Vec<ArrayD<F>> = match self.direction {
                RnnDirection::Bidirectional(m) => {
                    let last = dm.ndim() - 1;
                    match m {
                        BidiMerge::Concat => vec![
                            dm.slice_axis(Axis(last), ndarray::Slice::from(0..h))
                                .to_owned(),
                            dm.slice_axis(Axis(last), ndarray::Slice::from(h..2 * h))
                                .to_owned(),
                        ],
                        BidiMerge::Sum => vec![dm.clone(), dm.clone()],
                        BidiMerge::Ave => vec![dm.mapv(|v| v * F::of(0.5)); 2],
                        BidiMerge::Mul => {
                            let (o0, o1) = if self.return_sequences {
                                (seq_of(0).into_dyn(), seq_of(1).into_dyn())
                            } else {
                                (last_of(0).into_dyn(), last_of(1).into_dyn())
                            };
                            vec![&dm * &o1, &dm * &o0]
                        }
                        BidiMerge::None => {
                            let mut v =
                                vec![ArrayD::zeros(dm.raw_dim()), ArrayD::zeros(dm.raw_dim())];
                            v[mi] = dm.clone();
                            v
                        }
                    }
                }
                _ => vec![dm.clone()],
            };
            for (d, p) in parts.into_iter().enumerate() {
                if self.return_sequences {
                    dseq[d] += &to3(&p);
                } else {
                    dlast[d] += &to2(&p);
                }
            }
        }
        if self.return_state {
            let states = &cx.dys[n_main.min(cx.dys.len())..];
            if self.torch_states {
                for (si, s) in states.iter().enumerate() {
                    for d in 0..ndir {
                        let v = s.index_axis(Axis(0), d).to_owned();
                        if si == 0 {
                            dlast[d] += &to2(&v);
                        } else {
                            dclast[d] += &to2(&v);
                        }
                    }
                }
            } else {
                let per = self.state_count();
                for (si, s) in states.iter().enumerate() {
                    let (d, which) = (si / per, si % per);
                    if which == 0 {
                        dlast[d] += &to2(s);
                    } else {
                        dclast[d] += &to2(s);
                    }
                }
            }
        }
        let mut dx_tm = Array2::<F>::zeros((t * n, f));
        let mut acc: BTreeMap<String, ArrayD<F>> = BTreeMap::new();
        let gh = self.cell.gates() * h;
        let xm = match x.view().into_shape_with_order((t * n, f)) {
            Ok(v) => v.to_owned(),
            Err(e) => panic!("{e}"),
        };
        for d in 0..ndir {
            let w = self.weights(cx.params, d);
            let order = self.order(d, t);
            let tr: Vec<Array3<F>> = (0..6).map(|i| to3(&cx.saved.arrays[d * 6 + i])).collect();
            let DirGrads {
                da_x,
                dwh,
                dbh,
                dpeep,
                dh0,
                dc0,
            } = self.bptt(&w, &tr, &order, &dseq[d], &dlast[d], &dclast[d]);
            // Direction `d`'s row of a `(dirs, ...)` parameter.
            let mut put_row = |name: &Option<String>, g: ArrayD<F>| {
                if let Some(name) = name {
                    let stored = super::param(cx.params, name).shape().to_vec();
                    let full = acc
                        .entry(name.clone())
                        .or_insert_with(|| ArrayD::zeros(IxDyn(&stored)));
                    full.index_axis_mut(Axis(0), d).assign(&g);
                }
            };
            if let Some([gpi, gpf, gpo]) = dpeep {
                // ONNX order i, o, f.
                let p = concatenate(Axis(0), &[gpi.view(), gpo.view(), gpf.view()])
                    .unwrap_or_else(|e| panic!("{e}"));
                put_row(&self.peephole, p.into_dyn());
            }
            put_row(&self.initial_h, dh0.into_dyn());
            put_row(&self.initial_c, dc0.into_dyn());
            // da_x: (T, N, GH) indexed by original time.
            let dam = match da_x.into_shape_with_order((t * n, gh)) {
                Ok(v) => v,
                Err(e) => panic!("{e}"),
            };
            let dwx = matmul(&xm.t(), &dam.view());
            let dbx = dam.sum_axis(Axis(0));
            dx_tm += &matmul(&dam.view(), &w.wx.t());
            let dp = &self.dirs[d];
            let mut put = |m: &PMap, g: ArrayD<F>| {
                let stored = super::param(cx.params, &m.name).shape().to_vec();
                let full = m.write(&g, &stored, gh);
                match acc.get_mut(&m.name) {
                    Some(a) => *a += &full,
                    None => {
                        acc.insert(m.name.clone(), full);
                    }
                }
            };
            put(&dp.wx, dwx.into_dyn());
            put(&dp.wh, dwh.into_dyn());
            if let Some(b) = &dp.bx {
                put(b, dbx.into_dyn());
            }
            if let Some(b) = &dp.bh {
                put(b, dbh.into_dyn());
            }
        }
        let dx = match dx_tm.into_shape_with_order((t, n, f)) {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        NodeGrads {
            dxs: vec![Some(self.seq_out(dx))],
            dparams: acc.into_iter().collect(),
        }
    }

    /// Backpropagation through time for one direction.
    fn bptt<F: Float>(
        &self,
        w: &Weights<F>,
        tr: &[Array3<F>],
        order: &[usize],
        dseq: &Array3<F>,
        dlast: &Array2<F>,
        dclast: &Array2<F>,
    ) -> DirGrads<F> {
        let (a_all, g_all, c_all, phic_all, e_all, h_all) =
            (&tr[0], &tr[1], &tr[2], &tr[3], &tr[4], &tr[5]);
        let t = order.len();
        let (_, n, gh) = a_all.dim();
        let h = self.units;
        let mut da_x = Array3::<F>::zeros((t, n, gh));
        let mut dwh = Array2::<F>::zeros((h, gh));
        let mut dbh = Array1::<F>::zeros(gh);
        let mut dh_next = dlast.clone();
        let mut dc_next = dclast.clone();
        let mut dpeep = w.peep.as_ref().map(|_| {
            [
                Array1::<F>::zeros(h),
                Array1::<F>::zeros(h),
                Array1::<F>::zeros(h),
            ]
        });
        let h0 = w.h0.clone().unwrap_or_else(|| Array2::zeros((n, h)));
        let c0 = w.c0.clone().unwrap_or_else(|| Array2::zeros((n, h)));
        let one = F::one();
        for k in (0..t).rev() {
            let ti = order[k];
            let mut dh = dh_next.clone();
            dh += &dseq.index_axis(Axis(0), self.out_pos(order, k));
            // An ended entry's step passes its state through unchanged: no gradient reaches
            // the step, and the incoming state gradients go straight to the previous state.
            let ended = self.ended(ti);
            let (dh_through, dc_through) = (dh_next.clone(), dc_next.clone());
            for &b in &ended {
                dh.row_mut(b).fill(F::zero());
                if self.cell == RnnCell::Lstm {
                    dc_next.row_mut(b).fill(F::zero());
                }
            }
            let a = a_all.index_axis(Axis(0), k);
            let g = g_all.index_axis(Axis(0), k);
            let hprev = if k == 0 {
                h0.clone()
            } else {
                h_all.index_axis(Axis(0), k - 1).to_owned()
            };
            let dact = |act: &Activation,
                        pre: ndarray::ArrayView2<'_, F>,
                        post: ndarray::ArrayView2<'_, F>,
                        up: &Array2<F>| {
                let mut out = up.clone();
                ndarray::Zip::from(&mut out)
                    .and(&pre)
                    .and(&post)
                    .for_each(|o, &x, &y| *o *= derivative(act, x, y));
                out
            };
            let mut dpre = Array2::<F>::zeros((n, gh));
            // Gradient of the recurrent matmul output (h·Wh + bh), for dWh, dbh and dh_prev.
            let mut dhw = Array2::<F>::zeros((n, gh));
            let mut dh_prev = Array2::<F>::zeros((n, h));
            match self.cell {
                RnnCell::SimpleRnn => {
                    let d = dact(&self.activation, a, g, &dh);
                    dpre.assign(&d);
                    dhw.assign(&d);
                }
                RnnCell::Lstm => {
                    let c = c_all.index_axis(Axis(0), k);
                    let phic = phic_all.index_axis(Axis(0), k);
                    let cprev = if k == 0 {
                        c0.clone()
                    } else {
                        c_all.index_axis(Axis(0), k - 1).to_owned()
                    };
                    let (i, fg, cg, o) = (
                        g.slice(s![.., 0..h]),
                        g.slice(s![.., h..2 * h]),
                        g.slice(s![.., 2 * h..3 * h]),
                        g.slice(s![.., 3 * h..4 * h]),
                    );
                    let blk = |b: usize| s![.., b * h..(b + 1) * h];
                    let dao = dact(self.gate(3), a.slice(blk(3)), o, &(&dh * &phic));
                    let dphic = &dh * &o;
                    let mut dc = dc_next.clone();
                    dc += &dact(&self.activation, c, phic, &dphic);
                    if let (Some([_, _, po]), Some([_, _, gpo])) = (&w.peep, &mut dpeep) {
                        dc += &(&dao * po);
                        *gpo += &(&dao * &c).sum_axis(Axis(0));
                    }
                    let dai = dact(self.gate(0), a.slice(blk(0)), i, &(&dc * &cg));
                    let daf = dact(self.gate(1), a.slice(blk(1)), fg, &(&dc * &cprev));
                    let dac = dact(self.gate(2), a.slice(blk(2)), cg, &(&dc * &i));
                    dc_next = &dc * &fg;
                    if let (Some([pi, pf, _]), Some([gpi, gpf, _])) = (&w.peep, &mut dpeep) {
                        dc_next += &(&dai * pi);
                        dc_next += &(&daf * pf);
                        *gpi += &(&dai * &cprev).sum_axis(Axis(0));
                        *gpf += &(&daf * &cprev).sum_axis(Axis(0));
                    }
                    for (b, d) in [dai, daf, dac, dao].iter().enumerate() {
                        dpre.slice_mut(blk(b)).assign(d);
                    }
                    dhw.assign(&dpre);
                }
                RnnCell::Gru => {
                    let z = g.slice(s![.., 0..h]);
                    let r = g.slice(s![.., h..2 * h]);
                    let nn = g.slice(s![.., 2 * h..3 * h]);
                    let e = e_all.index_axis(Axis(0), k);
                    let dz = &dh * &(&hprev - &nn);
                    let dn = &dh * &z.mapv(|v| one - v);
                    dh_prev += &(&dh * &z);
                    let dpn = dact(&self.activation, a.slice(s![.., 2 * h..3 * h]), nn, &dn);
                    dpre.slice_mut(s![.., 2 * h..3 * h]).assign(&dpn);
                    let dr = match self.reset {
                        GruReset::AfterMatmul => {
                            dhw.slice_mut(s![.., 2 * h..3 * h]).assign(&(&dpn * &r));
                            &dpn * &e
                        }
                        GruReset::BeforeMatmul => {
                            // n-block: pre = (r⊙h)·Wh_h + ...; e = r⊙h.
                            let whh = w.wh.slice(s![.., 2 * h..3 * h]);
                            let drh = matmul(&dpn.view(), &whh.t());
                            let gw = matmul(&e.t(), &dpn.view());
                            dwh.slice_mut(s![.., 2 * h..3 * h]).scaled_add(one, &gw);
                            dbh.slice_mut(s![2 * h..3 * h])
                                .scaled_add(one, &dpn.sum_axis(Axis(0)));
                            dh_prev += &(&drh * &r);
                            &drh * &hprev
                        }
                    };
                    let dzp = dact(&self.gate_activation, a.slice(s![.., 0..h]), z, &dz);
                    let drp = dact(&self.gate_activation, a.slice(s![.., h..2 * h]), r, &dr);
                    dpre.slice_mut(s![.., 0..h]).assign(&dzp);
                    dpre.slice_mut(s![.., h..2 * h]).assign(&drp);
                    dhw.slice_mut(s![.., 0..h]).assign(&dzp);
                    dhw.slice_mut(s![.., h..2 * h]).assign(&drp);
                }
            }
            // Recurrent matmul: the GRU-before h-block was handled above (its dhw block is 0).
            dwh += &matmul(&hprev.t(), &dhw.view());
            dbh += &dhw.sum_axis(Axis(0));
            dh_prev += &matmul(&dhw.view(), &w.wh.t());
            for &b in &ended {
                dh_prev.row_mut(b).assign(&dh_through.row(b));
                if self.cell == RnnCell::Lstm {
                    dc_next.row_mut(b).assign(&dc_through.row(b));
                }
            }
            da_x.index_axis_mut(Axis(0), ti).assign(&dpre);
            dh_next = dh_prev;
        }
        let dc0 = if self.cell == RnnCell::Lstm {
            dc_next
        } else {
            Array2::zeros((n, h))
        };
        DirGrads {
            da_x,
            dwh,
            dbh,
            dpeep,
            dh0: dh_next,
            dc0,
        }
    }
}

fn to3<F: Float>(a: &ArrayD<F>) -> Array3<F> {
    match a.clone().into_dimensionality::<ndarray::Ix3>() {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn to2<F: Float>(a: &ArrayD<F>) -> Array2<F> {
    match a.clone().into_dimensionality::<ndarray::Ix2>() {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}
