"""Download model-zoo checkpoints listed in ckpts/manifest.json, resumably and verified.

    python tools/download_ckpts.py --list
    python tools/download_ckpts.py resnet18 raydn_r50_428q_nui_60e [--dest ckpts]
    python tools/download_ckpts.py --all

A name may also be the checkpoint's file name. Exit status 0 when every requested file is
present and passed its checks, 1 otherwise (each failure is reported; a missing or malformed
manifest is one line naming the file and the problem).
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from projects.mmdet3d_plugin.zoo.download import DownloadError, describe_result, fetch_checkpoint
from projects.mmdet3d_plugin.zoo.manifest import CheckpointEntry, ManifestError, find_entry, load_manifest


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="manifest names (or file names) to download")
    parser.add_argument("--all", action="store_true", help="every entry of the manifest")
    parser.add_argument("--list", action="store_true", help="list the manifest and exit")
    parser.add_argument("--dest", default="ckpts", help="destination folder (default: ckpts)")
    parser.add_argument("--manifest", default=None, help="manifest file (default: ckpts/manifest.json)")
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    parser.add_argument("--retries", type=int, default=2, help="resuming retries per URL")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if not (args.names or args.all or args.list):
        parser.error("give checkpoint names, --all or --list")
    return args


def format_listing(entries: dict[str, CheckpointEntry]) -> str:
    """The ``--list`` table: name, kind, how it downloads, what is verified, file, config."""
    rows = [("name", "kind", "download", "check", "file", "config")]
    for entry in entries.values():
        check = "sha256" if entry.sha256 else (f"sha256 {entry.sha256_prefix}..." if entry.sha256_prefix
                                                else ("size" if entry.size else "none"))
        rows.append((entry.name, entry.kind, "direct" if entry.direct else "by hand (share page)",
                     check, entry.file, entry.config or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]
                     for row in rows)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        entries = load_manifest(args.manifest)
        if args.list:
            print(format_listing(entries))
            return 0
        selected = list(entries.values()) if args.all else [find_entry(entries, n) for n in args.names]
    except (ManifestError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    failed = 0
    for entry in selected:
        try:
            result = fetch_checkpoint(entry, args.dest, progress=not args.no_progress,
                                      timeout_s=args.timeout, retries=args.retries)
        except (DownloadError, ManifestError) as err:
            failed += 1
            print(f"error: {entry.name}: {err}", file=sys.stderr)
            continue
        print(describe_result(entry, result))
    if failed:
        print(f"{failed} of {len(selected)} checkpoints failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
