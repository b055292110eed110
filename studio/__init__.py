"""podium.studio: the user's side of podium: the CLI and what it starts, writes and resumes.

``cli.py`` builds the ``podium`` app from ``commands/`` (one module per command),
``servers/`` runs vLLM, llama.cpp and LangGraph's dev server in the foreground, ``reports/``
writes the evaluation report and the trajectory viewer, and ``durable.py`` keeps CLI runs on
checkpointed threads.
"""
