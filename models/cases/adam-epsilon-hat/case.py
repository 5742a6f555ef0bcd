# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `Adam(learning_rate=0.005)` vs torch `Adam(lr=0.005)` on a CNN with BatchNorm: the ε placement differs (the conv biases before BatchNorm get rounding-noise gradients, which Adam's ε decides about).",
    'arch': 'cnn',
    'opts': {'bn': True},
    'optimizer': ('Adam', {'learning_rate': 0.005}),
    'loss': 'sparse',
    'plants': ['adam-epsilon-hat'],
    'top': 'adam-epsilon-hat',
}
