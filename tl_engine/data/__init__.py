"""Images in, ImageSets out: the bundled datasets, a user's folders, zips and npz files, and kept uploads."""

from .. import lazy_exports

# What other packages use, and the module that defines it (imported on first use: see lazy_exports).
_EXPORTS = {
    "DatasetInfo": "imageset",
    "FORMATS": "images",
    "ImageSet": "imageset",
    "MAX_FILE_BYTES": "images",
    "MAX_IMAGE_PIXELS": "images",
    "Skip": "images",
    "Upload": "uploads",
    "balanced_max": "sizes",
    "display_name": "sizes",
    "draw_note": "sizes",
    "fitted_size": "sizes",
    "decode": "images",
    "delete_upload": "uploads",
    "is_upload": "uploads",
    "list_datasets": "bundled",
    "load_dataset": "bundled",
    "load_meta": "uploads",
    "min_per_class": "usersplit",
    "open_square": "images",
    "probe_photos": "probe",
    "quotas": "sizes",
    "save_upload": "uploads",
    "split_balanced": "bundled",
    "to_model_input": "bundled",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
