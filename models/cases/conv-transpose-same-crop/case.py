# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `Conv2DTranspose(8, 3, strides=2, padding='same')` crops its extra pixel at the end; the port's `ConvTranspose2d(padding=1, output_padding=1)` crops it at the start (trained weights).",
    'arch': 'cnn',
    'opts': {'stem': 'strided', 'up': 'transpose'},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['conv-transpose-same-crop'],
    'top': 'conv-transpose-same-crop',
    'pretrain': 200,
}
