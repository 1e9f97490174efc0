"""Every st.session_state key the pages use, named once (a typo in a string key is a silent bug)."""

SETTINGS = "tl_settings"  # the race settings (a plain dict; survives visits to other pages)
UPLOADS = "tl_uploads"  # upload name -> tl_engine.uploads.Upload, selectable for the whole session
UPLOAD_ERRORS = "tl_upload_errors"  # sha256 of a rejected file -> its message (never parsed twice)
RACE_JOB = "tl_race_job"  # the race this tab watches (a job id of the server's scheduler)
SWEEP_JOB = "tl_sweep_job"  # the experiment this tab watches
FIGURES = "tl_figures"  # (key, figures) of the race page: rebuilt only when a new epoch arrived
X_SECONDS = "x_seconds"  # the race chart's x-axis toggle (a widget key)
BUILDER = "tl_builder"  # the dataset builder's classes and images
WIDGET_PREFIX = "w_"  # race-settings widgets: "w_train_size", ...
XP_PREFIX = "xp_"  # experiment-settings widgets
