"""Parquet catalog tooling: opening and listing catalogs, validated ingestion, the demo generator."""
