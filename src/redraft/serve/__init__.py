"""Refinement behind the OpenAI chat-completions API: ``redraft serve``.

app.py (the ASGI app), naming.py (the ``model`` field grammar), protocol.py (request and reply
shapes), scheduler.py (the shared bound on generations), service.py (one request, solved and
stored), records.py (served requests as runs), task.py (how a served question is prompted and
its answer extracted), command.py (the CLI). Nothing is imported here, so the CLI stays quick.
"""
