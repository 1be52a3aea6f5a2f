"""The ``viewer`` command: serve the map app (default) or print the catalog.

    viewer                                   # same as: viewer serve
    viewer serve --catalog PATH --port 5006 --address 0.0.0.0 --num-procs 2 \\
                 --allow-websocket-origin example.org --basic-auth secret
    viewer catalog [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Sequence

__all__ = ["main", "build_parser", "serve", "print_catalog"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="viewer", description="Map viewer for images, masks and segmentation overlays.")
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="serve the map app with its tile routes (default command)")
    s.add_argument("--catalog", default=os.environ.get("VIEWER_CATALOG"),
                   help="catalog JSON (default: $VIEWER_CATALOG or the bundled sample catalog)")
    s.add_argument("--port", type=int, default=5006)
    s.add_argument("--address", default=None, help="address to listen on (default: all interfaces of localhost)")
    s.add_argument("--num-procs", type=int, default=1, help="worker processes (0 = one per CPU)")
    s.add_argument("--allow-websocket-origin", action="append", default=None, metavar="HOST[:PORT]",
                   help="host allowed to open the websocket (repeatable)")
    s.add_argument("--basic-auth", default=None, help="password, or path of a file of user:password lines")
    s.add_argument("--cookie-secret", default=None, help="secret to sign cookies (required with OAuth)")
    s.add_argument("--oauth-provider", default=None, help="Panel OAuth provider (github, google, azure, ...)")
    s.add_argument("--oauth-key", default=None)
    s.add_argument("--oauth-secret", default=None)
    s.add_argument("--oauth-redirect-uri", default=None)
    s.add_argument("--oauth-encryption-key", default=None)
    s.add_argument("--show", action="store_true", help="open a browser tab")
    c = sub.add_parser("catalog", help="print the images of the catalog")
    c.add_argument("--catalog", default=os.environ.get("VIEWER_CATALOG"))
    c.add_argument("--json", action="store_true", help="print getInfo() of every image as JSON")
    return p


def print_catalog(path: str | None, as_json: bool = False, out=sys.stdout) -> None:
    from .core.catalog import get_catalog, set_catalog
    from .core.image import Image

    if path:
        set_catalog(path)
    cat = get_catalog()
    if as_json:
        json.dump({i: Image(i).getInfo() for i in sorted(cat.images)}, out, indent=2, default=str)
        out.write("\n")
        return
    out.write(f"catalog {cat.path}\n")
    for image_id in sorted(cat.images):
        entry = cat.images[image_id]
        kinds = {}
        for b in entry.bands:
            kinds.setdefault(b.kind, []).append(b.id)
        desc = "; ".join(f"{k}: {', '.join(v)}" for k, v in kinds.items())
        out.write(f"  {image_id}  ({len(entry.bands)} bands — {desc})\n")
    for cid, spec in sorted(cat.collections.items()):
        out.write(f"  collection {cid}: {', '.join(spec.get('images', []))}\n")


def serve(args: argparse.Namespace) -> None:
    import panel as pn

    from .core.catalog import set_catalog
    from .server.routes import tile_routes
    from .ui.app import build_app

    if args.catalog:
        os.environ["VIEWER_CATALOG"] = os.fspath(args.catalog)  # worker processes and sessions read it
        set_catalog(args.catalog)
    if args.oauth_provider and not args.cookie_secret:
        raise SystemExit("viewer serve: --oauth-provider needs --cookie-secret")
    kwargs = {k: v for k, v in {
        "basic_auth": args.basic_auth, "cookie_secret": args.cookie_secret, "oauth_provider": args.oauth_provider,
        "oauth_key": args.oauth_key, "oauth_secret": args.oauth_secret,
        "oauth_redirect_uri": args.oauth_redirect_uri, "oauth_encryption_key": args.oauth_encryption_key,
    }.items() if v is not None}
    if args.num_procs != 1:
        kwargs["num_procs"] = args.num_procs
    origins = args.allow_websocket_origin
    if not origins:
        origins = [f"localhost:{args.port}", f"127.0.0.1:{args.port}"]
        if args.address and args.address not in ("0.0.0.0", "::"):
            origins.append(f"{args.address}:{args.port}")
    print(f"viewer: serving http://{args.address or 'localhost'}:{args.port}/", flush=True)
    pn.serve({"/": lambda: build_app(args.catalog)}, port=args.port, address=args.address,
             websocket_origin=origins, show=args.show, title="viewer", extra_patterns=tile_routes(),
             verbose=False, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["serve"] + argv
    args = build_parser().parse_args(argv)
    if args.command == "catalog":
        print_catalog(args.catalog, args.json)
        return 0
    serve(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
