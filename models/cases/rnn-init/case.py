# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "The port does not copy the Keras LSTM weights: `nn.LSTM` keeps torch's U(±1/√H) init (no orthogonal recurrent kernel, no forget bias 1).",
    'arch': 'rnn',
    'opts': {'cell': 'lstm'},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['rnn-init'],
    'top': 'rnn-init',
}
