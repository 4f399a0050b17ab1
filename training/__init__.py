"""Relapse-risk models, evaluation, MLflow tracking and registry, Optuna tuning."""
