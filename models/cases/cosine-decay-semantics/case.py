# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `CosineDecay(0.1, decay_steps=50)` stays at 0 after step 50; the port's `CosineAnnealingLR(T_max=50)` (stepped per step) climbs back to 0.1 by step 100.",
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': ('CosineDecay', {'initial_learning_rate': 0.1, 'decay_steps': 50})}),
    'loss': 'categorical',
    'plants': ['cosine-decay-semantics'],
    'top': 'cosine-decay-semantics',
}
