"""`liifsr serve`: a local web page that zooms continuously into images (x1 to x30).

The page (OpenSeadragon, vendored, so it works offline) asks for the tiles in view at
the current zoom; the server decodes each one on demand by region decoding, equal to
that region of `liifsr upscale` at the level's scale (see `pyramid.py`), through one
model on one thread (`worker.py`), and keeps them in a bounded cache (`service.py`; the routes: `routes.py`).
The command (its options, the sockets, the set-up) is `liifsr.commands.serve`.
"""

from __future__ import annotations

# The slowest a request body may arrive on average, beyond --body-timeout (`web.py`; here,
# not there, because `liifsr serve --help` shows it and must not need uvicorn, an optional extra).
BODY_MIN_BYTES_PER_S = 64 * 1024
