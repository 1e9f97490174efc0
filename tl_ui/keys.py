"""Every st.session_state key the pages use, named once (a typo in a string key is a silent bug)."""

SETTINGS = "tl_settings"  # the race settings (a plain dict; survives visits to other pages)
UPLOADS = "tl_uploads"  # upload name -> tl_engine.data.uploads.Upload, selectable for the whole session
UPLOAD_ERRORS = "tl_upload_errors"  # sha256 of a rejected file -> its message (never parsed twice)
RACE_WAS_ACTIVE = "tl_race_was_active"  # the race was queued or running at the last poll (rerun once when it ends)
SWEEP_WAS_ACTIVE = "tl_sweep_was_active"
SEEDS_WAS_ACTIVE = "tl_seeds_was_active"  # the race's extra seeds were queued or running at the last poll
FIGURES = "tl_figures"  # (key, figure) of the race page: rebuilt only when a new epoch arrived or the view changed
CHART_VIEW = "tl_chart_view"  # the race page's chart: test accuracy or loss (a widget key)
X_SECONDS = "x_seconds"  # the race chart's x-axis toggle (a widget key)
SIZED_FOR = "tl_sized_for"  # (dataset, its fitted sizes) the size sliders were last drawn for
BUILDER = "tl_builder"  # the dataset builder's classes and images
BUILDER_OPEN = "tl_builder_open"  # the builder's expander is open (a widget key)
CAMERA_TARGET = "tl_cam_target"  # the builder's class that the next camera shot goes to
WIDGET_PREFIX = "w_"  # race-settings widgets: "w_train_size", ...
XP_PREFIX = "xp_"  # experiment-settings widgets
CLASS_DATASET = "class_dataset"  # the class page's filters (widget keys)
CLASS_WINDOW = "class_window"
CLASS_GROUP = "class_group_"  # + "freeze" / "size": which group of comparable races a picture shows
CLASS_STAMP = "class_stamp"  # the store's stamp when the class page last drew (its poll reruns on a change)
