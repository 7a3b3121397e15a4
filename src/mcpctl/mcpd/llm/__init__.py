"""The LLM layer of mcpd.

    messages.py   the internal message format: requests, answers, stream events
    adapters/     one class per provider API (OpenAI chat completions, Anthropic messages)
                  behind the ``Adapter`` protocol, with one small error tree

Everything above the adapters (the dispatcher with pools and failover, virtual LLMs, the
inference queue, chat, the OpenAI-compatible endpoint) speaks only ``messages`` and the
``Adapter`` protocol; see ``adapters/__init__.py`` for the contract.
"""
