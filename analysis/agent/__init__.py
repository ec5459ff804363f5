"""The analysis agent: pydantic-ai with one tool, ``run_python``, over the session's sandbox."""
