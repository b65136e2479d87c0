"""Layouts: where each patient's files are and which split they belong to (split folders, a
manifest CSV, the public data sets as downloaded, k-fold re-splits), paired after splitting."""
