# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "The port copies Keras's BatchNormalization momentum 0.99 into `nn.BatchNorm2d(momentum=0.99)` (torch's convention is the weight of the new batch).",
    'arch': 'cnn',
    'opts': {'bn': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['bn-momentum-convention'],
    'top': 'bn-momentum-convention',
}
