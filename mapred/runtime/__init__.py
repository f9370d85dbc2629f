"""mapred.runtime."""
