"""Measuring translation quality: image metrics, scoring a run on a split, the FCN-score."""
