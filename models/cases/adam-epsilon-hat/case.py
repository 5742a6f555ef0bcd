# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `Adam(learning_rate=0.005)` vs torch `Adam(lr=0.005)` on a CNN with BatchNorm: the ε placement differs (the conv biases before BatchNorm get rounding-noise gradients, which Adam's ε decides about).",
    'arch': 'cnn',
    'opts': {'bn': True},
    'optimizer': ('Adam', {'learning_rate': 0.005}),
    'loss': 'sparse',
    'plants': ['adam-epsilon-hat'],
    'top': 'adam-epsilon-hat',
    'notes': "Why it shows here: the conv biases sit before BatchNorm, so their true gradient is 0 and what they get is float32 rounding noise (~1e-9). Adam divides that noise by √v + ε: with torch's ε = 1e-8 those biases take steps of a sizeable fraction of the lr, with Keras's ε̂ (≥ 1e-7, 3e-6 at t = 1) they hardly move; the biases shift the BatchNorm running means and so the eval-mode loss. In an MLP or a GRU without BatchNorm the same difference stayed below 1e-4 nats.",
}
