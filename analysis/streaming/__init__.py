"""Live streaming of runs to browsers and API clients (docs/architecture.md §3.4).

push       renders a step or run-status event once and publishes it to the session's group
wakeup     the worker→web datagram socket used in embedded mode (no shared channel layer)
tailer     the web process's task that forwards those datagrams and repairs gaps from the database
consumers  the websocket consumer: access check, snapshot after the client's cursor, forwarding
listen     wake-ups for a follower that reads from the database (the SSE stream) when its session's group hears
"""
