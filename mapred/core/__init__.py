"""mapred.core."""
