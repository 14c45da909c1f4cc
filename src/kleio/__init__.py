"""kleio: an experiment journal for command-line programs."""

__version__ = "0.1.0"
