"""The FCN-score's segmenter: a compact U-Net that maps photos to class logits, its loss, and
the variables its checkpoint holds.

The paper scored with an FCN-8s trained on Cityscapes; this network is trained on the dataset's
own training photos (p2p_tf/training/scorer_training.py), in minutes on a CPU.
"""

import keras
import tensorflow as tf

from p2p_tf.datasets import label_maps
from p2p_tf.nets import models


def convolutions(x, filters, count=2, strides=1):
    """`count` 3x3 convolutions (the first with `strides`), each with BatchNorm and ReLU."""
    for i in range(count):
        x = keras.layers.Conv2D(filters, 3, strides=strides if i == 0 else 1, padding='same',
                                use_bias=False)(x)
        # Momentum 0.9 rather than Keras' 0.99: the averages used at inference settle within
        # a few dozen steps, so short (test) runs segment with sensible statistics too.
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
    return x


def segmentation_unet(num_classes, levels=4, base_filters=16, input_channels=3):
    """U-Net segmenter: photos [batch, H, W, input_channels] float32 in [-1, 1] -> logits
    [batch, H, W, num_classes] (softmax over the last axis gives class 1..K probabilities).

    A stride-2 convolution first halves the resolution, the U-Net (`levels` poolings, filters
    base_filters, doubling per level up to 8x) works at half resolution and its logits are
    upsampled bilinearly: a third of the full-resolution network's time on a CPU, while label
    regions (windows, sills) stay several half-resolution pixels wide at 128x128.
    H and W must be multiples of 2**(levels + 1).
    """
    filters = models.encoder_filters(levels + 1, base_filters)
    inputs = keras.Input(shape=[None, None, input_channels], name='photo')
    x = convolutions(inputs, base_filters, count=1, strides=2)
    skips = []
    for level in range(levels):
        x = convolutions(x, filters[level])
        skips.append(x)
        x = keras.layers.MaxPooling2D()(x)
    x = convolutions(x, filters[levels])
    for level in reversed(range(levels)):
        x = keras.layers.Conv2DTranspose(filters[level], 2, strides=2)(x)
        x = convolutions(keras.layers.Concatenate()([x, skips[level]]), filters[level])
    logits = keras.layers.Conv2D(num_classes, 1)(x)
    logits = keras.layers.UpSampling2D(interpolation='bilinear', name='logits')(logits)
    return keras.Model(inputs, logits, name='segmentation_unet')


def scorer_from_config(config):
    return segmentation_unet(len(label_maps.PALETTES[config.palette]), config.levels,
                             config.filters)


def segmentation_loss(classes, logits):
    """Mean cross-entropy over the non-VOID pixels. classes: int [batch, H, W] in 0..K;
    logits: float32 [batch, H, W, K]. 0 when every pixel is VOID."""
    valid = tf.cast(classes != label_maps.VOID, tf.float32)
    per_pixel = keras.losses.sparse_categorical_crossentropy(
        tf.maximum(tf.cast(classes, tf.int32) - 1, 0), logits, from_logits=True)
    return tf.reduce_sum(per_pixel * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def scorer_variables(config):
    """(model, step): the segmenter of a resolved scorer config and its step counter, under
    the names its checkpoint holds (`model`, `step`; training adds `optimizer`)."""
    return scorer_from_config(config), tf.Variable(0, dtype=tf.int64, trainable=False,
                                                    name='step')
