"""crowdloop: active learning for noisy, multi-annotator labelling campaigns."""

__version__ = "0.1.0"
