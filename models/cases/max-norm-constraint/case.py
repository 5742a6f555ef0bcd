# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `Dense(..., kernel_constraint=MaxNorm(2.0))` trained at a high learning rate (SGD 2.0), so the constraint binds; the port has no renorm after `opt.step()`, and without it the same learning rate does not train.",
    'arch': 'mlp',
    'opts': {'max_norm': 2.0},
    'optimizer': ('SGD', {'learning_rate': 2.0}),
    'loss': 'categorical',
    'plants': ['weight-constraints'],
    'top': 'weight-constraints',
    'notes': 'Keras applies a kernel constraint after every optimizer update (`optimizer.apply`: `variable.assign(variable.constraint(variable))`); MaxNorm (keras/src/constraints/constraints.py) rescales each unit\'s incoming weights, `w * clip(‖w‖, 0, c) / (1e-7 + ‖w‖)` with the norm over axis 0 of the (in, out) kernel, i.e. over each row of the torch (out, in) weight. The faithful variant does exactly that after each `opt.step()` (measurement only: train.json has no field for it).',
}
