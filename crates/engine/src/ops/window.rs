//! Sliding-window geometry shared by convolution and pooling: output sizes, pads per
//! [`Padding`] rule, and the table from (output position, window offset) to input position.
//!
//! Per spatial axis with input `n`, kernel `k`, stride `s`, dilation `d`, effective kernel
//! `e = (k − 1)·d + 1` and pads `(b, a)` from [`Padding::pads_for`]:
//! - TF `'same'` (`SameUpper`, extra pad at the end; `SameLower` at the start): `out = ⌈n/s⌉`
//!   (`tensorflow/core/framework/kernel_shape_util.cc`, `GetWindowedOutputSizeVerbose`).
//! - otherwise `out = ⌊(n + b + a − e)/s⌋ + 1`; with `ceil_mode` (torch pooling) `⌈·⌉ + 1`, minus
//!   one when the last window would start inside the end padding
//!   (`aten/src/ATen/native/Pool.h`, `pooling_output_shape_pad_lr`).

use model_ir::Padding;

/// Sentinel for a window position that falls into the padding.
pub(crate) const PAD: usize = usize::MAX;

/// The geometry of one windowed op on one input size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) in_sp: Vec<usize>,
    pub(crate) out_sp: Vec<usize>,
    pub(crate) k: Vec<usize>,
    pub(crate) s: Vec<usize>,
    pub(crate) d: Vec<usize>,
    pub(crate) pad_b: Vec<usize>,
    pub(crate) pad_e: Vec<usize>,
}

impl Window {
    pub(crate) fn new(
        padding: &Padding,
        in_sp: &[usize],
        k: &[usize],
        s: &[usize],
        d: &[usize],
        ceil_mode: bool,
    ) -> Result<Window, String> {
        let r = in_sp.len();
        if k.len() != r || s.len() != r || d.len() != r {
            return Err(format!(
                "window of rank {} (kernel {k:?}, strides {s:?}, dilation {d:?}) on {r} spatial axes",
                k.len()
            ));
        }
        let mut out_sp = Vec::with_capacity(r);
        let mut pad_b = Vec::with_capacity(r);
        let mut pad_e = Vec::with_capacity(r);
        for i in 0..r {
            let (n, kk, ss, dd) = (in_sp[i], k[i], s[i], d[i]);
            if kk == 0 || ss == 0 || dd == 0 {
                return Err(format!(
                    "kernel {k:?}, strides {s:?} and dilation {d:?} must be positive"
                ));
            }
            let eff = (kk - 1) * dd + 1;
            let (b, a) = padding.pads_for(i, n, kk, ss, dd);
            let out = match padding {
                Padding::SameUpper | Padding::SameLower => n.div_ceil(ss),
                _ => {
                    let total = n + b + a;
                    if total < eff {
                        return Err(format!(
                            "window {eff} (kernel {kk}, dilation {dd}) is larger than the padded input {total} on spatial axis {i}"
                        ));
                    }
                    let num = total - eff;
                    if ceil_mode {
                        let mut o = num.div_ceil(ss) + 1;
                        if (o - 1) * ss >= n + b {
                            o -= 1;
                        }
                        o
                    } else {
                        num / ss + 1
                    }
                }
            };
            out_sp.push(out);
            pad_b.push(b);
            pad_e.push(a);
        }
        Ok(Window {
            in_sp: in_sp.to_vec(),
            out_sp,
            k: k.to_vec(),
            s: s.to_vec(),
            d: d.to_vec(),
            pad_b,
            pad_e,
        })
    }

    pub(crate) fn in_size(&self) -> usize {
        self.in_sp.iter().product()
    }

    pub(crate) fn out_size(&self) -> usize {
        self.out_sp.iter().product()
    }

    pub(crate) fn k_size(&self) -> usize {
        self.k.iter().product()
    }

    /// For output position `p` (row-major over `out_sp`) and window offset `q` (row-major over
    /// `k`), entry `p·K + q` is the row-major input position, or [`PAD`].
    pub(crate) fn table(&self) -> Vec<usize> {
        position_table(
            &self.out_sp,
            &self.in_sp,
            &self.k,
            &self.s,
            &self.d,
            &self.pad_b,
        )
    }

    /// For each output position, how many window offsets fall inside the padded extent
    /// `[−b, n + a)` on every axis (torch `count_include_pad=True` divisor).
    pub(crate) fn padded_counts(&self) -> Vec<usize> {
        let r = self.in_sp.len();
        let mut counts = vec![0; self.out_size()];
        let mut o = vec![0usize; r];
        for cnt in counts.iter_mut() {
            let mut total = 1;
            #[allow(clippy::needless_range_loop)]
            for a in 0..r {
                let lo = -(self.pad_b[a] as isize);
                let hi = (self.in_sp[a] + self.pad_e[a]) as isize;
                let mut n_in = 0;
                for j in 0..self.k[a] {
                    let pos = (o[a] * self.s[a] + j * self.d[a]) as isize - self.pad_b[a] as isize;
                    if pos >= lo && pos < hi {
                        n_in += 1;
                    }
                }
                total *= n_in;
            }
            *cnt = total;
            advance(&mut o, &self.out_sp);
        }
        counts
    }
}

/// The gather/scatter table of a strided, dilated window: for position `p` of `from_sp` and
/// window offset `q` of `k` (both row-major), entry `p·K + q` is the row-major position
/// `p·s + q·d − offset` in `to_sp`, or [`PAD`] when it falls outside. A convolution maps output
/// to input positions (offset = leading pad); a transposed convolution input to output
/// positions (offset = crop).
pub(crate) fn position_table(
    from_sp: &[usize],
    to_sp: &[usize],
    k: &[usize],
    s: &[usize],
    d: &[usize],
    offset: &[usize],
) -> Vec<usize> {
    let r = from_sp.len();
    let kk: usize = k.iter().product();
    let n_from: usize = from_sp.iter().product();
    let mut table = vec![PAD; n_from * kk];
    let mut o = vec![0usize; r];
    let mut q = vec![0usize; r];
    for p in 0..n_from {
        q.iter_mut().for_each(|v| *v = 0);
        for qi in 0..kk {
            let mut idx = 0usize;
            let mut inside = true;
            for a in 0..r {
                let pos = (o[a] * s[a] + q[a] * d[a]) as isize - offset[a] as isize;
                if pos < 0 || pos as usize >= to_sp[a] {
                    inside = false;
                    break;
                }
                idx = idx * to_sp[a] + pos as usize;
            }
            if inside {
                table[p * kk + qi] = idx;
            }
            advance(&mut q, k);
        }
        advance(&mut o, from_sp);
    }
    table
}

/// Row-major increment of a multi-index.
pub(crate) fn advance(idx: &mut [usize], dims: &[usize]) {
    for a in (0..idx.len()).rev() {
        idx[a] += 1;
        if idx[a] < dims[a] {
            return;
        }
        idx[a] = 0;
    }
}
