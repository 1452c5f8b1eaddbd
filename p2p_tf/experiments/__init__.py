"""Experiments that drive training and evaluation together (the paper's Table 1)."""
