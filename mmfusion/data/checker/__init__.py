"""The dataset checker behind `python -m mmfusion.check`: counts, unreadable files, exact and
near duplicates across splits, confounds between file properties and labels, audio oddities."""
