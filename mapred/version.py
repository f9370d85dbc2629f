"""The one place the mapred version lives (packaging and the wire handshake read it)."""

__version__ = "0.1.0"
