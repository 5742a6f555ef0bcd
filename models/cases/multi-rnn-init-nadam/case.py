# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Two differences in an LSTM: the LSTM left at torch's default init, and torch NAdam defaults.",
    'arch': 'rnn',
    'data': 'signals',
    'opts': {'cell': 'lstm'},
    'optimizer': ('Nadam', {}),
    'loss': 'sparse',
    'plants': ['rnn-init', 'nadam-momentum-schedule'],
}
