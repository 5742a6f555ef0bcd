# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "Keras `kernel_regularizer=L2(0.01)` on every Dense kernel; the port puts `weight_decay=0.01` (not 2·0.01) on those tensors' param group.",
    'arch': 'branch',
    'opts': {'l2': 0.01, 'l2_layers': ['branch_a', 'branch_b', 'hidden', 'probs']},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'plants': ['l2-regularizer-factor-two'],
    'top': 'l2-regularizer-factor-two',
}
