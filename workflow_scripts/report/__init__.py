"""Reports: the data report and the cross-run GLUE / pretraining report."""
