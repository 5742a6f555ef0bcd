# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "The port does not copy the Keras Conv2D weights: every `nn.Conv2d` keeps torch's default init (the Dense layer is copied).",
    'arch': 'cnn',
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'sparse',
    'plants': ['conv-init'],
    'top': 'conv-init',
}
