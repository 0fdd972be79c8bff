"""Incremental export of Amazon Connect Customer Profiles to S3 through AppIntegrations."""
