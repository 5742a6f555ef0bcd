"""Shared inputs for the optimizer trajectories: parameters, gradients and the case list.

Both generators import this file, so Keras and PyTorch see bit-identical float32
initial values and gradients. numpy only; no framework import here.
"""

import os

import numpy as np

STEPS = 60
SEED = 20240613
# name -> shape; small tensors of different ranks.
PARAMS = {"w": (4, 3), "b": (5,)}
# A rank-3 parameter for the cases that need one (Adafactor factors the last two axes of
# every rank >= 2 variable). Drawn from its own random stream so that the inputs of the
# two-parameter cases, and hence their files, are unchanged.
EXTRA_PARAMS = {"k": (2, 3, 4)}
# An embedding table for the cases whose gradient is a tf.IndexedSlices (Keras, TensorFlow
# backend): LOOKUPS slices per step, duplicates kept apart, from its own random streams.
SPARSE_PARAMS = {"e": (6, 4)}
LOOKUPS = 7


def initial_params():
    rng = np.random.default_rng(SEED)
    return {n: rng.normal(0.0, 1.0, size=s).astype(np.float32) for n, s in PARAMS.items()}


def extra_initial_params():
    rng = np.random.default_rng(SEED + 2)
    return {n: rng.normal(0.0, 1.0, size=s).astype(np.float32) for n, s in EXTRA_PARAMS.items()}


def extra_gradient_sequence():
    """Same recipe as `gradient_sequence` for EXTRA_PARAMS, from its own stream."""
    rng = np.random.default_rng(SEED + 3)
    scales = {}
    for n, s in EXTRA_PARAMS.items():
        sc = np.exp(rng.uniform(np.log(1e-3), np.log(3.0), size=s))
        flat = sc.reshape(-1)
        flat[0] = 1e-7
        flat[-1] = 1e-5
        scales[n] = flat.reshape(s)
    out = []
    for t in range(1, STEPS + 1):
        step = {}
        for n, s in EXTRA_PARAMS.items():
            g = rng.standard_t(2.0, size=s) * scales[n] + 0.3 * scales[n]
            if t % 13 == 0:
                g = g * 25.0
            if t % 7 == 0:
                g.reshape(-1)[1] = 0.0
            step[n] = g.astype(np.float32)
        out.append(step)
    return out


def sparse_initial_params():
    rng = np.random.default_rng(SEED + 4)
    return {n: rng.normal(0.0, 1.0, size=s).astype(np.float32) for n, s in SPARSE_PARAMS.items()}


def sparse_sequence():
    """Per step, {name: (indices int64 (LOOKUPS,), values float32 (LOOKUPS, row))}: ids drawn
    from rows 0..4 with weights 0.4, 0.25, 0.15, 0.12, 0.08 (row 0 is usually looked up
    several times, some rows are missed in some steps, the last row never), each slice with
    per-column scales from 1e-3 to 3, Student-t(2) noise, the x25 burst every 13th step and
    an exact-zero slice every 7th step."""
    rng = np.random.default_rng(SEED + 5)
    weights = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
    scales = {n: np.exp(rng.uniform(np.log(1e-3), np.log(3.0), size=s[1:])) for n, s in SPARSE_PARAMS.items()}
    out = []
    for t in range(1, STEPS + 1):
        step = {}
        for n, s in SPARSE_PARAMS.items():
            idx = rng.choice(len(weights), size=LOOKUPS, p=weights).astype(np.int64)
            g = rng.standard_t(2.0, size=(LOOKUPS,) + s[1:]) * scales[n] + 0.3 * scales[n]
            if t % 13 == 0:
                g = g * 25.0
            if t % 7 == 0:
                g[1] = 0.0
            step[n] = (idx, g.astype(np.float32))
        out.append(step)
    return out


def inputs(extra):
    """(initial values, gradient sequence, parameter order), with "k" appended if `extra`."""
    init = initial_params()
    seq = gradient_sequence()
    order = list(PARAMS)
    if extra:
        init.update(extra_initial_params())
        for step, more in zip(seq, extra_gradient_sequence()):
            step.update(more)
        order += list(EXTRA_PARAMS)
    return init, seq, order


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
    """(file stem, keras constructor name, keras kwargs[, extras]) and (file stem, torch class,
    torch kwargs, grad_clip[, extras]). Schedules are given as (class name, kwargs).

    Keras extras: "exclude_from_weight_decay" ({"var_names": [...], "var_list": [names]}: the
    arguments of `optimizer.exclude_from_weight_decay`, variables by name), "extra_params"
    (add the rank-3 parameter "k"), "sparse" (add the table "e", whose gradient is passed
    as a tf.IndexedSlices). Torch extras: "param_groups" ([{"params": [names],
    <overrides>}], as in train.json), "scheduler" ({"class_name", "config", "interval":
    "epoch" | "step", "steps_per_epoch"}), "extra_params"."""
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
        ("adafactor_default", "Adafactor", {}, {"extra_params": True}),
        ("adafactor_wd_clip", "Adafactor", {"learning_rate": 0.02, "beta_2_decay": -0.5, "epsilon_1": 1e-20, "epsilon_2": 1e-2, "clip_threshold": 0.5, "weight_decay": 0.1}, {"extra_params": True}),
        # The exact counterpart of torch_adafactor_keras_mapped (optim::equiv): epsilon_1 = 0.
        ("adafactor_eps0", "Adafactor", {"epsilon_1": 0.0}, {"extra_params": True}),
        ("adamw_exclude_wd", "AdamW", {"learning_rate": 0.01, "weight_decay": 0.1}, {"exclude_from_weight_decay": {"var_names": ["^b(:0)?$", "bias"]}}),
        # On the TensorFlow backend the pattern is searched in the tf.Variable name "b:0", so
        # "^b$" excludes nothing (it would exclude b on jax/torch, where the name is "b").
        ("adamw_exclude_short_name", "AdamW", {"learning_rate": 0.01, "weight_decay": 0.1}, {"exclude_from_weight_decay": {"var_names": ["^b$"]}}),
        ("lion_exclude_var_list", "Lion", {"learning_rate": 0.002, "weight_decay": 0.5}, {"exclude_from_weight_decay": {"var_list": ["w"]}}),
        ("sgd_accum4_momentum", "SGD", {"learning_rate": 0.05, "momentum": 0.9, "gradient_accumulation_steps": 4}),
        ("nadam_accum3_schedule_ema", "Nadam", {"learning_rate": ("ExponentialDecay", {"initial_learning_rate": 0.01, "decay_steps": 10, "decay_rate": 0.5}), "gradient_accumulation_steps": 3, "use_ema": True, "ema_overwrite_frequency": 4, "global_clipnorm": 1.0, "weight_decay": 0.05}),
        ("adafactor_accum2", "Adafactor", {"learning_rate": 0.01, "gradient_accumulation_steps": 2, "clipvalue": 0.5}, {"extra_params": True}),
        # The exact counterpart of torch_sgd_steplr_keras_mapped: ExponentialDecay(staircase)
        # per step = StepLR per step.
        ("sgd_expdecay_staircase", "SGD", {"learning_rate": ("ExponentialDecay", {"initial_learning_rate": 0.05, "decay_steps": 10, "decay_rate": 0.5, "staircase": True})}),
        # A tf.IndexedSlices gradient for "e": Adam's v gets the per-row sum of the squared
        # slices (m the summed gradient, every row decays); Adagrad scatter-adds the squared
        # slices and scatter-subtracts per slice, after clipnorm took the slices' norm.
        ("adam_sparse", "Adam", {"learning_rate": 0.01}, {"sparse": True}),
        ("adagrad_sparse_clipnorm", "Adagrad", {"learning_rate": 0.05, "clipnorm": 1.0}, {"sparse": True}),
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
        ("adafactor_default", "Adafactor", {}, None, {"extra_params": True}),
        ("adafactor_wd_maximize", "Adafactor", {"lr": 0.05, "beta2_decay": -0.5, "eps": [1e-6, 1e-2], "d": 2.0, "weight_decay": 0.1, "maximize": True}, {"max_norm": 5.0, "norm_type": 2.0}, {"extra_params": True}),
        # The exact counterpart of keras_adafactor_eps0 (optim::equiv::keras_to_torch).
        ("adafactor_keras_mapped", "Adafactor", {"lr": 1e-3, "eps": [0.0, 1e-3]}, None, {"extra_params": True}),
        ("sgd_groups_steplr_epoch", "SGD", {"lr": 0.05, "momentum": 0.9}, None, {
            "param_groups": [{"params": ["w"], "lr": 0.1, "momentum": 0.5, "dampening": 0.2}, {"params": ["b"], "weight_decay": 0.01, "nesterov": True}],
            "scheduler": {"class_name": "StepLR", "config": {"step_size": 3, "gamma": 0.5}, "interval": "epoch", "steps_per_epoch": 6}}),
        ("adam_groups_multistep_step", "Adam", {"lr": 0.01}, None, {
            "param_groups": [{"params": ["b"], "lr": 0.003, "betas": [0.8, 0.99], "weight_decay": 0.1, "amsgrad": True}, {"params": ["w"]}],
            "scheduler": {"class_name": "MultiStepLR", "config": {"milestones": [10, 25, 25, 40], "gamma": 0.5}, "interval": "step"}}),
        ("adamw_exponential_step", "AdamW", {"lr": 0.01}, None, {
            "scheduler": {"class_name": "ExponentialLR", "config": {"gamma": 0.97}, "interval": "step"}}),
        ("rmsprop_cosine_epoch", "RMSprop", {"lr": 0.01}, None, {
            "scheduler": {"class_name": "CosineAnnealingLR", "config": {"T_max": 4, "eta_min": 0.001}, "interval": "epoch", "steps_per_epoch": 5}}),
        ("sgd_cosine_step", "SGD", {"lr": 0.1, "momentum": 0.9}, {"max_norm": 1.0, "norm_type": 2.0}, {
            "scheduler": {"class_name": "CosineAnnealingLR", "config": {"T_max": 25}, "interval": "step"}}),
        ("adam_warmrestarts_step", "Adam", {"lr": 0.01}, None, {
            "scheduler": {"class_name": "CosineAnnealingWarmRestarts", "config": {"T_0": 5, "T_mult": 2, "eta_min": 1e-4}, "interval": "step"}}),
        ("adagrad_warmrestarts_epoch", "Adagrad", {"lr": 0.05}, None, {
            "scheduler": {"class_name": "CosineAnnealingWarmRestarts", "config": {"T_0": 3}, "interval": "epoch", "steps_per_epoch": 4}}),
        ("nadam_linear_step", "NAdam", {"lr": 0.01}, None, {
            "scheduler": {"class_name": "LinearLR", "config": {"start_factor": 0.1, "total_iters": 20}, "interval": "step"}}),
        ("radam_linear_decay_epoch", "RAdam", {"lr": 0.01}, None, {
            "scheduler": {"class_name": "LinearLR", "config": {"start_factor": 1.0, "end_factor": 0.2, "total_iters": 7}, "interval": "epoch", "steps_per_epoch": 5}}),
        ("sgd_onecycle_step", "SGD", {"lr": 0.1, "momentum": 0.9}, None, {
            "scheduler": {"class_name": "OneCycleLR", "config": {"max_lr": 0.1, "total_steps": 60}, "interval": "step"}}),
        ("adam_groups_onecycle3", "Adam", {"lr": 0.01}, None, {
            "param_groups": [{"params": ["w"]}, {"params": ["b"], "weight_decay": 0.05}],
            "scheduler": {"class_name": "OneCycleLR", "config": {"max_lr": [0.01, 0.005], "epochs": 6, "steps_per_epoch": 10, "pct_start": 0.25, "anneal_strategy": "linear", "three_phase": True, "div_factor": 10.0}, "interval": "step"}}),
        ("adafactor_groups_exponential_epoch", "Adafactor", {"lr": 0.05}, None, {
            "extra_params": True,
            "param_groups": [{"params": ["w", "k"], "weight_decay": 0.2}, {"params": ["b"], "lr": 0.02, "d": 3.0}],
            "scheduler": {"class_name": "ExponentialLR", "config": {"gamma": 0.8}, "interval": "epoch", "steps_per_epoch": 10}}),
        # The exact counterpart of keras_sgd_expdecay_staircase (optim::equiv).
        ("sgd_steplr_keras_mapped", "SGD", {"lr": 0.05}, None, {
            "scheduler": {"class_name": "StepLR", "config": {"step_size": 10, "gamma": 0.5}, "interval": "step"}}),
    ]
    return keras_cases, torch_cases


def save_if_changed(tensors, path, metadata):
    """`safetensors.numpy.save_file`, unless `path` already holds the same tensors (dtype,
    shape, bytes) and the same metadata. `save_file` writes the metadata keys in hash order,
    which changes from run to run, so rewriting identical content would change the file's
    bytes; this keeps regeneration idempotent. Returns whether the file was written."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    if os.path.exists(path):
        try:
            with safe_open(path, framework="numpy") as f:
                same = f.metadata() == metadata and set(f.keys()) == set(tensors)
                for k in tensors if same else ():
                    old, new = f.get_tensor(k), np.asarray(tensors[k])
                    if old.dtype != new.dtype or old.shape != new.shape or old.tobytes() != new.tobytes():
                        same = False
                        break
        except Exception:  # unreadable or foreign file: rewrite it
            same = False
        if same:
            return False
    save_file(tensors, path, metadata=metadata)
    return True


def scheduler_cases():
    """(optimizer class, optimizer kwargs, scheduler class, scheduler kwargs, steps) for the
    learning-rate sequences in torch_lr_schedulers.json."""
    return [
        ("SGD", {"lr": 0.1}, "StepLR", {"step_size": 3, "gamma": 0.1}, 12),
        ("SGD", {"lr": 0.1}, "MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}, 12),
        ("SGD", {"lr": 0.1}, "ExponentialLR", {"gamma": 0.9}, 20),
        ("SGD", {"lr": 0.1}, "CosineAnnealingLR", {"T_max": 5, "eta_min": 0.01}, 25),
        ("SGD", {"lr": 0.1}, "CosineAnnealingLR", {"T_max": 7}, 30),
        ("SGD", {"lr": 0.1}, "CosineAnnealingWarmRestarts", {"T_0": 3, "T_mult": 2, "eta_min": 0.001}, 25),
        ("SGD", {"lr": 0.1}, "LinearLR", {"start_factor": 0.25, "end_factor": 0.9, "total_iters": 6}, 10),
        ("SGD", {"lr": 0.1}, "LinearLR", {}, 8),
        ("SGD", {"lr": 0.1, "momentum": 0.9}, "OneCycleLR", {"max_lr": 0.1, "total_steps": 20}, 20),
        ("Adam", {"lr": 0.01}, "OneCycleLR", {"max_lr": 0.05, "total_steps": 15, "three_phase": True, "anneal_strategy": "linear", "pct_start": 0.4}, 15),
    ]
