# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'A Conv2DTranspose kernel (kh, kw, out, in) copied with the Conv2D mapping `transpose(2, 3, 0, 1)` instead of `transpose(3, 2, 0, 1)` (trained weights).',
    'arch': 'cnn',
    'opts': {'stem': 'strided', 'up': 'transpose'},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['conv-transpose-layout'],
    'top': 'conv-transpose-layout',
    'pretrain': 200,
    'notes': 'The in/out swap is loadable only because the layer has 8 input and 8 output channels.',
}
