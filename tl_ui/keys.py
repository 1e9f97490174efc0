"""Every st.session_state key the pages use, named once (a typo in a string key is a silent bug)."""

SETTINGS = "tl_settings"  # the race settings (a plain dict; survives visits to other pages)
UPLOADS = "tl_uploads"  # upload name -> tl_engine.data.uploads.Upload, selectable for the whole session
UPLOAD_ERRORS = "tl_upload_errors"  # sha256 of a rejected file -> its message (never parsed twice)
RACE_WAS_ACTIVE = "tl_race_was_active"  # the race was queued or running at the last poll (rerun once when it ends)
SWEEP_WAS_ACTIVE = "tl_sweep_was_active"
FIGURES = "tl_figures"  # (key, figure) of the race page: rebuilt only when a new epoch arrived or the view changed
CHART_VIEW = "tl_chart_view"  # the race page's chart: test accuracy or loss (a widget key)
X_SECONDS = "x_seconds"  # the race chart's x-axis toggle (a widget key)
SIZED_FOR = "tl_sized_for"  # (dataset, its fitted sizes) the size sliders were last drawn for
BUILDER = "tl_builder"  # the dataset builder's classes and images
CAMERA_TARGET = "tl_cam_target"  # the builder's class that the next camera shot goes to
WIDGET_PREFIX = "w_"  # race-settings widgets: "w_train_size", ...
XP_PREFIX = "xp_"  # experiment-settings widgets
