"""Helpers for the notebooks in notebooks/ (Colab or Jupyter): where they run, what they train
on, sample grids redrawn while training, and images shown side by side (example inputs from
a local copy of the data: p2p_tf.datasets.examples.example_inputs).

Nothing here trains or translates; the notebooks call training, inference and serving for that.
"""

import base64
import io

import numpy as np
import tensorflow as tf
from PIL import Image


def in_colab():
    """Whether this runs in a Google Colab runtime (where Drive, upload and download work)."""
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


def accelerator_summary():
    """One line naming the TPU or GPUs TensorFlow sees, or saying that it trains on the CPU."""
    tpu_cores = tf.config.list_logical_devices('TPU')
    if tpu_cores:
        return f'found a TPU: {len(tpu_cores)} TPU cores'
    gpus = tf.config.list_physical_devices('GPU')
    if gpus:
        names = [tf.config.experimental.get_device_details(gpu).get('device_name', gpu.name)
                 for gpu in gpus]
        return f'found {len(gpus)} GPU(s): {", ".join(names)}'
    return ('found no GPU or TPU: training runs on the CPU, slowly (in Colab: Runtime > Change '
            'runtime type)')


def grid_image(grid):
    """float [n, H, W, 3] in [0, 1] (training's on_sample grid: rows of input | target |
    output) -> a PIL image of the n rows stacked top to bottom."""
    rows = np.concatenate(list(np.asarray(grid)), axis=0)
    return Image.fromarray(np.round(np.clip(rows, 0, 1) * 255).astype(np.uint8))


class LiveSamples:
    """An `on_sample` callback for pix2pix.train: one output area of the notebook, redrawn
    with the latest sample grid and its step. `steps` lists the steps shown."""

    # Tiny runs draw 32-pixel rows; shown at least this wide (pixelated) they stay readable.
    MIN_WIDTH = 384

    def __init__(self):
        from IPython import display  # Only notebooks use this class; IPython is theirs.
        self.html = display.HTML
        self.handle = display.DisplayHandle()
        self.handle.display(self.html('<p>sample images appear here while training</p>'))
        self.steps = []

    def __call__(self, step, grid):
        image = grid_image(grid)
        png = io.BytesIO()
        image.save(png, format='PNG')
        data = base64.b64encode(png.getvalue()).decode()
        self.handle.update(self.html(
            f'<p>step {step}: input | target | output</p>'
            f'<img src="data:image/png;base64,{data}" '
            f'style="width: {max(image.width, self.MIN_WIDTH)}px; image-rendering: pixelated">'))
        self.steps.append(step)


def show_images(titled_images, height=3.0):
    """Shows uint8 [H, W, C] images (C 1 or 3) left to right at their own aspect ratios, each
    under its title: {title: image}. `height` is the figure's height in inches."""
    import matplotlib.pyplot as plt
    widths = [image.shape[1] / image.shape[0] for image in titled_images.values()]
    figure, axes = plt.subplots(1, len(widths), squeeze=False,
                                figsize=(height * sum(widths), height + 0.4),
                                gridspec_kw=dict(width_ratios=widths))
    for axis, (title, image) in zip(axes[0], titled_images.items()):
        gray = image.shape[-1] == 1
        axis.imshow(image[..., 0] if gray else image, cmap='gray' if gray else None,
                    vmin=0, vmax=255)
        axis.set_title(title, fontsize=9)
        axis.axis('off')
    plt.show()
    plt.close(figure)
