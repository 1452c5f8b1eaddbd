"""Where pairs come from and how they reach the model: local copies and downloads, the layouts
of a dataset folder, the TFDS builder, image files, preprocessing, tf.data pipelines and the
data tools (combine, split, check)."""
