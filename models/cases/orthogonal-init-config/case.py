# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras Dense kernels created with `Orthogonal(gain=1.414)`; the port does not copy them: every `nn.Linear` keeps torch's default init.",
    'arch': 'mlp',
    'opts': {'kernel_initializer': ('Orthogonal', {'gain': 1.414})},
    'optimizer': ('SGD', {'learning_rate': 0.05}),
    'loss': 'categorical',
    'plants': ['dense-init'],
    'plant_text': {'dense-init': ('Linear weights and biases copied from the Keras initial values (Orthogonal(gain=1.414) kernels, zero biases)', "every `nn.Linear` keeps torch's default init: kaiming_uniform(a=√5) weight, U(±1/√fan_in) bias")},
    'top': 'dense-init',
    'mentions': ['Orthogonal(gain=1.414)'],
    'never': ['glorot_normal', 'he_normal'],
}
