# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "BatchNormalization over the features of an Embedding (variance ≈ 8e-4 at init): the port's `nn.BatchNorm1d` keeps torch's eps=1e-5 where Keras uses 1e-3.",
    'arch': 'rnn',
    'opts': {'cell': 'gru', 'bn': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['bn-epsilon'],
    'top': 'bn-epsilon',
}
