"""Serving registered models: predictors per model class, Open Inference Protocol v2 tensors,
micro-batching, zero-downtime alias swaps, metrics, batch prediction and evaluation as jobs.

The engine (``ModelServer``) knows nothing of HTTP; ``http.routers`` puts it
behind FastAPI routes that ``mapred serve`` includes.
"""
from .engine import LoadedVersion, ModelServer
from .errors import InferError
from .predictors import predictor_for

__all__ = ["InferError", "LoadedVersion", "ModelServer", "predictor_for"]
