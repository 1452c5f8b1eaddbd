"""The browser demo without a browser: its input handling, palettes, handlers, queue and
command-line errors (tests/test_demo_browser.py drives the page in Chromium)."""

import base64
import concurrent.futures
import io
import os
import socket
import threading

import ml_collections
import numpy as np
import pytest
from PIL import Image

from p2p_tf.datasets import label_maps
from p2p_tf.errors import UserError
from p2p_tf.serving import demo_inputs

from conftest import run_command, synthetic_label_pair, tiny_config

gradio = pytest.importorskip('gradio', reason='the demo tests need the demo extra (gradio)')


def data_url(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format='PNG')
    return demo_inputs.PNG_DATA_URL + base64.b64encode(buffer.getvalue()).decode()


def label_run(root, steps=2):
    """A tiny run trained for `steps` steps on a folder of synthetic facades-coloured label
    maps -> photos (B -> A), with its data folder; returns (workdir, data folder)."""
    from p2p_tf.training import pix2pix
    rng = np.random.default_rng(0)
    data = root / 'labels'
    for split, count in (('train', 4), ('val', 2)):
        os.makedirs(data / split)
        for number in range(count):
            pair, _ = synthetic_label_pair(rng, size=40)
            Image.fromarray(pair).save(data / split / f'{number}.png')
    config = tiny_config(dataset='folder', direction='BtoA', steps=steps, log_every=steps)
    workdir = root / 'run'
    pix2pix.train(config, str(workdir), str(data), stream=io.StringIO())
    return str(workdir), str(data)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    return label_run(tmp_path_factory.mktemp('demo'))


@pytest.fixture(scope='module')
def translator(trained):
    from p2p_tf.serving import translation
    return translation.Translator(trained[0], convert_channels=True)


def config(dataset, direction, channels=3):
    return ml_collections.ConfigDict(dict(dataset=dataset, direction=direction,
                                          input_channels=channels))


def test_known_label_datasets_draw_with_their_classes_in_the_labels_direction_only():
    facades = demo_inputs.brush_palette(config('facades', 'BtoA'), [])
    assert [name for name, _ in facades][:3] == ['background', 'facade', 'window']
    assert facades == list(label_maps.PALETTES['facades']) and len(facades) == 12
    assert dict(demo_inputs.brush_palette(config('cityscapes', 'BtoA'), []))['road'] == (
        128, 64, 128)
    # Photo -> labels, maps, gray inputs, or asked for: a free brush.
    assert demo_inputs.brush_palette(config('facades', 'AtoB'), []) is None
    assert demo_inputs.brush_palette(config('maps', 'AtoB'), []) is None
    assert demo_inputs.brush_palette(config('facades', 'BtoA', channels=1), []) is None
    assert demo_inputs.brush_palette(config('facades', 'BtoA'), [], 'free') is None
    assert demo_inputs.brush_palette(config('maps', 'AtoB'), [], 'facades') == facades
    with pytest.raises(UserError, match='unknown palette .nope.; palettes: auto, free, facades'):
        demo_inputs.brush_palette(config('maps', 'AtoB'), [], 'nope')


def test_a_folder_of_label_maps_gets_their_colours_and_photos_a_free_brush():
    rng = np.random.default_rng(1)
    labels = [synthetic_label_pair(rng, size=48)[0][:, 48:] for _ in range(3)]
    palette = demo_inputs.brush_palette(config('folder', 'BtoA'), labels)
    facades_colours = {colour for _, colour in label_maps.PALETTES['facades']}
    assert palette and {colour for _, colour in palette} <= facades_colours
    # Most frequent first: the facade class fills the background of every synthetic map.
    assert palette[0] == ('class 1 (#0000ff)', (0, 0, 255))
    photos = [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)]
    assert demo_inputs.brush_palette(config('folder', 'AtoB'), photos) is None


def test_the_canvas_becomes_an_rgb_image_with_erased_pixels_as_the_first_class():
    pixels = np.zeros([6, 8, 4], np.uint8)
    pixels[1:3, 2:5] = (255, 0, 0, 255)
    palette = list(label_maps.PALETTES['facades'])
    image = demo_inputs.canvas_image(data_url(pixels), palette)
    assert image.shape == (6, 8, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[1, 2], (255, 0, 0))
    np.testing.assert_array_equal(image[0, 0], (0, 0, 170))  # background
    np.testing.assert_array_equal(demo_inputs.canvas_image(data_url(pixels), None)[5, 7],
                                  (255, 255, 255))


@pytest.mark.parametrize('sent, message', [
    (None, 'the canvas sent no image'),
    ('data:image/png;base64,bm90IGEgcG5n', 'unreadable image'),
    (data_url(np.zeros([4, 4, 4], np.uint8)), 'the canvas is empty'),
])
def test_a_canvas_that_cannot_be_translated_is_refused_with_the_reason(sent, message):
    with pytest.raises(demo_inputs.InputRefused, match=message):
        demo_inputs.canvas_image(sent, None)


def test_uploads_are_refused_when_not_images_or_above_the_size_limit(tmp_path):
    text = tmp_path / 'notes.png'
    text.write_text('not an image')
    with pytest.raises(demo_inputs.InputRefused, match='not an image'):
        demo_inputs.uploaded_image(str(text))
    picture = tmp_path / 'wide.png'
    Image.fromarray(np.zeros([100, 300, 3], np.uint8)).save(picture)
    with pytest.raises(demo_inputs.InputRefused, match=r'300x100 \(0.0 megapixels\); this '
                       r'demo takes up to 0.02 megapixels \(--max_megapixels\)'):
        demo_inputs.uploaded_image(str(picture), max_megapixels=0.02)
    assert demo_inputs.uploaded_image(str(picture)).shape == (100, 300, 3)


def test_handlers_translate_through_the_translator_and_answer_bad_input_in_the_page(
        translator, tmp_path):
    from p2p_tf.serving import demo_app
    demo = demo_app.Demo(translator, None, max_megapixels=1.0)
    drawing = data_url(np.random.default_rng(0).integers(0, 256, (40, 56, 4), dtype=np.uint8))
    output, status = demo.drawing(drawing, 'eval', 0)
    assert output.shape == (40, 56, 3) and 'eval mode' in status
    image = demo_inputs.canvas_image(drawing, None)
    np.testing.assert_array_equal(output, translator.in_mode('eval').translate(image))
    # Paper mode: one seed, one sample; another seed, another sample.
    first, second = demo.drawing(drawing, 'paper', 3)[0], demo.drawing(drawing, 'paper', 3)[0]
    np.testing.assert_array_equal(first, second)
    assert np.abs(first.astype(int) - demo.drawing(drawing, 'paper', 4)[0]).max() > 0
    empty = data_url(np.zeros([8, 8, 4], np.uint8))
    assert demo.drawing(empty, 'eval', 0) == (None, '**Not translated:** the canvas is empty: '
                                              'draw on it, pick an example or open an image '
                                              f'(#{demo.answers})')
    bad = tmp_path / 'bad.jpg'
    bad.write_bytes(b'\xff\xd8 not really')
    assert demo.upload(str(bad), 'eval', 0)[0] is None
    big = tmp_path / 'big.png'
    Image.fromarray(np.zeros([1000, 1001, 3], np.uint8)).save(big)
    assert 'megapixels' in demo.upload(str(big), 'eval', 0)[1]
    good = tmp_path / 'good.png'
    Image.fromarray(np.zeros([70, 30, 3], np.uint8)).save(good)
    assert demo.upload(str(good), 'eval', 0)[0].shape == (70, 30, 3)


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def test_eight_requests_at_once_are_queued_and_all_answered(translator, tmp_path):
    from gradio_client import Client, handle_file

    from p2p_tf.serving import demo_app
    active, most = [0], [0]
    lock = threading.Lock()

    class Counting(type(translator)):
        """Counts how many translations run at the same time."""

        def translate(self, image, seed=None):
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
            try:
                return super().translate(image, seed)
            finally:
                with lock:
                    active[0] -= 1

    counting = Counting.__new__(Counting)
    counting.__dict__.update(translator.__dict__)
    page = demo_app.build(counting)
    port = free_port()
    page.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True,
                quiet=True, share=False, ssr_mode=False)
    try:
        sizes = [(48 + 8 * i, 64 + 16 * i) for i in range(8)]
        paths = []
        for number, (height, width) in enumerate(sizes):
            paths.append(tmp_path / f'{number}.png')
            Image.fromarray(np.full([height, width, 3], 20 * number, np.uint8)).save(paths[-1])
        client = Client(f'http://127.0.0.1:{port}/', verbose=False)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda path: client.predict(
                handle_file(str(path)), 'eval', 0, api_name='/translate_upload'), paths))
    finally:
        page.close()
    for (height, width), (output, status) in zip(sizes, results):
        assert f'{width}x{height}, eval mode' in status
        assert np.asarray(Image.open(output)).shape == (height, width, 3)
    assert most[0] == 1  # One translation at a time: memory is that of one.


def test_a_wrong_workdir_is_one_line_and_status_2(tmp_path):
    result = run_command('p2p_tf.demo', f'--workdir={tmp_path / "missing"}')
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f'p2p_tf.demo: error: {tmp_path / "missing"} does not exist (give a training run\'s '
        'workdir, one of its checkpoints, or an export)']


def test_a_port_in_use_is_refused_before_the_model_loads(tmp_path):
    """serve's UserError, which the command prints as one line with exit status 2."""
    from p2p_tf.serving import demo_app
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError) as error:
            demo_app.serve(str(tmp_path / 'not_even_a_model'), port=port)
    assert str(error.value) == (f'cannot listen on 127.0.0.1:{port} (Address already in use); '
                                'pass --port=N for another port')


def test_serve_prints_its_url_and_warns_when_listening_beyond_this_machine(trained, capsys):
    from p2p_tf.serving import demo_app
    port = free_port()
    page, url = demo_app.serve(trained[0], host='0.0.0.0', port=port, data_dir=trained[1],
                               block=False)
    try:
        assert url == f'http://0.0.0.0:{port}/'
        captured = capsys.readouterr()
        assert f'p2p_tf demo of {trained[0]} at {url}' in captured.out
        assert (f'warning: --host=0.0.0.0: anyone who can reach this machine on port {port} '
                'can use the demo') in captured.err
    finally:
        page.close()
