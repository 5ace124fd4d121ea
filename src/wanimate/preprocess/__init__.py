"""Preprocessing: a character image and a driving video become a materials folder."""
