"""Learned (PyTorch) codecs: what every one shares, split by job.

- ``header``: the checked bitstream header.
- ``weights``: the weights file format (reading, saving).
- ``codec``: ``LearnedCodec``, the inference codec; it takes a weights file.
- ``recipe``: ``TrainingRecipe``, how one codec's network is trained.
- ``training`` and ``training_data``: the trainer (a recipe and a network), checkpoints, export.
- ``entropy``: adaptive context-model range coding of binary codes.
- ``losses``: differentiable training losses.

A learned codec adds its network (a factory ``build_network(hparams)``), its
``LearnedCodec`` subclass (``encode_tensor``/``decode_tensor``) and its
``TrainingRecipe``; importing the codec never imports torch.
"""
