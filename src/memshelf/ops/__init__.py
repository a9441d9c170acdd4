"""The operations every surface offers, written once, each taking an authenticated owner.

The CLI (and later the service, MCP server and inspector) are thin edges over these:
an owner enters at the edge and every identifier below is derived from it.
"""
