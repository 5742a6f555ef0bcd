# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Faithful port, no difference: branched Functional model on wine, Keras Adadelta mapped to torch Adadelta(rho=0.95, eps=1e-7).',
    'arch': 'branch',
    'optimizer': ('Adadelta', {'learning_rate': 1.0}),
    'loss': 'sparse',
    'top': None,
}
