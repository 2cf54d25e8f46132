"""The directory service."""
