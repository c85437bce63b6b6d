"""Jinja2 templates and CSS of the compliance brief, shipped as package data.

Load them with ``importlib.resources.files("templates")`` so they are found both in a
source checkout and in an installed wheel.
"""
