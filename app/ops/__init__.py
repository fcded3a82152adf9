"""Operator tools: the ``vidgate`` CLI, uploads, key management, media probing.

Never part of a Lambda package.
"""
