# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Embedding → LayerNormalization → GRU: the port's `nn.LayerNorm` keeps torch's eps=1e-5 where Keras uses 1e-3, on embeddings whose variance (≈8e-4) is comparable to it.",
    'arch': 'rnn',
    'opts': {'cell': 'gru', 'layernorm': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['layernorm-eps-axis'],
    'top': 'layernorm-eps-axis',
}
