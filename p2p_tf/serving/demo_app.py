"""The browser demo: draw or upload an input and watch a trained model translate it
(`python -m p2p_tf.demo`, or `serve()` from a notebook). Built with Gradio, the optional
`demo` extra (`pip install "p2p_tf[demo]"`).

Every translation goes through the one `Translator` the command line uses (padding, tiling,
paper or eval mode), one request at a time: requests queue, so eight at once are all answered
and memory stays that of one translation, bounded by the tile size. Input it cannot take (not
an image, too large, an empty canvas) gets a message in the page; the server keeps running.

Nothing is fetched from elsewhere: no share link (Gradio turns one on by default in Colab;
here it is always off, and Colab shows the page through its own port proxy), no analytics or
version check, and the theme's fonts and scripts come with Gradio itself.
"""

import contextlib
import os
import socket
import sys
import time

# Read by Gradio when it is imported: no usage reports, no version check against PyPI.
os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'

import gradio as gr  # noqa: E402

from p2p_tf import image_sizes  # noqa: E402
from p2p_tf.datasets import examples as examples_lib  # noqa: E402
from p2p_tf.datasets import image_files, label_maps, value_ranges  # noqa: E402
from p2p_tf.errors import UserError  # noqa: E402
from p2p_tf.serving import demo_inputs, translation  # noqa: E402

DEFAULT_PORT = 7860  # Gradio's own default.
LOCAL_HOSTS = ('127.0.0.1', 'localhost', '::1')
QUEUE_SIZE = 64
EXAMPLE_COUNT = 8
MODE_CHOICES = {'paper': 'paper: dropout on, a new sample each time (the paper\'s test time)',
                'eval': 'eval: deterministic (Keras inference mode)'}
ASSETS = os.path.dirname(__file__)


def asset(name):
    with open(os.path.join(ASSETS, name), encoding='utf-8') as f:
        return f.read()


def direction_text(config):
    """'labels -> photo (BtoA)' for a known label -> photo model, else 'A -> B (AtoB)'."""
    source, target = config.direction.split('to')
    if label_maps.input_palette(config):
        return f'labels -> photo ({config.direction})'
    return f'{source} -> {target} ({config.direction})'


def model_markdown(translator):
    info = demo_inputs.describe(translator)
    step = f'step {info["step"]:,}' if info['step'] >= 0 else 'step unknown'
    return (f'**{info["dataset"]}**, {direction_text(translator.config)}, {step}, trained at '
            f'{image_sizes.size_text(info["image_size"])}, {info["input_channels"]} -> '
            f'{info["output_channels"]} channels. Model: {info["kind"]} `{info["source"]}`.')


def example_images(translator, examples_path=None, data_dir=None, count=EXAMPLE_COUNT):
    """{name: uint8 [H, W, C]} to start drawing from: the images at examples_path (a file or
    folder), else the input halves of the model's val (or test) split when a local copy of
    its dataset is found (examples.example_inputs), else {}."""
    if examples_path:
        return {os.path.basename(path): image_files.read_image(path)
                for path in translation.input_files(examples_path)[:count]}
    try:
        return examples_lib.example_inputs(translator.config, data_dir, count=count)
    except UserError:
        return {}


def output_image(image):
    """uint8 [H, W, C] -> what gr.Image shows: [H, W] for one channel."""
    return image[..., 0] if image.shape[-1] == 1 else image


class Demo:
    """The page's event handlers around one Translator (and its other mode, sharing weights).

    Each handler returns (image or None, status message); refused input gives None and the
    reason, never an exception, so the page stays usable.
    """

    def __init__(self, translator, palette, max_megapixels):
        self.translators = {mode: translator.in_mode(mode) for mode in translator.modes}
        self.palette = palette
        self.max_megapixels = max_megapixels
        self.answers = 0

    def translate(self, image, mode, seed):
        translator = self.translators[mode]
        return output_image(translator.translate(
            image, seed=int(seed) if translator.seedable else None))

    def answer(self, read, mode, seed, what):
        # Answers are numbered, so the page (and its tests) can tell a new one from the last.
        self.answers += 1
        try:
            image = read()
            start = time.perf_counter()
            output = self.translate(image, mode, seed)
        except UserError as e:
            return None, f'**Not translated:** {e} (#{self.answers})'
        seconds = time.perf_counter() - start
        height, width = image.shape[:2]
        sample = f', sample {int(seed)}' if mode == 'paper' else ''
        return output, (f'{what} {width}x{height}, {mode} mode{sample}, in {seconds:.2f} s '
                        f'(#{self.answers}).')

    def drawing(self, png, mode, seed):
        return self.answer(lambda: demo_inputs.canvas_image(png, self.palette,
                                                            self.max_megapixels),
                           mode, seed, 'Translated the drawing,')

    def upload(self, path, mode, seed):
        if not path:
            return None, 'Upload an image to translate it.'
        return self.answer(lambda: demo_inputs.uploaded_image(path, self.max_megapixels),
                           mode, seed, f'Translated {os.path.basename(path)},')


def build(translator, examples=None, palette=None,
          max_megapixels=demo_inputs.DEFAULT_MAX_MEGAPIXELS):
    """The gr.Blocks page for `translator`: examples {name: uint8 image} to start drawing
    from, palette [(class name, rgb)] of a label -> photo model or None for a free brush."""
    demo = Demo(translator, palette, max_megapixels)
    mode_choices = [(MODE_CHOICES[mode], mode) for mode in translator.modes]
    with gr.Blocks(title='p2p_tf demo', analytics_enabled=False,
                   delete_cache=(600, 3600)) as page:
        gr.Markdown('## p2p_tf: pix2pix in the browser\n' + model_markdown(translator),
                    elem_id='p2p-model')
        with gr.Row():
            mode = gr.Radio(mode_choices, value=translator.mode, label='Mode',
                            interactive=len(mode_choices) > 1, elem_id='p2p-mode')
            new_sample = gr.Button('New sample', elem_id='p2p-new-sample', scale=0,
                                   min_width=160)
        seed = gr.State(0)
        drawn = gr.State(None)
        with gr.Tab('Draw'):
            with gr.Row():
                with gr.Column():
                    canvas = gr.HTML(
                        html_template=asset('demo_canvas.html'), js_on_load=asset(
                            'demo_canvas.js'), elem_id='p2p-canvas', apply_default_css=False,
                        palette=[dict(name=name, hex=demo_inputs.hex_colour(rgb))
                                 for name, rgb in palette] if palette else None,
                        examples=[dict(name=name, url=demo_inputs.png_data_url(image))
                                  for name, image in (examples or {}).items()],
                        **dict(zip(('height', 'width'),
                                   image_sizes.image_shape(translator.config))))
                    gr.Markdown(
                        ('Brush colours are the label classes; erased pixels count as '
                         f'{palette[0][0]}.' if palette else 'Pick any colour; erased pixels '
                         'count as white.') + ' The translation follows as you draw.')
                with gr.Column():
                    drawing_output = gr.Image(label='Translation', type='numpy', format='png',
                                              interactive=False, elem_id='p2p-drawing-output',
                                              buttons=['download', 'fullscreen'])
                    drawing_status = gr.Markdown(elem_id='p2p-drawing-status')
        with gr.Tab('Upload'):
            with gr.Row():
                with gr.Column():
                    upload = gr.File(label='An image of any size (translated as `translate` '
                                     'does: mirror padding, tiles for large images)',
                                     type='filepath', elem_id='p2p-upload')
                with gr.Column():
                    upload_output = gr.Image(label='Translation', type='numpy', format='png',
                                             interactive=False, elem_id='p2p-upload-output',
                                             buttons=['download', 'fullscreen'])
                    upload_status = gr.Markdown(elem_id='p2p-upload-status')

        translate_events = dict(concurrency_id='translate', concurrency_limit=1)

        def translate_drawing(mode, seed, event: gr.EventData):
            png = (event._data or {}).get('png')
            return (*demo.drawing(png, mode, seed), png)

        canvas.change(translate_drawing, [mode, seed], [drawing_output, drawing_status, drawn],
                      trigger_mode='always_last', api_name=False, **translate_events)
        upload.change(demo.upload, [upload, mode, seed], [upload_output, upload_status],
                      api_name='translate_upload', **translate_events)

        def redraw(png, path, mode, seed):
            drawing = demo.drawing(png, mode, seed) if png else (gr.skip(), gr.skip())
            uploaded = demo.upload(path, mode, seed) if path else (gr.skip(), gr.skip())
            return (*drawing, *uploaded)

        outputs = [drawing_output, drawing_status, upload_output, upload_status]
        new_sample.click(lambda value: value + 1, seed, seed, api_name=False).then(
            redraw, [drawn, upload, mode, seed], outputs, api_name=False, **translate_events)
        mode.change(redraw, [drawn, upload, mode, seed], outputs, api_name=False,
                    **translate_events)
    page.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return page


def check_port(host, port):
    """A UserError when `port` cannot be listened on at `host` (in use, or not allowed)."""
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with contextlib.closing(socket.socket(family, socket.SOCK_STREAM)) as probe:
        # As the server will: a port whose last connections linger in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise UserError(f'cannot listen on {host}:{port} ({e.strerror or e}); pass '
                            '--port=N for another port') from None


def check_shows_pictures(translator):
    """A UserError unless the model translates pictures a browser draws and shows: 1, 3 or 4
    channels of 8 bits in and out."""
    config = translator.config
    for side, channels in (('input', config.input_channels), ('target', config.output_channels)):
        scaling = value_ranges.side_scaling(config, side)
        if channels > 4 or scaling.dtype != 'uint8':
            raise UserError(f'the demo shows 8-bit images of 1-4 channels, and this '
                            f'model\'s {side}s are {channels}-band {scaling.dtype}; translate '
                            'its files with python -m p2p_tf.translate')


def serve(source, checkpoint=None, host='127.0.0.1', port=DEFAULT_PORT, mode=None,
          examples_path=None, data_dir=None, palette='auto',
          max_megapixels=demo_inputs.DEFAULT_MAX_MEGAPIXELS, tile_size=1024, tile_overlap=128,
          block=True, inline=None):
    """Starts the demo page for `source` (a workdir, one of its checkpoints, or an export) at
    http://HOST:PORT/ and returns (page, url). block=True serves until interrupted (the
    command); block=False returns once the page is up (a notebook cell: shown inline there,
    in Colab through its port proxy; `page.close()` stops it).

    port=None: the first free port from Gradio's 7860 up (a notebook's choice).
    palette: 'auto', 'free' or a palette name (demo_inputs.brush_palette).
    """
    if port is not None:
        check_port(host, port)
    translator = translation.Translator(source, mode=mode, checkpoint=checkpoint,
                                        tile_size=tile_size, tile_overlap=tile_overlap,
                                        convert_channels=True)
    check_shows_pictures(translator)
    examples = example_images(translator, examples_path, data_dir)
    brush = demo_inputs.brush_palette(translator.config, list(examples.values()), palette)
    page = build(translator, examples, brush, max_megapixels)
    try:
        page.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                    quiet=True, prevent_thread_lock=True, inline=inline, ssr_mode=False,
                    show_error=False, pwa=False, mcp_server=False,
                    css=asset('demo_canvas.css'))
    except OSError as e:
        raise UserError(f'cannot start the demo on {host}:{port}: {e}') from None
    if host not in LOCAL_HOSTS:
        print(f'warning: --host={host}: anyone who can reach this machine on port '
              f'{page.server_port} can use the demo', file=sys.stderr, flush=True)
    url = f'http://{"[" + host + "]" if ":" in host else host}:{page.server_port}/'
    print(f'p2p_tf demo of {source} at {url}', flush=True)
    if block:
        page.block_thread()
    return page, url

