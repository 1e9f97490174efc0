"""Looking inside trained networks: similarity to ImageNet, filters, features, predictions, TorchScript export."""

from .. import lazy_exports

# What other packages use, and the module that defines it (imported on first use: see lazy_exports).
_EXPORTS = {
    "BACKBONES": "similarity",
    "INSIDE_FILE": "keep",
    "METHOD": "similarity",
    "SIMILAR_FROM": "simscore",
    "Similarity": "similarity",
    "cell_members": "views",
    "example_images": "similarity",
    "guide_word": "simscore",
    "load_exported": "export",
    "measure": "similarity",
    "prepare_image": "views",
    "save_trained": "keep",
    "top_mistakes": "views",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
