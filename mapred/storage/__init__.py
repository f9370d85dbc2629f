"""The block-replicated store (HDFS-like): NameNode, DataNodes, Client, ``mrfs://`` file system."""
from .client import Client

__all__ = ["Client"]
