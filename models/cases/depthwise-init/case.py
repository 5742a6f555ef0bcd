# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "A DepthwiseConv2D layer whose weights the port does not copy: `nn.Conv2d(8, 8, 3, groups=8)` keeps torch's default init.",
    'arch': 'cnn',
    'opts': {'depthwise': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['depthwise-init'],
    'top': 'depthwise-init',
}
