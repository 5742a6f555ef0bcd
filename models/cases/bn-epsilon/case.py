# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "The port's `nn.BatchNorm2d` keeps torch's eps=1e-5 where Keras uses 1e-3.",
    'arch': 'cnn',
    'opts': {'bn': True},
    'optimizer': ('Nadam', {'learning_rate': 0.002}),
    'loss': 'categorical',
    'plants': ['bn-epsilon'],
    'top': 'bn-epsilon',
    'pretrain': 200,
}
