"""Turn a Hydra grid into trials, run them in-process or on Ray, record them in MLflow."""
