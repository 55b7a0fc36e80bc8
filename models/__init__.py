"""The learned part and the decision rules: fusion of filter scores, thresholds, persistence."""
