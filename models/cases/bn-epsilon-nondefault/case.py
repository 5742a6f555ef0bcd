# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "GAN-discriminator style: the port's `nn.BatchNorm2d(C, momentum=0.01, eps=0.8)` where Keras's BatchNormalization keeps epsilon=1e-3.",
    'arch': 'cnn',
    'opts': {'bn': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['bn-epsilon'],
    'plant_values': {'bn_eps': 0.8},
    'plant_text': {'bn-epsilon': ('`nn.BatchNorm2d(C, momentum=0.01, eps=1e-3)`', '`nn.BatchNorm2d(C, momentum=0.01, eps=0.8)` (a value GAN code uses): not the Keras 1e-3, and not torch\'s default 1e-5 either')},
    'top': 'bn-epsilon',
    'mentions': ['0.8'],
    'never': ['1e-5'],
}
