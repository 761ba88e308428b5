"""``ictq dashboard``: a web console for the database queue, on the same ``.env``.

:mod:`~ictq.dashboard.app` (routes, security, the server), :mod:`~ictq.dashboard.auth` (users,
passwords, sessions' key, login limits), :mod:`~ictq.dashboard.views` (what each page shows, as
data the JSON API also returns), :mod:`~ictq.dashboard.charts` (SVG geometry),
:mod:`~ictq.dashboard.pretty` (payloads readable, secrets masked); ``templates/`` and
``static/`` are served from the package (hosts need no internet).
"""
