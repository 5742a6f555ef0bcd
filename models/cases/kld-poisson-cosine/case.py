# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `'kl_divergence'` (sum over classes, mean over the batch) vs the port's `nn.KLDivLoss()` whose default reduction='mean' also divides by the 10 classes.",
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'kld',
    'plants': ['kld-poisson-cosine'],
    'top': 'kld-poisson-cosine',
}
