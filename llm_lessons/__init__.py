"""llm_lessons: the small package behind *LLM Principles: Foundations, Frontiers and Evaluation*.

Importing it stays light: matplotlib, ipywidgets, transformers and lm_eval are imported only
inside the modules that need them.
"""

from llm_lessons.reproducibility import get_device, set_seed

__all__ = ["get_device", "set_seed"]
__version__ = "0.1.0"
