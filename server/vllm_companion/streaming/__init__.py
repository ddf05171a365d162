"""Stream transforms: small stages that watch the growing output and cut it (stopping the engine)."""

from .pipeline import Cut, LineStage, Pipeline, Stage

__all__ = ["Cut", "LineStage", "Pipeline", "Stage"]
