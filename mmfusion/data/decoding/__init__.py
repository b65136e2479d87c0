"""Turning one file into one array at the training size: images (DICOM included) and audio."""
