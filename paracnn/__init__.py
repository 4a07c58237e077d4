"""paracnn: a pure-Python convolutional network trainer that scales across CPU cores."""

__version__ = "0.1.0"
