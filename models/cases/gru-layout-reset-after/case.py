# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "GRU weights transposed and the (2, 3H) bias split correctly, but the gate blocks kept in Keras's z, r, h order (torch expects r, z, n).",
    'arch': 'rnn',
    'data': 'signals',
    'opts': {'cell': 'gru'},
    'optimizer': ('Nadam', {'learning_rate': 0.01}),
    'loss': 'sparse',
    'plants': ['gru-layout-reset-after'],
    'top': 'gru-layout-reset-after',
    'pretrain': 200,
}
