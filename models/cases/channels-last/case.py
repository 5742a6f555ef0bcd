# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Two-channel 8×8 images (digit and its mirror image): the port turns the NHWC inputs into NCHW with `reshape` instead of `transpose` (trained weights).',
    'arch': 'cnn',
    'data': 'digits_2ch',
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'categorical',
    'plants': ['channels-last'],
    'top': 'channels-last',
    'pretrain': 200,
}
