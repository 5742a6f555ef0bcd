# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'A softmax gate over the features of each time step, `Softmax()` (axis −1) in Keras; the port writes `nn.Softmax()`, which on a 3-D tensor normalizes over dim 0 (the batch).',
    'arch': 'seqgate',
    'optimizer': ('SGD', {'learning_rate': 0.1, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['softmax-implicit-dim'],
    'top': 'softmax-implicit-dim',
    'notes': 'torch warns (`Implicit dimension choice for softmax has been deprecated`); the exported ONNX `Softmax` has axis=0.',
}
