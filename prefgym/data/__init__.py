"""Offline text: the standard library's source, English prose, prompt sets."""
