"""Using a trained generator: translating images of any size and exporting it."""
