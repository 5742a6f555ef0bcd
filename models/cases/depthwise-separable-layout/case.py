# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'A SeparableConv2D whose depthwise kernel is copied with `reshape(C, 1, kh, kw)` instead of the (kh, kw, C) → (C, 1, kh, kw) transpose (trained weights).',
    'arch': 'cnn',
    'opts': {'separable': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['depthwise-separable-layout'],
    'top': 'depthwise-separable-layout',
    'pretrain': 200,
}
