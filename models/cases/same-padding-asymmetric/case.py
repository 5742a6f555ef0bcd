# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `Conv2D(8, 3, strides=2, padding='same')` on 8×8 input pads 0 before / 1 after; the port uses `nn.Conv2d(1, 8, 3, stride=2, padding=1)`.",
    'arch': 'cnn',
    'opts': {'stem': 'strided'},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'categorical',
    'plants': ['same-padding-asymmetric'],
    'top': 'same-padding-asymmetric',
    'pretrain': 200,
}
