"""Read sweeps back from MLflow into pandas; one function per experiment; a report."""
