"""Training: engines (sklearn, mxnet, torch) and launchers."""
