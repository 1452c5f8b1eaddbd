// The drawing canvas of the p2p_tf demo page (p2p_tf/serving/demo_app.py), run by Gradio's
// gr.HTML as its js_on_load with `element`, `props` and `trigger` in scope.
//
// props.palette: [{name, hex}] of a label -> photo model's classes, or null for a free-colour
// brush; props.examples: [{name, url}] of example inputs (PNG data URLs); props.height and
// props.width: the model's training size, that of the blank canvas when there is no example.
//
// Strokes are drawn pixel by pixel, with no anti-aliasing, so a label map holds exactly the
// palette's colours. Erased pixels become transparent; the server counts them as the first
// class (or white). After each change the canvas is sent as a PNG, throttled while a stroke
// goes on and debounced after it ends: trigger('change', {png}).

const palette = props.palette || null;
const examples = props.examples || [];
const THROTTLE_MS = 400;
const DEBOUNCE_MS = 120;
const UNDO_LIMIT = 40;
const MAX_SIDE = 1024;

const root = element.querySelector('.p2p-canvas');
const canvas = root.querySelector('canvas');
const context = canvas.getContext('2d', {willReadFrequently: true});
const note = root.querySelector('.p2p-note');
const sizeInput = root.querySelector('.p2p-size');
const sizeLabel = root.querySelector('.p2p-size-label');
const exampleSelect = root.querySelector('.p2p-example');
const undoStack = [];
let tool = 'brush';
let colour = palette ? palette[0].hex : '#000000';
let stroke = null;  // {pixels: ImageData, x, y} while the pointer is down
let lastSent = 0;
let pending = null;
let sent = 0;

function say(text) { note.textContent = text; }

function rgba(hex) {
  const value = parseInt(hex.slice(1), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255, 255];
}

function send() {
  pending = null;
  lastSent = Date.now();
  sent += 1;
  canvas.dataset.sent = String(sent);
  trigger('change', {png: canvas.toDataURL('image/png')});
}

function schedule(delay) {
  if (pending !== null) clearTimeout(pending);
  pending = setTimeout(send, delay);
}

function remember() {
  undoStack.push(context.getImageData(0, 0, canvas.width, canvas.height));
  if (undoStack.length > UNDO_LIMIT) undoStack.shift();
}

function paint() { return tool === 'eraser' ? [0, 0, 0, 0] : rgba(colour); }

// A disc of the brush's diameter centred on pixel (cx, cy), written into `pixels`.
function dab(pixels, cx, cy, value) {
  const radius = Math.max(0.5, Number(sizeInput.value) / 2);
  const reach = Math.ceil(radius);
  const {width, height, data} = pixels;
  for (let y = Math.max(0, cy - reach); y <= Math.min(height - 1, cy + reach); y++) {
    for (let x = Math.max(0, cx - reach); x <= Math.min(width - 1, cx + reach); x++) {
      const dx = x - cx, dy = y - cy;
      if (dx * dx + dy * dy <= radius * radius) data.set(value, (y * width + x) * 4);
    }
  }
}

function line(pixels, x0, y0, x1, y1, value) {
  const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0)));
  for (let i = 0; i <= steps; i++) {
    dab(pixels, Math.round(x0 + (x1 - x0) * i / steps), Math.round(y0 + (y1 - y0) * i / steps),
        value);
  }
}

// Fills the 4-connected region of pixels the colour of (x, y) with `value`.
function fill(x, y, value) {
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  const words = new Uint32Array(pixels.data.buffer);
  const target = words[y * canvas.width + x];
  const replacement = new Uint32Array(new Uint8ClampedArray(value).buffer)[0];
  if (target === replacement) return;
  const todo = [y * canvas.width + x];
  while (todo.length) {
    const index = todo.pop();
    if (words[index] !== target) continue;
    words[index] = replacement;
    const px = index % canvas.width;
    if (px > 0) todo.push(index - 1);
    if (px < canvas.width - 1) todo.push(index + 1);
    if (index >= canvas.width) todo.push(index - canvas.width);
    if (index + canvas.width < words.length) todo.push(index + canvas.width);
  }
  context.putImageData(pixels, 0, 0);
}

function position(event) {
  const box = canvas.getBoundingClientRect();
  return [Math.min(canvas.width - 1, Math.max(0, Math.floor(
            (event.clientX - box.left) * canvas.width / box.width))),
          Math.min(canvas.height - 1, Math.max(0, Math.floor(
            (event.clientY - box.top) * canvas.height / box.height)))];
}

canvas.addEventListener('pointerdown', (event) => {
  event.preventDefault();
  canvas.setPointerCapture(event.pointerId);
  remember();
  const [x, y] = position(event);
  if (tool === 'fill') {
    fill(x, y, rgba(colour));
    schedule(DEBOUNCE_MS);
    return;
  }
  stroke = {pixels: context.getImageData(0, 0, canvas.width, canvas.height), x, y};
  dab(stroke.pixels, x, y, paint());
  context.putImageData(stroke.pixels, 0, 0);
});

canvas.addEventListener('pointermove', (event) => {
  if (!stroke) return;
  const [x, y] = position(event);
  line(stroke.pixels, stroke.x, stroke.y, x, y, paint());
  stroke.x = x;
  stroke.y = y;
  context.putImageData(stroke.pixels, 0, 0);
  if (Date.now() - lastSent > THROTTLE_MS) send();
});

function endStroke() {
  if (!stroke) return;
  stroke = null;
  schedule(DEBOUNCE_MS);
}
canvas.addEventListener('pointerup', endStroke);
canvas.addEventListener('pointercancel', endStroke);

function choose(selector, button) {
  root.querySelectorAll(selector).forEach((other) => other.classList.remove('selected'));
  button.classList.add('selected');
}

function addButton(parent, label, className, onClick) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = className;
  button.textContent = label;
  button.addEventListener('click', () => onClick(button));
  parent.appendChild(button);
  return button;
}

const colours = root.querySelector('.p2p-colours');
if (palette) {
  palette.forEach((entry, index) => {
    const button = addButton(colours, entry.name, 'p2p-class', () => {
      colour = entry.hex;
      choose('.p2p-class', button);
      if (tool === 'eraser') selectTool('brush');  // Picking a colour means painting with it.
    });
    button.dataset.colour = entry.hex;
    button.title = `${entry.name} ${entry.hex}`;
    const swatch = document.createElement('span');
    swatch.className = 'p2p-swatch';
    swatch.style.background = entry.hex;
    button.prepend(swatch);
    if (index === 0) button.classList.add('selected');
  });
} else {
  const picker = document.createElement('input');
  picker.type = 'color';
  picker.className = 'p2p-picker';
  picker.value = colour;
  picker.title = 'Brush colour';
  picker.addEventListener('input', () => { colour = picker.value; });
  colours.appendChild(picker);
}

function selectTool(name) {
  tool = name;
  choose('.p2p-tool', root.querySelector(`.p2p-tool[data-tool="${name}"]`));
}
root.querySelectorAll('.p2p-tool').forEach((button) => {
  button.addEventListener('click', () => selectTool(button.dataset.tool));
});
sizeInput.addEventListener('input', () => { sizeLabel.textContent = `${sizeInput.value} px`; });

root.querySelector('.p2p-undo').addEventListener('click', () => {
  if (!undoStack.length) return say('nothing to undo');
  const previous = undoStack.pop();
  if (previous.width !== canvas.width || previous.height !== canvas.height) {
    canvas.width = previous.width;
    canvas.height = previous.height;
  }
  context.putImageData(previous, 0, 0);
  schedule(DEBOUNCE_MS);
});

root.querySelector('.p2p-clear').addEventListener('click', () => {
  remember();
  context.clearRect(0, 0, canvas.width, canvas.height);
  schedule(DEBOUNCE_MS);
});

function blank() {
  canvas.height = Number(props.height) || 256;
  canvas.width = Number(props.width) || canvas.height;
  context.fillStyle = palette ? palette[0].hex : '#ffffff';
  context.fillRect(0, 0, canvas.width, canvas.height);
}

// Draws an image (URL) onto a canvas of its size (at most MAX_SIDE on its longer side).
function load(url, name) {
  const image = new Image();
  image.onload = () => {
    remember();
    const scale = Math.min(1, MAX_SIDE / Math.max(image.width, image.height));
    canvas.width = Math.max(1, Math.round(image.width * scale));
    canvas.height = Math.max(1, Math.round(image.height * scale));
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, canvas.width, canvas.height);
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    say(`${name}: ${canvas.width}x${canvas.height}` + (scale < 1 ? ' (scaled down to draw on; '
        + 'the Upload tab translates any size)' : ''));
    send();
  };
  image.onerror = () => say(`${name} is not an image the browser can open`);
  image.src = url;
}

examples.forEach((example, index) => {
  const option = document.createElement('option');
  option.value = String(index);
  option.textContent = example.name;
  exampleSelect.appendChild(option);
});
exampleSelect.disabled = !examples.length;
exampleSelect.addEventListener('change', () => {
  const example = examples[Number(exampleSelect.value)];
  if (example) load(example.url, example.name);
});
root.querySelector('.p2p-reset').addEventListener('click', () => {
  const example = examples[Number(exampleSelect.value)];
  if (example) return load(example.url, example.name);
  remember();
  blank();
  send();
});

root.querySelector('.p2p-open').addEventListener('change', (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => load(reader.result, file.name);
  reader.readAsDataURL(file);
  event.target.value = '';
});

if (examples.length) {
  load(examples[0].url, examples[0].name);
} else {
  blank();
  say('no example inputs found (--examples or --data_dir): a blank canvas');
  send();
}
