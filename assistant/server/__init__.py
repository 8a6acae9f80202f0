"""The service edges over the SDK: the HTTP API (`app`: routes → SDK calls; `bodies`, `files`, `sse`, `http`),
its OpenAI-compatible routes (`openai_api`) and the MCP server (`mcp_api`, on stdio or at /mcp).

    from assistant.server.app import create_app     # fails with the install command when fastapi is missing
"""
