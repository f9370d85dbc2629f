"""mapred.task."""
