# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Conv kernels copied with `K.reshape(out, in, kh, kw)` instead of `K.transpose(3, 2, 0, 1)`.',
    'arch': 'cnn',
    'opts': {'bn': True},
    'optimizer': ('Adadelta', {'learning_rate': 1.0}),
    'loss': 'sparse',
    'plants': ['conv-layout'],
    'top': 'conv-layout',
    'pretrain': 200,
}
