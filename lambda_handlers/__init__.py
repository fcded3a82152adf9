"""Thin AWS Lambda entry points: parse the event, call the app core, format the response."""
