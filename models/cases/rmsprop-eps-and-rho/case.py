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
}
