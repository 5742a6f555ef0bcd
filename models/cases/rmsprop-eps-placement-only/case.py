# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Keras `RMSprop(learning_rate=1e-3, rho=0.9)` vs torch `RMSprop(lr=1e-3, alpha=0.9, eps=1e-7)`: learning rate, ρ/α and ε agree; only where ε goes differs (inside the square root in Keras, outside in torch).',
    'arch': 'mlp',
    'optimizer': ('RMSprop', {'learning_rate': 1e-3, 'rho': 0.9}),
    'loss': 'categorical',
    'plants': ['rmsprop-eps-and-rho'],
    'plant_values': {'rmsprop': {'lr': 1e-3, 'alpha': 0.9, 'eps': 1e-7}},
    'plant_text': {'rmsprop-eps-and-rho': ('torch `RMSprop(lr=1e-3, alpha=0.9, eps=1e-12)` (Keras puts ε=1e-7 inside the square root; a constant eps outside it cannot reproduce that, 1e-12 only keeps 0/0 out)', 'torch `RMSprop(lr=1e-3, alpha=0.9, eps=1e-7)`: the Keras values, ε outside the root: g / (√v + 1e-7) instead of g / √(v + 1e-7)')},
    'top': 'rmsprop-eps-and-rho',
    'never': ['learning rate differ', 'rho/alpha'],
    'notes': 'Neither variant is exact: no torch `RMSprop` puts ε inside the square root, so the faithful variant (eps=1e-12) and this port (eps=1e-7 outside) both differ from Keras only where √v is comparable to ε; the measured gaps are small and of the same order.',
}
