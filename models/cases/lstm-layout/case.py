# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'LSTM kernels copied with `reshape(4H, in)` instead of a transpose (biases copied right).',
    'arch': 'rnn',
    'data': 'signals',
    'opts': {'cell': 'lstm'},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['lstm-layout'],
    'top': 'lstm-layout',
    'pretrain': 200,
}
