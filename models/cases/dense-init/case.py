# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "The port does not copy the Keras Dense weights: every `nn.Linear` keeps torch's default init (weights and biases).",
    'arch': 'mlp',
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'categorical',
    'plants': ['dense-init'],
    'top': 'dense-init',
}
