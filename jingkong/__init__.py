"""Jingkong (精控): an outbreak-response command platform for district command centres."""

__version__ = "0.1.0"
