//! Learning-rate schedules: each Keras schedule's exact torch scheduler, and the reverse.

use super::*;

pub(super) fn integral(x: f64) -> Option<u64> {
    (x >= 0.0 && x.fract().abs() < f64::EPSILON && x < 1e15).then_some(x as u64)
}

fn per_step(kind: SchedulerKind) -> SchedulerConfig {
    SchedulerConfig {
        kind,
        interval: StepInterval::Step,
        steps_per_epoch: None,
    }
}

/// The torch scheduler (stepped after every `optimizer.step()`) and initial `lr` that follow a
/// Keras schedule exactly, or why none does. Keras evaluates the schedule at the raw step
/// count s = t − 1 for update t; a per-step torch scheduler has `last_epoch` = t − 1 then.
pub fn keras_schedule_to_torch(s: &Schedule) -> Result<(f64, SchedulerConfig), NoEquivalent> {
    let staircase_granularity = || {
        none_t(
            &[Id::LrScheduleGranularity],
            "the decay_steps is not a whole number of steps, so no torch scheduler stepped per \
             batch changes the learning rate at the same steps",
        )
    };
    match *s {
        Schedule::ExponentialDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
        } => {
            if staircase {
                let d = integral(decay_steps)
                    .filter(|&d| d > 0)
                    .ok_or_else(staircase_granularity)?;
                let kind = if d == 1 {
                    SchedulerKind::ExponentialLR { gamma: decay_rate }
                } else {
                    SchedulerKind::StepLR {
                        step_size: d,
                        gamma: decay_rate,
                    }
                };
                Ok((initial_learning_rate, per_step(kind)))
            } else {
                // η0·r^(s/D) = η0·(r^(1/D))^s.
                let gamma = if (decay_steps - 1.0).abs() > 0.0 {
                    decay_rate.powf(1.0 / decay_steps)
                } else {
                    decay_rate
                };
                Ok((
                    initial_learning_rate,
                    per_step(SchedulerKind::ExponentialLR { gamma }),
                ))
            }
        }
        Schedule::PiecewiseConstantDecay {
            ref boundaries,
            ref values,
        } => {
            let v0 = values[0];
            let ratio = if values.len() > 1 && v0.abs() > 0.0 {
                values[1] / v0
            } else {
                1.0
            };
            let geometric = v0.abs() > 0.0
                && values
                    .windows(2)
                    .all(|w| (w[1] - w[0] * ratio).abs() <= 1e-12 * w[0].abs().max(w[1].abs()));
            if !geometric {
                return Err(none_t(
                    &[Id::LrScheduleGranularity],
                    "the values are not a constant ratio apart; MultiStepLR multiplies by one \
                     gamma (torch needs a LambdaLR stepped after every optimizer.step())",
                ));
            }
            // value i applies for step > boundaries[i-1], i.e. from step floor(b) + 1.
            let milestones = boundaries
                .iter()
                .map(|&b| if b < 0.0 { 0 } else { b.floor() as u64 + 1 })
                .collect();
            Ok((
                v0,
                per_step(SchedulerKind::MultiStepLR {
                    milestones,
                    gamma: ratio,
                }),
            ))
        }
        Schedule::PolynomialDecay {
            initial_learning_rate,
            decay_steps,
            end_learning_rate,
            power,
            cycle,
        } => {
            let n = integral(decay_steps).filter(|&n| n > 0);
            if cycle || (power - 1.0).abs() > 0.0 || n.is_none() {
                return Err(none_t(
                    &[Id::LrScheduleGranularity],
                    "only a linear (power=1), non-cycling PolynomialDecay over whole steps has an \
                     emulated torch counterpart (LinearLR); otherwise use a LambdaLR stepped after \
                     every optimizer.step()",
                ));
            }
            let total_iters = n.unwrap_or(1);
            // η0 + (η_end − η0)·min(s, N)/N = base·(start + (end − start)·min(s, N)/N).
            let (base, start_factor, end_factor) = if end_learning_rate <= initial_learning_rate {
                (
                    initial_learning_rate,
                    1.0,
                    end_learning_rate / initial_learning_rate,
                )
            } else {
                (
                    end_learning_rate,
                    initial_learning_rate / end_learning_rate,
                    1.0,
                )
            };
            if !(start_factor > 0.0 && start_factor <= 1.0 && (0.0..=1.0).contains(&end_factor)) {
                return Err(none_t(
                    &[Id::LrScheduleGranularity],
                    "LinearLR needs 0 < start_factor <= 1 and 0 <= end_factor <= 1 (a learning rate \
                     that starts at 0 or changes sign has no LinearLR form)",
                ));
            }
            Ok((
                base,
                per_step(SchedulerKind::LinearLR {
                    start_factor,
                    end_factor,
                    total_iters,
                }),
            ))
        }
        Schedule::InverseTimeDecay { .. } => Err(none_t(
            &[Id::LrScheduleGranularity],
            "torch has no inverse-time scheduler; use LambdaLR(lambda s: 1/(1 + rate·s/decay_steps)) \
             stepped after every optimizer.step()",
        )),
        Schedule::CosineDecay {
            decay_steps,
            alpha,
            warmup_target,
            ..
        } => Err(none_t(
            &[Id::CosineDecaySemantics],
            if warmup_target.is_some() {
                "the linear warm-up followed by cosine decay has no single torch scheduler"
                    .to_string()
            } else {
                format!(
                    "CosineAnnealingLR(T_max={}, eta_min={}·lr) stepped per batch agrees only for \
                     the first {} updates: past T_max it rises again while Keras holds alpha·lr",
                    py(decay_steps),
                    py(alpha),
                    py(decay_steps + 1.0)
                )
            },
        )),
        Schedule::CosineDecayRestarts {
            initial_learning_rate,
            first_decay_steps,
            t_mul,
            m_mul,
            alpha,
        } => {
            let t_0 = integral(first_decay_steps).filter(|&n| n > 0);
            let t_mult = integral(t_mul).filter(|&n| n > 0);
            match (t_0, t_mult) {
                (Some(t_0), Some(t_mult)) if (m_mul - 1.0).abs() == 0.0 => Ok((
                    initial_learning_rate,
                    per_step(SchedulerKind::CosineAnnealingWarmRestarts {
                        t_0,
                        t_mult,
                        eta_min: alpha * initial_learning_rate,
                    }),
                )),
                _ => Err(none_t(
                    &[Id::CosineDecaySemantics],
                    "CosineAnnealingWarmRestarts restarts at the same peak (m_mul=1) after whole-step \
                     periods growing by an integer T_mult",
                )),
            }
        }
    }
}

/// The Keras schedule that reproduces a torch scheduler (with `base_lr` the group's `lr` when
/// the scheduler was created), or why none does. Keras evaluates schedules every batch, so a
/// scheduler stepped per epoch maps only where its staircase is one Keras has.
pub fn torch_scheduler_to_keras(
    base_lr: f64,
    s: &SchedulerConfig,
) -> Result<Schedule, NoEquivalent> {
    let k = match s.interval {
        StepInterval::Step => 1,
        StepInterval::Epoch => s.steps_per_epoch.ok_or_else(|| {
            none_k(
                &[Id::LrScheduleGranularity],
                "the scheduler steps once per epoch; without steps_per_epoch there is no per-batch \
                 Keras schedule",
            )
        })?,
    };
    let staircase = || {
        none_k(
            &[Id::LrScheduleGranularity],
            format!(
                "{} stepped once per epoch is a staircase in batches; Keras's schedule of that \
                 name is continuous",
                s.kind.class_name()
            ),
        )
    };
    match s.kind {
        SchedulerKind::StepLR { step_size, gamma } => Ok(Schedule::ExponentialDecay {
            initial_learning_rate: base_lr,
            decay_steps: (step_size * k) as f64,
            decay_rate: gamma,
            staircase: true,
        }),
        SchedulerKind::ExponentialLR { gamma } => Ok(Schedule::ExponentialDecay {
            initial_learning_rate: base_lr,
            decay_steps: k as f64,
            decay_rate: gamma,
            staircase: k > 1,
        }),
        SchedulerKind::MultiStepLR {
            ref milestones,
            gamma,
        } => {
            let mut ms = milestones.clone();
            ms.sort_unstable();
            let zeros = ms.iter().filter(|&&m| m == 0).count();
            let mut value = base_lr * gamma.powf(zeros as f64);
            let mut boundaries = Vec::new();
            let mut values = vec![value];
            let mut i = zeros;
            while i < ms.len() {
                let m = ms[i];
                let n = ms[i..].iter().take_while(|&&x| x == m).count();
                value *= gamma.powf(n as f64);
                // lr changes when last_epoch = floor(step/k) reaches m, i.e. for step > m·k − 1.
                boundaries.push((m * k - 1) as f64);
                values.push(value);
                i += n;
            }
            Ok(Schedule::PiecewiseConstantDecay { boundaries, values })
        }
        SchedulerKind::CosineAnnealingLR { t_max, .. } => Err(none_k(
            &[Id::CosineDecaySemantics],
            format!(
                "CosineAnnealingLR is periodic past T_max={} and Keras CosineDecay holds its floor",
                py(t_max)
            ),
        )),
        SchedulerKind::CosineAnnealingWarmRestarts {
            t_0,
            t_mult,
            eta_min,
        } => {
            if k > 1 {
                return Err(staircase());
            }
            if base_lr.abs() == 0.0 {
                return Err(none_k(
                    &[Id::CosineDecaySemantics],
                    "alpha = eta_min/lr needs a non-zero lr",
                ));
            }
            Ok(Schedule::CosineDecayRestarts {
                initial_learning_rate: base_lr,
                first_decay_steps: t_0 as f64,
                t_mul: t_mult as f64,
                m_mul: 1.0,
                alpha: eta_min / base_lr,
            })
        }
        SchedulerKind::LinearLR {
            start_factor,
            end_factor,
            total_iters,
        } => {
            if k > 1 {
                return Err(staircase());
            }
            Ok(Schedule::PolynomialDecay {
                initial_learning_rate: base_lr * start_factor,
                decay_steps: total_iters as f64,
                end_learning_rate: base_lr * end_factor,
                power: 1.0,
                cycle: false,
            })
        }
        SchedulerKind::OneCycleLR(_) => Err(none_k(
            &[Id::LrScheduleGranularity],
            "Keras has no one-cycle schedule and does not cycle momentum",
        )),
    }
}
