"""Drift and quality monitoring of live relapse-risk predictions."""
