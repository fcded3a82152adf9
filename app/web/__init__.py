"""The Flask web app."""
