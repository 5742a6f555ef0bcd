# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Two differences in an Embedding → LayerNormalization → GRU model: the embedding left at torch's N(0, 1) init, and LayerNorm eps left at 1e-5 (which barely matters once the embeddings have variance 1).",
    'arch': 'rnn',
    'opts': {'cell': 'gru', 'layernorm': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['embedding-init', 'layernorm-eps-axis'],
    'top': 'embedding-init',
    'notes': "The two differences interact: alone, the LayerNorm eps explains a clear gap (the Keras embeddings have variance ≈ 8e-4, close to eps); next to torch's N(0, 1) embeddings it no longer matters.",
}
