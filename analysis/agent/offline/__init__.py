"""The built-in offline analyst: a deterministic pydantic-ai ``FunctionModel`` (no network).

It reads a question into a request (``understand``: every word is a column, a value, a known word or a
stopword, or the question is refused), picks the dataset and the earlier question it builds on
(``conversation``), finds the one intent that uses every part of it (``intents``: matcher, code plan and
answer wording together), runs the code through the same ``run_python`` tool and sandbox as any LLM, and
words the answer from the ``final_result`` the code produced. docs/offline-analyst.md lists what it
understands and every reason it refuses.
"""

from analysis.agent.offline.intents import fmt
from analysis.agent.offline.model import MODEL_NAME, offline_model

__all__ = ["MODEL_NAME", "fmt", "offline_model"]
