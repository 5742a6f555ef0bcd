# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "A CNN with `Dropout(0.3)` before its classifier; the port's `SGD` keeps torch's default lr=1e-3 where Keras uses 0.01. The difference must not be called noise: dropout is in the model but the measured runs share (or switch off) the masks.",
    'arch': 'cnn',
    'opts': {'dropout': 0.3},
    'optimizer': ('SGD', {}),
    'loss': 'sparse',
    'plants': ['sgd-default-lr'],
    'top': 'sgd-default-lr',
    'never': ['i.e. noise'],
}
