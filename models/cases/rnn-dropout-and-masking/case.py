# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Post-padded token sequences: Keras `Embedding(mask_zero=True)` makes the LSTM skip the padding; the port runs the LSTM over the zeros and takes `h_n[-1]`.',
    'arch': 'rnn',
    'data': 'padded_sequences',
    'opts': {'cell': 'lstm'},
    'optimizer': ('SGD', {'learning_rate': 0.1, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['rnn-dropout-and-masking'],
    'top': 'rnn-dropout-and-masking',
}
