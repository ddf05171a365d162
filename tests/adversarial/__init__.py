"""Adversarial cases, one module per surface (issue 19): each case is named after what it attacks."""
