"""What the browser demo (demo_app.py) takes in and says about its model, with no web library:
the model's description, the brush palette, the drawn canvas and uploaded files turned into
the uint8 images `Translator.translate` takes, and the messages for input it cannot take.

A label -> photo model (facades, cityscapes, or a folder dataset whose inputs use few colours)
gets a palette of its label classes; any other model a free-colour brush. The canvas arrives
as an RGBA PNG: pixels never drawn or erased (alpha 0) count as the palette's first class
(facades' and cityscapes' background), or as white with a free brush.
"""

import base64
import io

import numpy as np
from PIL import Image

from p2p_tf.datasets import image_files, label_maps
from p2p_tf.errors import UserError

DEFAULT_MAX_MEGAPIXELS = 25.0
# A folder dataset's inputs are taken for label maps when this many colours or fewer cover
# LABEL_COVERAGE of the example inputs' pixels (photos and edge maps have thousands).
MAX_LABEL_COLOURS = 40
LABEL_COVERAGE = 0.98
FREE_BRUSH_BACKGROUND = (255, 255, 255)
PNG_DATA_URL = 'data:image/png;base64,'


class InputRefused(UserError):
    """Input the demo page answers with a message (the server keeps running)."""


def describe(translator):
    """{field: value} the page shows about the model: dataset, direction, training step, image
    size, channels and where it was loaded from."""
    config = translator.config
    return dict(dataset=config.dataset, direction=config.direction, step=translator.step,
                image_size=config.image_size, input_channels=config.input_channels,
                output_channels=config.output_channels, source=translator.source,
                kind='export' if translator.generator is None else 'checkpoint')


def hex_colour(rgb):
    return '#' + ''.join(f'{value:02x}' for value in rgb)


def observed_palette(images):
    """[(name, (r, g, b))] of the colours of label-map-like images, most frequent first, or
    None when they have more than MAX_LABEL_COLOURS main colours (not label maps)."""
    pixels = np.concatenate([np.asarray(image)[..., :3].reshape(-1, 3) for image in images])
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    order = np.argsort(-counts, kind='stable')
    covered = np.cumsum(counts[order]) / counts.sum()
    needed = int(np.searchsorted(covered, LABEL_COVERAGE) + 1)
    if needed > MAX_LABEL_COLOURS:
        return None
    return [(f'class {number} ({hex_colour(colours[index])})', tuple(int(v) for v in
                                                                 colours[index]))
            for number, index in enumerate(order[:needed], start=1)]


def brush_palette(config, example_images, requested='auto'):
    """[(class name, (r, g, b))] for a label -> photo model, None for a free-colour brush.

    requested: 'auto' (a known dataset's classes, else the colours of the example inputs when
    they look like label maps, else free), 'free', or a palette name in label_maps.PALETTES.
    """
    if requested == 'free' or config.input_channels != 3:
        return None
    if requested != 'auto':
        if requested not in label_maps.PALETTES:
            raise UserError(f'unknown palette {requested!r}; palettes: auto, free, '
                            f'{", ".join(label_maps.PALETTES)}')
        return list(label_maps.PALETTES[requested])
    known = label_maps.input_palette(config)
    if known:
        return list(label_maps.PALETTES[known])
    if config.dataset in label_maps.LABEL_SIDES or not example_images:
        return None  # A known dataset in its photo -> labels direction, or nothing to look at.
    return observed_palette(example_images)


def png_data_url(image):
    """uint8 [H, W, C] -> a data: URL of its PNG (the page's examples)."""
    buffer = io.BytesIO()
    Image.fromarray(np.squeeze(np.asarray(image), -1) if np.shape(image)[-1] == 1
                    else np.asarray(image)).save(buffer, format='PNG')
    return PNG_DATA_URL + base64.b64encode(buffer.getvalue()).decode()


def check_megapixels(width, height, max_megapixels):
    megapixels = width * height / 1e6
    if megapixels > max_megapixels:
        raise InputRefused(f'the image is {width}x{height} ({megapixels:.1f} megapixels); '
                           f'this demo takes up to {max_megapixels:g} megapixels '
                           '(--max_megapixels)')


def canvas_image(data_url, palette, max_megapixels=DEFAULT_MAX_MEGAPIXELS):
    """The canvas's RGBA PNG data URL -> uint8 [H, W, 3]: undrawn and erased pixels take the
    palette's first colour (white with a free brush). An empty canvas (nothing drawn) or
    anything but a PNG data URL is refused."""
    if not isinstance(data_url, str) or not data_url.startswith(PNG_DATA_URL):
        raise InputRefused('the canvas sent no image; draw again or reload the page')
    try:
        with Image.open(io.BytesIO(base64.b64decode(data_url[len(PNG_DATA_URL):]))) as image:
            check_megapixels(*image.size, max_megapixels)
            pixels = np.asarray(image.convert('RGBA'))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise InputRefused('the canvas sent an unreadable image; draw again') from None
    drawn = pixels[..., 3] > 0
    if not drawn.any():
        raise InputRefused('the canvas is empty: draw on it, pick an example or open an image')
    background = palette[0][1] if palette else FREE_BRUSH_BACKGROUND
    rgb = pixels[..., :3].copy()
    rgb[~drawn] = background
    return rgb


def uploaded_image(path, max_megapixels=DEFAULT_MAX_MEGAPIXELS):
    """An uploaded file -> uint8 [H, W, C] upright, as `translate` reads it; a file that is not
    an image, or is larger than max_megapixels (checked from its header, before decoding), is
    refused with the reason."""
    import tensorflow as tf
    if not path:
        raise InputRefused('no file was uploaded')
    try:
        width, height = image_files.image_size(path)
    except UserError:
        raise InputRefused('the file is not an image this demo can read (PNG, JPEG, BMP or '
                           'GIF)') from None
    check_megapixels(width, height, max_megapixels)
    try:
        return image_files.read_image(path)
    except tf.errors.OpError:
        raise InputRefused('the image file is damaged or truncated and cannot be decoded') \
            from None
