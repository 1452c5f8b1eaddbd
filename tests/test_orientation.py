"""Photos as they are shown: an EXIF orientation tag (every phone photo has one) is applied
wherever images are read, so a portrait photo stays portrait."""

import numpy as np
import pytest
from PIL import Image, ImageOps

from p2p_tf.datasets import image_files, input_pipeline
from p2p_tf.datasets import tools as data_tools
from p2p_tf.serving import translation

from conftest import tiny_config
from test_inference import make_run_dir


def write_photo(path, orientation, height=24, width=40, seed=0):
    """A smooth JPEG stored height x width, different in every corner, with the EXIF
    orientation tag; returns the pixels a viewer shows (Pillow's exif_transpose)."""
    rows, columns = np.mgrid[0:height, 0:width]
    pixels = np.stack([255 * columns / width, 255 * rows / height,
                       np.full((height, width), 40 + 50 * seed)], axis=-1).astype(np.uint8)
    pixels[:height // 3, :width // 4] = 255  # A white block in the stored top-left corner.
    exif = Image.Exif()
    exif[image_files.ORIENTATION_TAG] = orientation
    Image.fromarray(pixels).save(path, quality=98, exif=exif)
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert('RGB'))


def close(first, second):
    """Two decoders of one JPEG differ by a level or two; a turned image differs entirely."""
    return first.shape == second.shape and np.abs(first.astype(int) - second).mean() < 3


@pytest.mark.parametrize('orientation', [1, 2, 3, 4, 5, 6, 7, 8])
def test_read_image_turns_a_photo_upright(tmp_path, orientation):
    shown = write_photo(tmp_path / 'photo.jpg', orientation)
    pixels = image_files.read_image(str(tmp_path / 'photo.jpg'))
    assert close(pixels, shown)
    if orientation != 1:
        assert not close(np.asarray(Image.open(tmp_path / 'photo.jpg')), shown)  # As stored.
    width, height = image_files.image_size(str(tmp_path / 'photo.jpg'))
    assert (height, width) == shown.shape[:2]


@pytest.mark.parametrize('orientation', [3, 6, 8])
def test_translate_writes_a_portrait_photo_upright(tmp_path, orientation):
    workdir, _ = make_run_dir(tmp_path / 'run')
    shown = write_photo(tmp_path / 'photos' / 'phone.jpg', orientation) if (
        (tmp_path / 'photos').mkdir() is None) else None
    written, _ = translation.Translator(str(workdir), mode='eval').translate_files(
        str(tmp_path / 'photos'), str(tmp_path / 'out'))
    with Image.open(written[0]) as output:
        assert (output.height, output.width) == shown.shape[:2]


@pytest.mark.parametrize('orientation', [3, 6, 8])
def test_training_reads_separate_photos_upright(tmp_path, orientation):
    (tmp_path / 'A').mkdir()
    (tmp_path / 'B').mkdir()
    shown_a = write_photo(tmp_path / 'A' / '1.jpg', orientation, height=32, width=48)
    shown_b = write_photo(tmp_path / 'B' / '1.jpg', 1, height=48, width=32, seed=1)
    count, read = input_pipeline.example_reader([(str(tmp_path / 'A' / '1.jpg'),
                                                  str(tmp_path / 'B' / '1.jpg'))])
    source, target = input_pipeline.decode_example(*read(0), 3, 3, 'AtoB')
    assert close(np.asarray(source), shown_a) and close(np.asarray(target), shown_b)
    # The whole pipeline, as training and evaluation read it.
    config = tiny_config(dataset='folder', image_size=32, load_size=32)
    (inputs, _), = input_pipeline.eval_dataset(
        [(str(tmp_path / 'A' / '1.jpg'), str(tmp_path / 'B' / '1.jpg'))], config).take(1)
    upright = np.asarray(Image.fromarray(shown_a).resize((32, 32), Image.Resampling.BILINEAR))
    assert np.abs((np.asarray(inputs[0]) + 1) * 127.5 - upright).mean() < 12


def test_combine_puts_photos_upright(tmp_path):
    (tmp_path / 'a').mkdir()
    (tmp_path / 'b').mkdir()
    shown = write_photo(tmp_path / 'a' / 'x.jpg', 6, height=24, width=40)
    write_photo(tmp_path / 'b' / 'x.jpg', 1, height=40, width=24, seed=1)
    data_tools.combine(tmp_path / 'a', tmp_path / 'b', tmp_path / 'pairs')
    with Image.open(tmp_path / 'pairs' / 'x.png') as pair:
        combined = np.asarray(pair.convert('RGB'))
    assert combined.shape == (40, 48, 3) and close(combined[:, :24], shown)
