"""mapred.io."""
