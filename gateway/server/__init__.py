"""How ``gateway serve`` runs: the listening socket, worker processes under a supervisor, and
the HTTP limits uvicorn does not enforce.

``listen`` binds the socket and sizes the connection limit to the open-file limit; ``http``
holds uvicorn's protocol and server with the limits (``combining``: an answer's writes per turn
of the loop in one call); ``websocket`` the WebSocket protocol with the gateway's direct path for
text messages; ``worker`` serves the app on a socket; ``supervisor`` forks the workers, restarts
them and drains them on a signal.
"""
