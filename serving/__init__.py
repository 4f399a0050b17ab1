"""BentoML risk-score service, API keys and the scoring path."""
