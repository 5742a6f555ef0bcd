# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Faithful port, no difference: LSTM on float sequences, Keras Nadam mapped to torch NAdam(eps=1e-7, momentum_decay=1.0).',
    'arch': 'rnn',
    'data': 'signals',
    'opts': {'cell': 'lstm'},
    'optimizer': ('Nadam', {'learning_rate': 0.01}),
    'loss': 'sparse',
    'top': None,
}
