"""The networks and what every stage computes with them: layers, the U-Net and PatchGAN, the
losses, the generator call in paper or eval mode, the FCN-score segmenter and image strips."""
