"""Test images: loading, the image-folder rule, the dataset registry, datasets, downloads and BD patch sets.

Imports point downwards only: ``images`` ← ``folders`` ← ``items``, ``registry``,
``download`` ← ``bdpatches`` ← ``datasets`` (which resolves every dataset spec,
``bd:`` ones through ``bdpatches``). Nothing here imports torch.
"""
