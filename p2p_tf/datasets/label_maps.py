"""Colour-coded label maps -> class maps, for the FCN-score (p2p_tf/evaluation/fcn_score.py):
the palettes, the nearest-colour mapping and the pipelines of (labels, photo) pairs that the
segmenter trains and is scored on.

The classes come from the colour-coded label half of each side-by-side pair, mapped to the
nearest palette colour (`colours_to_classes`) at the file's full resolution: a bilinearly
resized label image holds blends of two colours that can land near a third. Pixels far from
every palette colour are off-palette: counted, reported and left out of the scores (VOID).
"""

import numpy as np
import tensorflow as tf

from p2p_tf import scorer_config
from p2p_tf.datasets import input_pipeline, preprocessing

# Class names and label colours, in class order 1, 2, ...; class 0 is VOID.
PALETTES = {
    # CMP Facade Database: label_names.txt and the colours of its PNG palette.
    'facades': (
        ('background', (0, 0, 170)),
        ('facade', (0, 0, 255)),
        ('window', (0, 85, 255)),
        ('door', (0, 170, 255)),
        ('cornice', (0, 255, 255)),
        ('sill', (85, 255, 170)),
        ('balcony', (170, 255, 85)),
        ('blind', (255, 255, 0)),
        ('deco', (255, 170, 0)),
        ('molding', (255, 85, 0)),
        ('pillar', (255, 0, 0)),
        ('shop', (170, 0, 0)),
    ),
    # Cityscapes (the colours of its label definitions, which the pix2pix archive's label halves
    # use): one entry per colour, so the void labels sharing black are 'unlabeled'. Not measured
    # here as an FCN-score palette (the shared data has no cityscapes).
    'cityscapes': (
        ('unlabeled', (0, 0, 0)),
        ('dynamic', (111, 74, 0)),
        ('ground', (81, 0, 81)),
        ('road', (128, 64, 128)),
        ('sidewalk', (244, 35, 232)),
        ('parking', (250, 170, 160)),
        ('rail track', (230, 150, 140)),
        ('building', (70, 70, 70)),
        ('wall', (102, 102, 156)),
        ('fence', (190, 153, 153)),
        ('guard rail', (180, 165, 180)),
        ('bridge', (150, 100, 100)),
        ('tunnel', (150, 120, 90)),
        ('pole', (153, 153, 153)),
        ('traffic light', (250, 170, 30)),
        ('traffic sign', (220, 220, 0)),
        ('vegetation', (107, 142, 35)),
        ('terrain', (152, 251, 152)),
        ('sky', (70, 130, 180)),
        ('person', (220, 20, 60)),
        ('rider', (255, 0, 0)),
        ('car', (0, 0, 142)),
        ('truck', (0, 0, 70)),
        ('bus', (0, 60, 100)),
        ('caravan', (0, 0, 90)),
        ('trailer', (0, 0, 110)),
        ('train', (0, 80, 100)),
        ('motorcycle', (0, 0, 230)),
        ('bicycle', (119, 11, 32)),
    ),
}
# The side of the pix2pix archives' A|B pairs that holds the label map, per palette: a run in
# the direction from that side translates label maps (the paper's labels -> photo).
LABEL_SIDES = {'facades': 'B', 'cityscapes': 'B'}
VOID = 0

# RGB -> (Y, Cb, Cr), JPEG's (JFIF) colour transform, rows Y, Cb, Cr.
RGB_TO_YCBCR = ((0.299, 0.587, 0.114),
                (-0.168736, -0.331264, 0.5),
                (0.5, -0.418688, -0.081312))
# Colour distances count chroma at a tenth: JPEG stores chroma at half resolution (4:2:0), so
# at a colour edge a pixel's chroma is a blend of its neighbours' while its luma stays close.
# On the 400 facades training label halves the nearest colour agrees with the exact class maps
# for 99.21% of the pixels this way, for 92.99% by plain RGB distance.
CHROMA_WEIGHT = 0.1
# The scorer config's default off_palette_tolerance (scorer_config.py says how it was chosen).
OFF_PALETTE_TOLERANCE = scorer_config.OFF_PALETTE_TOLERANCE


def input_palette(config):
    """The name of the palette of a run's inputs when they are label maps of a dataset in
    PALETTES (facades and cityscapes, labels -> photo), else None."""
    side = LABEL_SIDES.get(config.dataset)
    return config.dataset if side and config.direction.startswith(side) else None


def class_names(palette):
    """Names of the classes 1..K of a palette in PALETTES."""
    return [name for name, _ in PALETTES[palette]]


def colours_to_classes(labels, palette='facades', tolerance=OFF_PALETTE_TOLERANCE):
    """Colour-coded label image -> class indices, by nearest palette colour.

    labels: uint8 [..., H, W, 3] RGB, at the resolution it was drawn (never resized
    bilinearly); palette: a name in PALETTES. Distances are in luma levels with chroma counted
    at CHROMA_WEIGHT. Returns int32 [..., H, W]: classes 1..K, VOID (0) where the nearest
    colour is farther than `tolerance` (off-palette). Works eagerly and in tf.data.
    """
    to_ycbcr = tf.constant(RGB_TO_YCBCR, tf.float32)
    weights = tf.constant([1.0, CHROMA_WEIGHT, CHROMA_WEIGHT])
    colours = tf.constant([colour for _, colour in PALETTES[palette]], tf.float32)
    pixels = tf.linalg.matvec(to_ycbcr, tf.cast(labels, tf.float32)[..., tf.newaxis, :])
    references = tf.linalg.matvec(to_ycbcr, colours)
    squared = tf.reduce_sum(tf.square((pixels - references) * weights), axis=-1)
    classes = tf.argmin(squared, axis=-1, output_type=tf.int32) + 1
    return tf.where(tf.reduce_min(squared, axis=-1) > tolerance ** 2, VOID, classes)


def read_pairs(examples, direction):
    """Dataset of (labels, photo) uint8 [H, W, 3] at full size, in example order.

    examples: as input_pipeline.example_reader (examples.split_examples gives them).
    """
    count, read = input_pipeline.example_reader(examples)
    # Decoded at full size: the label colours must not go through a resize.
    dataset = tf.data.Dataset.range(count).map(
        lambda index: input_pipeline.decode_example(*read(index), 3, 3, direction),
        input_pipeline.AUTOTUNE)
    return input_pipeline.without_autotune_thread(dataset.prefetch(input_pipeline.AUTOTUNE))


def true_classes(labels, config, size):
    """Full-size label colours uint8 [H, W, 3] -> (classes uint8 [size, size] in 0..K, mapped
    at full size then resized with nearest neighbour; number of off-palette pixels at full
    size, int32 scalar). config: the scorer's (palette, off_palette_tolerance)."""
    classes = colours_to_classes(labels, config.palette, config.off_palette_tolerance)
    off_palette = tf.reduce_sum(tf.cast(classes == VOID, tf.int32))
    resized = tf.image.resize(classes[..., tf.newaxis], [size, size], method='nearest')
    return tf.cast(resized[..., 0], tf.uint8), off_palette


def load_split(examples, config):
    """All of a split in memory at the training size L = config.load_size: (photos uint8
    [N, L, L, 3], classes uint8 [N, L, L], off-palette pixels per image int32 [N])."""
    def example(labels, photo):
        classes, off_palette = true_classes(labels, config, config.load_size)
        return preprocessing.resize(photo, config.load_size), classes, off_palette

    dataset = read_pairs(examples, config.direction).map(example, input_pipeline.AUTOTUNE)
    return tuple(tf.stack(column) for column in zip(*dataset))


def training_batches(photos, classes, config, start_example=0):
    """Endless batches (photos float32 [B, S, S, 3] in [-1, 1], classes uint8 [B, S, S]) of
    the in-memory split (load_split), each example cropped to S = config.image_size and
    mirrored at random: the order, crops and mirrors are a function of (seed, example number),
    as in input_pipeline.train_dataset, so a resumed scorer sees what an uninterrupted one
    would have."""
    def example(number, index):
        seed = tf.stack([tf.cast(config.seed, tf.int64), number])
        photo, image_classes = preprocessing.random_jitter(
            tf.gather(photos, index), tf.gather(classes, index)[..., tf.newaxis], seed,
            config.image_size, flip=True)
        return preprocessing.to_unit_range(photo), image_classes[..., 0]

    dataset = input_pipeline.example_order(len(photos), config.seed, start_example)
    dataset = dataset.map(example, input_pipeline.AUTOTUNE, deterministic=True)
    return input_pipeline.without_autotune_thread(
        dataset.batch(config.batch_size, drop_remainder=True).prefetch(input_pipeline.AUTOTUNE))


def off_palette_message(off_palette):
    """'N off-palette label pixels in M images (left out)' for per-image counts."""
    off_palette = np.asarray(off_palette)
    return (f'{int(off_palette.sum())} off-palette label pixel(s) in '
            f'{int(np.count_nonzero(off_palette))} image(s) (left out of training and scores)')
