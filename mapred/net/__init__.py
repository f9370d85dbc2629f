"""mapred.net."""
