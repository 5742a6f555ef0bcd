# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `RMSprop()` vs torch `RMSprop()` (both defaults: lr, ρ/α and ε placement differ) on an LSTM.',
    'arch': 'rnn',
    'data': 'signals',
    'opts': {'cell': 'lstm'},
    'optimizer': ('RMSprop', {}),
    'loss': 'sparse',
    'plants': ['rmsprop-eps-and-rho'],
    'top': 'rmsprop-eps-and-rho',
    'notes': 'The faithful variant is approximate: Keras adds ε = 1e-7 inside the square root, which no torch `RMSprop` can express; `eps=1e-12` is the closest (it only keeps 0/0 out). That explains its small residual gap.',
}
