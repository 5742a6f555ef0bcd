# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': "The port keeps its layers in containers, `self.blocks = nn.Sequential(nn.Linear(64, 32), nn.ReLU())` and `self.heads = nn.ModuleList([nn.Linear(32, 10)])` (state_dict names `blocks.0.weight`, `heads.0.weight`); weights copied correctly, but its `SGD` keeps torch's default lr=1e-3 where Keras uses 0.01.",
    'arch': 'mlp',
    'opts': {'module_prefix': True},
    'optimizer': ('SGD', {}),
    'loss': 'categorical',
    'plants': ['sgd-default-lr'],
    'top': 'sgd-default-lr',
    'mentions': ['blocks.0'],
    'never': ['blocks.blocks'],
    'notes': 'The TorchScript exporter names the nodes of a module in a container `/blocks/blocks.0/Gemm`: the module path is `blocks.0` (the state_dict prefix), not `blocks.blocks.0`.',
}
