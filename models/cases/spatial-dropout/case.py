# The Keras model of this case and the differences planted into its torch port (read by ../_lib/casekit_*.py).
CASE = {
    'summary': 'Faithful port, no difference: a CNN with `SpatialDropout2D(0.2)` ported as `nn.Dropout2d(0.2)` (which torch cannot export in training mode: the exporter writes it as a no-op and records it in train.json `spatial_dropout`); the torch inputs are `torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)` (channels-last in memory) and the port flattens with `x.view`.',
    'arch': 'cnn',
    'opts': {'spatial_dropout': 0.2, 'permute_input': True, 'flatten_view': True},
    'optimizer': ('SGD', {'learning_rate': 0.05, 'momentum': 0.9}),
    'loss': 'sparse',
    'top': None,
    'notes': 'Exercises two exporter fixes: `nn.Dropout2d` is exported as a no-op `Dropout` node (ratio 0.2, training_mode false) named after its module, and train.json `spatial_dropout` records module, class, p and node so the importer puts the channel-wise dropout back at that place; and the exporter makes its own contiguous copy of the channels-last example input (the port\'s `x.view(x.size(0), -1)` fails on a channels-last activation: "view size is not compatible with input tensor\'s size and stride"). Dropout is off in the measurement.',
}
