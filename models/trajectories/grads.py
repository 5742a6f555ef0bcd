"""Shared inputs for the optimizer trajectories: parameters, gradients and the case list.

Both generators import this file, so Keras and PyTorch see bit-identical float32
initial values and gradients. numpy only; no framework import here.
"""

import numpy as np

STEPS = 60
SEED = 20240613
# name -> shape; small tensors of different ranks.
PARAMS = {"w": (4, 3), "b": (5,)}


def initial_params():
    rng = np.random.default_rng(SEED)
    return {n: rng.normal(0.0, 1.0, size=s).astype(np.float32) for n, s in PARAMS.items()}


def gradient_sequence():
    """Mixed-scale, heavy-tailed gradients: per-coordinate scales from 1e-6 to ~3,
    Student-t(2) noise, a x25 burst every 13th step, one coordinate per tensor that is
    always near zero (1e-7 scale) and occasional exact zeros."""
    rng = np.random.default_rng(SEED + 1)
    scales = {}
    for n, s in PARAMS.items():
        sc = np.exp(rng.uniform(np.log(1e-3), np.log(3.0), size=s))
        flat = sc.reshape(-1)
        flat[0] = 1e-7  # near-zero coordinate
        flat[-1] = 1e-5
        scales[n] = flat.reshape(s)
    out = []
    for t in range(1, STEPS + 1):
        step = {}
        for n, s in PARAMS.items():
            g = rng.standard_t(2.0, size=s) * scales[n] + 0.3 * scales[n]
            if t % 13 == 0:
                g = g * 25.0
            if t % 7 == 0:
                g.reshape(-1)[1] = 0.0
            step[n] = g.astype(np.float32)
        out.append(step)
    return out


def cases():
    """(file stem, keras constructor name, keras kwargs) and (file stem, torch class, torch
    kwargs, grad_clip). Schedules are given as (class name, kwargs)."""
    keras_cases = [
        ("sgd_default", "SGD", {}),
        ("sgd_nesterov", "SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
        ("sgd_momentum_piecewise", "SGD", {"momentum": 0.9, "learning_rate": ("PiecewiseConstantDecay", {"boundaries": [20, 40], "values": [0.05, 0.01, 0.002]})}),
        ("adam_default", "Adam", {}),
        ("adam_amsgrad", "Adam", {"learning_rate": 0.01, "amsgrad": True}),
        ("adam_wd_clipnorm", "Adam", {"learning_rate": 0.01, "weight_decay": 0.1, "clipnorm": 1.0}),
        ("adam_expdecay", "Adam", {"learning_rate": ("ExponentialDecay", {"initial_learning_rate": 0.02, "decay_steps": 10, "decay_rate": 0.5})}),
        ("adam_restarts_ema", "Adam", {"learning_rate": ("CosineDecayRestarts", {"initial_learning_rate": 0.01, "first_decay_steps": 8}), "use_ema": True, "ema_overwrite_frequency": 10}),
        ("adamw_default", "AdamW", {}),
        ("adamw_global_clipnorm", "AdamW", {"learning_rate": 0.01, "weight_decay": 0.05, "global_clipnorm": 1.0}),
        ("rmsprop_default", "RMSprop", {}),
        ("rmsprop_centered_momentum", "RMSprop", {"learning_rate": 0.005, "centered": True, "momentum": 0.9}),
        ("rmsprop_polynomial", "RMSprop", {"learning_rate": ("PolynomialDecay", {"initial_learning_rate": 0.01, "decay_steps": 40, "end_learning_rate": 0.001, "power": 2.0})}),
        ("adagrad_default", "Adagrad", {}),
        ("adagrad_clipvalue_invtime", "Adagrad", {"learning_rate": ("InverseTimeDecay", {"initial_learning_rate": 0.05, "decay_steps": 10, "decay_rate": 0.5, "staircase": True}), "clipvalue": 0.5, "initial_accumulator_value": 0.01}),
        ("adadelta_default", "Adadelta", {}),
        ("adadelta_lr1", "Adadelta", {"learning_rate": 1.0, "rho": 0.9, "epsilon": 1e-6}),
        ("adamax_default", "Adamax", {}),
        ("adamax_wd", "Adamax", {"learning_rate": 0.01, "weight_decay": 0.2}),
        ("nadam_default", "Nadam", {}),
        ("nadam_cosine_warmup", "Nadam", {"learning_rate": ("CosineDecay", {"initial_learning_rate": 0.0, "decay_steps": 40, "warmup_target": 0.01, "warmup_steps": 10, "alpha": 0.1})}),
        ("lion_default", "Lion", {}),
        ("lion_wd", "Lion", {"learning_rate": 0.002, "beta_1": 0.95, "weight_decay": 0.5}),
    ]
    torch_cases = [
        ("sgd_default", "SGD", {}, None),
        ("sgd_momentum_dampening_wd", "SGD", {"lr": 0.01, "momentum": 0.9, "dampening": 0.1, "weight_decay": 0.05}, None),
        ("sgd_nesterov_maximize", "SGD", {"lr": 0.01, "momentum": 0.8, "nesterov": True, "maximize": True}, None),
        ("adam_default", "Adam", {}, None),
        ("adam_amsgrad_wd", "Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}, None),
        ("adam_decoupled_clipnorm", "Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}, {"max_norm": 1.0, "norm_type": 2.0}),
        ("adamw_default", "AdamW", {}, None),
        ("adamw_clip_inf", "AdamW", {"lr": 0.01, "weight_decay": 0.05}, {"max_norm": 0.5, "norm_type": "inf"}),
        ("rmsprop_default", "RMSprop", {}, None),
        ("rmsprop_centered_momentum", "RMSprop", {"lr": 0.005, "alpha": 0.9, "centered": True, "momentum": 0.9, "weight_decay": 0.01}, None),
        ("adagrad_default", "Adagrad", {}, None),
        ("adagrad_lrdecay_clipvalue", "Adagrad", {"lr": 0.05, "lr_decay": 0.01, "initial_accumulator_value": 0.1, "eps": 1e-8}, {"clip_value": 0.5}),
        ("adadelta_default", "Adadelta", {}, None),
        ("adadelta_coupled_wd", "Adadelta", {"lr": 0.1, "rho": 0.95, "eps": 1e-7, "weight_decay": 0.5}, None),
        # The exact counterparts of keras_adadelta_default / keras_nadam_default
        # (optim::equiv::keras_to_torch): the real frameworks agree on these pairs.
        ("adadelta_keras_mapped", "Adadelta", {"lr": 1e-3, "rho": 0.95, "eps": 1e-7}, None),
        ("nadam_keras_mapped", "NAdam", {"lr": 1e-3, "eps": 1e-7, "momentum_decay": 1.0}, None),
        ("adamax_default", "Adamax", {}, None),
        ("adamax_wd", "Adamax", {"lr": 0.01, "weight_decay": 0.2, "betas": [0.8, 0.99]}, None),
        ("nadam_default", "NAdam", {}, None),
        ("nadam_decoupled_md1", "NAdam", {"lr": 0.01, "momentum_decay": 1.0, "weight_decay": 0.1, "decoupled_weight_decay": True}, None),
        ("radam_default", "RAdam", {}, None),
        ("radam_wd_clip1", "RAdam", {"lr": 0.01, "weight_decay": 0.1}, {"max_norm": 2.0, "norm_type": 1.0}),
        ("radam_decoupled", "RAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}, None),
    ]
    return keras_cases, torch_cases
