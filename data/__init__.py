"""Data contract, validation, adapters, synthetic cohort and windows for earlywarn."""
