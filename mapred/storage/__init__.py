"""The block-replicated store (HDFS-like): NameNode, DataNodes, Client, ``mrfs://`` file system."""
from mapred.storage.client import Client

__all__ = ["Client"]
