"""The local engine: hardware facts, launch plans, model preparation, supervision, sharing."""
