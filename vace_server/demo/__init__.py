"""The offline demo (`make demo`): sample media drawn by code, and a run of the five
functions through the dashscope SDK against a local server (`run.py`)."""
