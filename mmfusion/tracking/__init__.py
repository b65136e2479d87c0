"""MLflow as mmfusion uses it: the experiment created once (`experiment`), Lightning's logger
with nested runs, artifacts and a final status (`loggers`), and finished runs read back
(`runs`).

May import `mmfusion.errors` only.
"""
