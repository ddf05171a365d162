"""Prompt families (data) and the one resolver/renderer that uses them."""

from .families import BY_NAME, FAMILIES, PLAIN, Family
from .render import FimContext, render_fim, resolve_family

__all__ = ["BY_NAME", "FAMILIES", "PLAIN", "Family", "FimContext", "render_fim", "resolve_family"]
