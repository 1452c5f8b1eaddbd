"""Training: the pix2pix trainer and its loop, the FCN-score segmenter's training, speed
settings, tf.distribute strategies and console progress."""
