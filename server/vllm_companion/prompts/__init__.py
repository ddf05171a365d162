"""Prompt families (data) and the one resolver/renderer that uses them."""

from .families import BY_NAME, FAMILIES, PLAIN, Family
from .render import COMMENTS, FimContext, render_fim, resolve_family

__all__ = ["BY_NAME", "COMMENTS", "FAMILIES", "PLAIN", "Family", "FimContext", "render_fim", "resolve_family"]
