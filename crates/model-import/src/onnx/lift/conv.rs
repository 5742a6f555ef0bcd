//! Convolutions: `Conv` and `ConvTranspose`, and the padding and per-axis attributes
//! pooling shares with them.

use model_ir::{Activation, DataLayout, Op, Padding, ParamLayout, ParamRole};

use super::{Lifter, R, Registry};

pub(super) fn register(reg: &mut Registry) {
    reg.add(
        &["Conv"],
        &[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "pads",
            "strides",
        ],
        |l, i| l.conv(i),
    );
    reg.add(
        &["ConvTranspose"],
        &[
            "auto_pad",
            "dilations",
            "group",
            "kernel_shape",
            "output_padding",
            "output_shape",
            "pads",
            "strides",
        ],
        |l, i| l.conv_transpose(i),
    );
}

impl Lifter<'_> {
    pub(super) fn padding(&self, i: usize, rank: usize) -> R<Padding> {
        let a = self.attrs(i);
        match a.string("auto_pad")?.as_deref() {
            Some("SAME_UPPER") => return Ok(Padding::SameUpper),
            Some("SAME_LOWER") => return Ok(Padding::SameLower),
            Some("VALID") => return Ok(Padding::Valid),
            Some("NOTSET") | Some("") | None => {}
            Some(other) => return Err(self.malformed(i, format!("auto_pad={other}"))),
        }
        let pads = a.ints("pads")?.unwrap_or_else(|| vec![0; 2 * rank]);
        if pads.len() != 2 * rank || pads.iter().any(|&p| p < 0) {
            return Err(self.malformed(i, format!("pads {pads:?} for {rank} spatial axes")));
        }
        if pads.iter().all(|&p| p == 0) {
            return Ok(Padding::Valid);
        }
        let p: Vec<usize> = pads.iter().map(|&v| v as usize).collect();
        Ok(Padding::Explicit {
            begin: p[..rank].to_vec(),
            end: p[rank..].to_vec(),
        })
    }

    pub(super) fn spatial_attr(&self, i: usize, name: &str, rank: usize) -> R<Vec<usize>> {
        let v = self.attrs(i).ints(name)?.unwrap_or_else(|| vec![1; rank]);
        if v.len() != rank || v.iter().any(|&x| x < 1) {
            return Err(self.malformed(i, format!("{name} {v:?} for {rank} spatial axes")));
        }
        Ok(v.into_iter().map(|x| x as usize).collect())
    }

    fn conv(&mut self, i: usize) -> R<()> {
        let x = self.rt(i, 0)?;
        let w = self.konst(i, 1)?;
        let ws = w.shape().to_vec();
        if ws.len() < 3 {
            return Err(self.malformed(i, format!("weight of shape {ws:?}")));
        }
        let rank = ws.len() - 2;
        let group = usize::try_from(self.attrs(i).int_or("group", 1)?)
            .ok()
            .filter(|&g| g >= 1)
            .ok_or_else(|| self.malformed(i, "group < 1"))?;
        let kernel_size = ws[2..].to_vec();
        if let Some(k) = self.attrs(i).ints("kernel_shape")?
            && k.iter().map(|&v| v as usize).collect::<Vec<_>>() != kernel_size
        {
            return Err(self.malformed(
                i,
                format!("kernel_shape {k:?} disagrees with weight {ws:?}"),
            ));
        }
        let strides = self.spatial_attr(i, "strides", rank)?;
        let dilation = self.spatial_attr(i, "dilations", rank)?;
        let padding = self.padding(i, rank)?;
        let filters = ws[0];
        if filters % group != 0 {
            return Err(self.malformed(i, format!("{filters} filters in {group} groups")));
        }
        let depthwise = group > 1 && ws[1] == 1;
        let layout = if depthwise {
            ParamLayout::DepthwiseOutOneSpatial { rank }
        } else {
            ParamLayout::ConvOutInSpatial { rank }
        };
        let mut params = vec![self.param(i, 1, ParamRole::Kernel, layout, "weight")?];
        if self.g.input(i, 2).is_some() {
            params.push(self.param(i, 2, ParamRole::Bias, ParamLayout::Vector, "bias")?);
        }
        let use_bias = params.len() == 2;
        let layout = DataLayout::ChannelsFirst;
        let op = if depthwise {
            Op::DepthwiseConv {
                rank,
                depth_multiplier: filters / group,
                kernel_size,
                strides,
                dilation,
                padding,
                layout,
                use_bias,
                activation: Activation::Linear,
            }
        } else {
            Op::Conv {
                rank,
                filters,
                kernel_size,
                strides,
                dilation,
                groups: group,
                padding,
                layout,
                use_bias,
                activation: Activation::Linear,
            }
        };
        let out = self.out(i, 0)?;
        self.emit(i, op, vec![x], vec![out.clone()], params, "Conv")?;
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        Ok(())
    }

    fn conv_transpose(&mut self, i: usize) -> R<()> {
        let x = self.rt(i, 0)?;
        let ws = self.konst(i, 1)?.shape().to_vec();
        if ws.len() < 3 {
            return Err(self.malformed(i, format!("weight of shape {ws:?}")));
        }
        let rank = ws.len() - 2;
        let a = self.attrs(i);
        let group = usize::try_from(a.int_or("group", 1)?)
            .ok()
            .filter(|&g| g >= 1)
            .ok_or_else(|| self.malformed(i, "group < 1"))?;
        if ws[0] % group != 0 {
            return Err(self.malformed(i, format!("{} input channels in {group} groups", ws[0])));
        }
        let kernel_size = ws[2..].to_vec();
        if let Some(k) = a.ints("kernel_shape")?
            && k.iter().map(|&v| v as usize).collect::<Vec<_>>() != kernel_size
        {
            return Err(self.malformed(
                i,
                format!("kernel_shape {k:?} disagrees with weight {ws:?}"),
            ));
        }
        let strides = self.spatial_attr(i, "strides", rank)?;
        let dilation = self.spatial_attr(i, "dilations", rank)?;
        let mut output_padding: Vec<usize> = match a.ints("output_padding")? {
            Some(p) if p.len() == rank && p.iter().all(|&v| v >= 0) => {
                p.into_iter().map(|v| v as usize).collect()
            }
            Some(p) => return Err(self.malformed(i, format!("output_padding {p:?}"))),
            None => vec![0; rank],
        };
        let auto_pad = a.string("auto_pad")?.unwrap_or_default();
        let same = auto_pad.starts_with("SAME");
        let output_shape = a.ints("output_shape")?;
        if output_shape.is_some() && auto_pad == "VALID" {
            return Err(self.unsupported(i, "output_shape together with auto_pad=VALID"));
        }
        let padding = if same || output_shape.is_some() {
            // ONNX fixes the output length (`output_shape`, or input × stride under SAME_*)
            // and derives the pads from it: total = s·(n−1) + output_padding + (k−1)·d + 1 −
            // length, split evenly, the odd one at the end for SAME_UPPER and at the start
            // otherwise. The pads depend on the input length, which must be known.
            let v = self.g.input(i, 0).unwrap_or_default();
            let in_sp: Vec<usize> = self
                .g
                .shape(v)
                .filter(|s| s.len() == rank + 2)
                .and_then(|s| {
                    s[2..]
                        .iter()
                        .map(|d| d.known().and_then(|k| usize::try_from(k).ok()))
                        .collect()
                })
                .ok_or_else(|| {
                    self.unsupported(
                        i,
                        format!(
                            "auto_pad={auto_pad} / output_shape on an input of unknown spatial size"
                        ),
                    )
                })?;
            if let Some(p) = a.ints("pads")?
                && p.iter().any(|&v| v != 0)
            {
                return Err(self.unsupported(
                    i,
                    format!("pads {p:?} together with output_shape or auto_pad={auto_pad}"),
                ));
            }
            let target: Vec<usize> = match &output_shape {
                Some(o) if o.len() == rank || o.len() == rank + 2 => o[o.len() - rank..]
                    .iter()
                    .map(|&v| usize::try_from(v).ok().filter(|&v| v > 0))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| self.malformed(i, format!("output_shape {o:?}")))?,
                Some(o) => {
                    return Err(
                        self.malformed(i, format!("output_shape {o:?} for {rank} spatial axes"))
                    );
                }
                None => in_sp.iter().zip(&strides).map(|(n, s)| n * s).collect(),
            };
            let (mut begin, mut end) = (vec![0; rank], vec![0; rank]);
            for ax in 0..rank {
                let eff = (kernel_size[ax].max(1) - 1) * dilation[ax] + 1;
                let full =
                    (strides[ax] * in_sp[ax].saturating_sub(1) + output_padding[ax] + eff) as i64;
                let total = full - target[ax] as i64;
                if total < 0 {
                    // A longer output than the scatter reaches: zeros at the end (ONNX
                    // Runtime and the reference agree only without SAME_*).
                    if same {
                        return Err(self.unsupported(
                            i,
                            format!(
                                "auto_pad={auto_pad} with an output {} longer than the transposed convolution's {full} on spatial axis {ax}",
                                target[ax]
                            ),
                        ));
                    }
                    output_padding[ax] += (-total) as usize;
                    continue;
                }
                let total = total as usize;
                let (b, e) = if auto_pad == "SAME_UPPER" {
                    (total / 2, total - total / 2)
                } else {
                    (total - total / 2, total / 2)
                };
                begin[ax] = b;
                end[ax] = e;
            }
            Padding::Explicit { begin, end }
        } else {
            self.padding(i, rank)?
        };
        let mut params = vec![self.param(
            i,
            1,
            ParamRole::Kernel,
            ParamLayout::ConvTransposeInOutSpatial { rank },
            "weight",
        )?];
        if self.g.input(i, 2).is_some() {
            params.push(self.param(i, 2, ParamRole::Bias, ParamLayout::Vector, "bias")?);
        }
        let use_bias = params.len() == 2;
        let op = Op::ConvTranspose {
            rank,
            filters: ws[1]
                .checked_mul(group)
                .ok_or_else(|| self.malformed(i, format!("group {group}")))?,
            kernel_size,
            strides,
            dilation,
            groups: group,
            padding,
            output_padding: Some(output_padding),
            layout: DataLayout::ChannelsFirst,
            use_bias,
            activation: Activation::Linear,
        };
        let out = self.out(i, 0)?;
        self.emit(i, op, vec![x], vec![out.clone()], params, "ConvTranspose")?;
        self.set_layout(&out, Some(DataLayout::ChannelsFirst));
        Ok(())
    }
}
