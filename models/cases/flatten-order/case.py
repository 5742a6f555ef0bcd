# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "The Dense kernel after Flatten is copied as `K.T` without permuting its rows from Keras's (h, w, c) flatten order to torch's (c, h, w).",
    'arch': 'cnn',
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'categorical',
    'plants': ['flatten-order'],
    'top': 'flatten-order',
    'pretrain': 200,
}
