//! Sliding-window geometry shared by convolution and pooling: output sizes and pads per axis
//! (the IR's [`Padding::window`], which documents the formulas and their framework sources),
//! and the table from (output position, window offset) to input position.

use model_ir::{Padding, WindowError};

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
            let (kk, dd) = (k[i], d[i]);
            let axis = padding
                .window(i, in_sp[i], kk, s[i], dd, ceil_mode)
                .map_err(|e| match e {
                    WindowError::NonPositive => format!(
                        "kernel {k:?}, strides {s:?} and dilation {d:?} must be positive"
                    ),
                    WindowError::TooLarge { window, padded } => format!(
                        "window {window} (kernel {kk}, dilation {dd}) is larger than the padded input {padded} on spatial axis {i}"
                    ),
                })?;
            out_sp.push(axis.out);
            pad_b.push(axis.begin);
            pad_e.push(axis.end);
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
